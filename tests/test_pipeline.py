"""The grid: units planned from a suite, executed independently, skipped when done."""

import pickle
from importlib import metadata

import pytest

from harness.errors import UnknownNameError
from harness.pipeline import Unit, execute, import_run, plan
from harness.protocol import SCORING_VERSION
from harness.results import ResultStore, load_per_query, load_record
from harness.retrievers import Retriever
from harness.runs import Run
from harness.suite import load_suite

from tests.helpers import ndcg
from tests.conftest import SCIFACT_SUITE



class FirstDocuments(Retriever):
    """A user's own retriever: every query gets the first ``n`` corpus documents, best first."""

    def __init__(self, n: int = 10):
        self.n = n

    def settings(self):
        return {"rule": f"first {self.n} documents"}

    def index(self, ids, texts):
        self.ids = ids

    def search(self, ids, texts, k):
        return Run({q: {d: float(self.n - i) for i, d in enumerate(self.ids[: min(k, self.n)])} for q in ids})


class Reverse(Retriever):
    """Re-ranks candidates in reverse of the order given."""

    def settings(self):
        return {"rule": "reverse"}

    def index(self, ids, texts):
        pass

    def search(self, ids, texts, k):
        raise AssertionError("rerank mode must not call search")

    def rerank(self, ids, texts, candidates):
        return Run({q: {d: float(i) for i, d in enumerate(candidates[q])} for q in ids})


class Allocates(FirstDocuments):
    """FirstDocuments that holds ``mib`` MiB (touched, so resident) while it indexes."""

    def __init__(self, mib: int = 0):
        super().__init__(10)
        self.mib = mib

    def settings(self):
        return {"rule": f"first 10 documents, {self.mib} MiB held while indexing"}

    def index(self, ids, texts):
        import numpy as np

        np.ones(self.mib << 20, dtype=np.uint8)  # written, so resident, then freed
        self.ids = ids


SCIFACT_ONLY = """name: beir
defaults:
  language: en
  split: test
  max_length: {query: 32, document: 300}
  metrics: [ndcg@10, recall@100, recall@1000, mrr@10, map@100]
datasets:
  scifact:
    source: {kind: ir_datasets, id: beir/scifact/test}
    expected: {documents: 5183, queries: 300, judgments: 339}
"""


def suite_file(tmp_path, extra_dataset: str = "", retrievers: str = ""):
    path = tmp_path / "suite.yaml"
    path.write_text(SCIFACT_ONLY + extra_dataset + "retrievers:\n" + retrievers)
    return path


def test_a_users_class_by_dotted_path_runs_end_to_end(offline, tmp_path):
    path = suite_file(tmp_path, retrievers="  first:\n    class: tests.test_pipeline:FirstDocuments\n"
                                           "    params: {n: 5}\n")
    (unit,) = plan(load_suite(path))
    assert unit == Unit(str(path), "scifact", "first")
    assert pickle.loads(pickle.dumps(unit)) == unit  # ships to other processes as is
    outcome = execute(unit, tmp_path / "results")
    assert outcome.status == "done"
    ((folder, record),) = list(ResultStore(tmp_path / "results").records())
    assert record.retriever == {"name": "first", "class": "tests.test_pipeline:FirstDocuments", "params": {"n": 5}}
    assert record.protocol["system"] == {"rule": "first 5 documents"}
    assert Run.from_trec(folder / "run.trec.gz")["1"] == Run.from_trec(folder / "run.trec.gz")["3"]
    assert len(load_per_query(folder)) == 300
    assert execute(unit, tmp_path / "results").status == "skipped"
    assert execute(unit, tmp_path / "results", force=True).status == "done"


def test_an_ir_datasets_upgrade_leaves_the_stored_result_in_place(offline, tmp_path, monkeypatch):
    path = suite_file(tmp_path, retrievers="  first:\n    class: tests.test_pipeline:FirstDocuments\n")
    unit = Unit(str(path), "scifact", "first", sample=(20, 200), latency_queries=0)
    done = execute(unit, tmp_path / "results")
    record = load_record(done.folder)
    installed = metadata.version("ir_datasets")
    # The library version is where the result was measured, not what was evaluated.
    assert record.environment["packages"]["ir_datasets"] == installed
    assert record.protocol["revision"] == {"files_md5": ["5f7d1de60b170fc8027bb7898e2efca1"]}
    assert record.environment["scoring_version"] == SCORING_VERSION
    version = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "99.0" if name == "ir_datasets" else version(name))
    again = execute(unit, tmp_path / "results")
    assert (again.status, again.folder) == ("skipped", done.folder)


def test_sweeps_expand_to_one_unit_per_point(tmp_path):
    path = suite_file(tmp_path, retrievers="  first:\n    class: tests.test_pipeline:FirstDocuments\n"
                                           "    sweep: {n: [5, 20]}\n  bm25: {class: bm25}\n")
    suite = load_suite(path)
    assert list(suite.retriever_configs()) == ["first@n=5", "first@n=20", "bm25"]
    assert suite.retriever("first@n=20").params == {"n": 20}
    assert [u.retriever for u in plan(suite)] == ["first@n=5", "first@n=20", "bm25"]


def test_unknown_names_fail_before_any_work(tmp_path):
    suite = load_suite(suite_file(tmp_path))
    with pytest.raises(UnknownNameError, match="Unknown retriever 'nope'"):
        plan(suite, retriever_names=["nope"])
    with pytest.raises(UnknownNameError, match="has no dataset 'nope'"):
        plan(suite, datasets=["nope"])


def test_rerank_mode_scores_a_first_stage_top_k(offline, tmp_path):
    dataset = ("  scifact-rerank:\n    source: {kind: ir_datasets, id: beir/scifact/test}\n"
               "    mode: rerank\n    candidates: {source: retriever, retriever: bm25, depth: 20}\n")
    path = suite_file(tmp_path, extra_dataset=dataset,
                      retrievers="  bm25: {class: bm25}\n  reverse: {class: tests.test_pipeline:Reverse}\n")
    bm25 = execute(Unit(str(path), "scifact", "bm25"), tmp_path / "results")
    reranked = execute(Unit(str(path), "scifact-rerank", "reverse"), tmp_path / "results")
    first = Run.from_trec(bm25.folder / "run.trec.gz")
    second = Run.from_trec(reranked.folder / "run.trec.gz")
    for qid in ["1", "3", "5"]:
        top20 = [d for d, _ in first[qid][:20]]
        assert [d for d, _ in second[qid]] == top20[::-1]
    assert reranked.metrics["ndcg@10"] < bm25.metrics["ndcg@10"]


def test_a_rerank_result_carries_its_first_stage_in_the_protocol(offline, tmp_path):
    dataset = ("  scifact-rerank:\n    source: {kind: ir_datasets, id: beir/scifact/test}\n"
               "    mode: rerank\n    candidates: {source: retriever, retriever: bm25, depth: 20}\n")
    path = suite_file(tmp_path, extra_dataset=dataset,
                      retrievers="  bm25: {class: bm25, params: {k1: 1.2}}\n  reverse: {class: tests.test_pipeline:Reverse}\n")
    outcome = execute(Unit(str(path), "scifact-rerank", "reverse", sample=(20, None), latency_queries=5),
                      tmp_path / "results")
    record = next(r for _, r in ResultStore(tmp_path / "results").records())
    first = record.protocol["candidates"]["first_stage"]
    assert first["name"] == "bm25" and first["params"] == {"k1": 1.2}
    assert first["settings"]["bm25"]["k1"] == 1.2
    # Another first stage is another protocol: the same re-ranker's result is not comparable.
    other = tmp_path / "other"
    other.mkdir()
    path2 = suite_file(other, extra_dataset=dataset,
                       retrievers="  bm25: {class: bm25, params: {k1: 0.9}}\n  reverse: {class: tests.test_pipeline:Reverse}\n")
    execute(Unit(str(path2), "scifact-rerank", "reverse", sample=(20, None), latency_queries=0), other / "results")
    record2 = next(r for _, r in ResultStore(other / "results").records())
    assert record2.protocol_hash != record.protocol_hash
    # Re-ranking latency was measured on 5 queries, one at a time, with their own candidates.
    assert record.cost["latency_protocol"]["mode"] == "rerank"
    assert record.cost["query_latency_ms"]["n"] == 5
    assert "query_latency_ms" not in record2.cost
    assert outcome.status == "done"


def test_rerank_from_a_dataset_without_candidates_fails_before_any_work(offline, tmp_path):
    from harness.errors import DataError

    dataset = ("  scifact-given:\n    source: {kind: ir_datasets, id: beir/scifact/test}\n"
               "    mode: rerank\n    candidates: {source: dataset}\n")
    path = suite_file(tmp_path, extra_dataset=dataset, retrievers="  reverse: {class: tests.test_pipeline:Reverse}\n")
    with pytest.raises(DataError, match="'scifact-given' is in mode: rerank with candidates from the dataset"):
        execute(Unit(str(path), "scifact-given", "reverse"), tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_an_imported_run_in_its_rank_order_is_another_result(offline, tmp_path):
    import hashlib

    from harness.data.load import load_dataset
    from harness.metrics import evaluate

    path = suite_file(tmp_path)
    suite = load_suite(path)
    qrels = load_dataset(suite.dataset("scifact"), suite.name).qrels
    # For 20 queries, a relevant document and two others tie; the rank column puts the relevant one
    # first, trec_eval's order (document id descending) last.
    queries = sorted(qrels)[:20]
    lines = []
    for qid in queries:
        relevant = sorted(qrels[qid])[0]
        for rank, doc in enumerate([relevant, relevant + "x", relevant + "y"], 1):
            lines.append(f"{qid} Q0 {doc} {rank} 0.5 theirs\n")
    (tmp_path / "theirs.trec").write_text("".join(lines))
    by_trec = import_run(tmp_path / "theirs.trec", path, "scifact", "theirs", tmp_path / "results")
    by_rank = import_run(tmp_path / "theirs.trec", path, "scifact", "theirs", tmp_path / "results", ties="rank")
    assert by_trec.status == by_rank.status == "done" and by_trec.folder != by_rank.folder

    def expected(position: int) -> float:  # the relevant document at this 0-based position
        return sum(ndcg([int(i == position) for i in range(3)], list(qrels[q].values())) for q in queries) / len(qrels)

    assert by_rank.metrics["ndcg@10"] == pytest.approx(expected(0), abs=1e-12)
    assert by_trec.metrics["ndcg@10"] == pytest.approx(expected(2), abs=1e-12)
    digest = hashlib.sha256((tmp_path / "theirs.trec").read_bytes()).hexdigest()
    records = {r.retriever["params"].get("ties", "trec_eval"): r for _, r in ResultStore(tmp_path / "results").records()}
    assert records["rank"].retriever["params"] == {"file_sha256": digest, "ties": "rank"}
    assert records["trec_eval"].retriever["params"] == {"file_sha256": digest}
    assert records["rank"].protocol["system"] == {"imported": {"file_sha256": digest, "ties": "rank"}}
    for order, record in records.items():
        assert record.ties["order"] == order
        assert (record.ties["pairs"], record.ties["tied_pairs"], record.ties["tied_groups"]) == (60, 60, 20)
        assert record.ties["optimistic"] == pytest.approx(expected(0), abs=1e-12)
        assert record.ties["pessimistic"] == pytest.approx(expected(2), abs=1e-12)
    # The stored run holds the order scored: read in its rank order, it re-evaluates exactly.
    stored = Run.from_trec(by_rank.folder / "run.trec.gz", ties="rank")
    assert evaluate(qrels, stored, records["rank"].protocol["metrics"]).mean == records["rank"].metrics
    assert import_run(tmp_path / "theirs.trec", path, "scifact", "theirs", tmp_path / "results",
                      ties="rank").status == "skipped"


EDITED_SUITE = """name: edited
defaults: {{language: en, split: test, metrics: [ndcg@10, recall@100]}}
datasets:
  scifact-edited:
    source:
      kind: huggingface
      repo: tests/scifact-edited
      revision: "{commit}"
      documents: {{files: [corpus.jsonl], id: _id, title: title, text: text}}
      queries: {{files: [queries.jsonl], id: _id, text: text}}
      judgments: {{files: [qrels.jsonl], query_id: query-id, doc_id: corpus-id, relevance: score}}
retrievers:
  bm25: {{class: bm25}}
"""


def test_scores_use_the_official_judgments_when_a_judged_document_is_empty_or_missing(offline, tmp_path, monkeypatch):
    """SciFact with one judged document emptied and one removed from the corpus, read through the
    hub source: BM25's stored nDCG@10 and recall@100 are pytrec_eval's on the official judgments."""
    import pytrec_eval

    from harness.data.load import load_dataset
    from tests.data.sources.hubcache import jsonl, offline_hub, put

    official = load_dataset(load_suite(SCIFACT_SUITE).dataset("scifact"), "beir")
    qrels = official.qrels.to_dict()
    # The first judged documents of the first two queries with two or more judgments.
    emptied, removed = [next(iter(qrels[q])) for q in sorted(qrels, key=int) if len(qrels[q]) > 1][:2]
    corpus = official.corpus
    documents = [{"_id": d, "title": "" if d == emptied else t, "text": "" if d == emptied else x}
                 for d, t, x in zip(corpus.ids, corpus.titles, corpus.texts) if d != removed]
    commit = "0123456789abcdef0123456789abcdef01234567"
    put(offline_hub(monkeypatch, tmp_path), "tests/scifact-edited", commit, {
        "corpus.jsonl": jsonl(documents),
        "queries.jsonl": jsonl([{"_id": q, "text": t} for q, t in zip(official.queries.ids, official.queries.texts)]),
        "qrels.jsonl": jsonl([{"query-id": q, "corpus-id": d, "score": g} for q in qrels for d, g in qrels[q].items()]),
    })
    path = tmp_path / "edited.yaml"
    path.write_text(EDITED_SUITE.format(commit=commit))
    outcome = execute(Unit(str(path), "scifact-edited", "bm25", latency_queries=0), tmp_path / "results")
    record = next(r for _, r in ResultStore(tmp_path / "results").records())
    assert record.protocol["filters"]["kept"] == {"empty_documents": 1, "judgments_absent_document": 1}
    assert record.n_queries == 300

    run = Run.from_trec(outcome.folder / "run.trec.gz").scores()
    assert set(run) == set(qrels)  # every judged query is in the run, so pytrec_eval averages the same queries
    measures = {"ndcg_cut_10": "ndcg@10", "recall_100": "recall@100"}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, set(measures)).evaluate(run)
    for measure, name in measures.items():
        official_mean = sum(v[measure] for v in per_query.values()) / len(per_query)
        assert record.metrics[name] == pytest.approx(official_mean, abs=1e-9)
    # Without the two judgments (the emptied and the removed document) the figures would be higher.
    trimmed = {q: {d: g for d, g in docs.items() if d not in (emptied, removed)} for q, docs in qrels.items()}
    trimmed_ndcg = pytrec_eval.RelevanceEvaluator(trimmed, {"ndcg_cut_10"}).evaluate(run)
    assert sum(v["ndcg_cut_10"] for v in trimmed_ndcg.values()) / len(trimmed_ndcg) > record.metrics["ndcg@10"]


def test_peak_memory_is_measured_per_unit_not_across_earlier_units(offline, tmp_path):
    path = suite_file(tmp_path, retrievers="  big: {class: tests.test_pipeline:Allocates, params: {mib: 400}}\n"
                                           "  small: {class: tests.test_pipeline:Allocates, params: {mib: 0}}\n")
    # A small unit first, so that what every unit imports (ranx, ...) is resident before the big one.
    execute(Unit(str(path), "scifact", "small", sample=(5, 100), latency_queries=0), tmp_path / "first")
    big = execute(Unit(str(path), "scifact", "big", sample=(5, 100), latency_queries=0), tmp_path / "results")
    small = execute(Unit(str(path), "scifact", "small", sample=(5, 100), latency_queries=0), tmp_path / "results")
    big_cost, small_cost = (load_record(o.folder).cost for o in (big, small))
    assert big_cost["peak_rss_scope"] == small_cost["peak_rss_scope"] == "unit"
    # The second unit, run after the first in the same process, does not inherit its 400 MiB peak.
    assert small_cost["peak_rss_bytes"] < big_cost["peak_rss_bytes"] - (300 << 20)
