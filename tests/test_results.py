import json

import numpy as np
import pytest

from harness.data.model import Qrels
from harness.metrics import evaluate
from harness import protocol
from harness.results import ResultRecord, ResultStore, load_per_query, load_record, result_key
from harness.runs import Run

from tests.helpers import make_card, make_record

RUN = Run({"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d3": 1.0}}, name="bm25")
QRELS = Qrels({"q1": {"d1": 1}, "q2": {"d9": 1}, "q3": {"d1": 1}})


def test_write_creates_a_complete_folder(tmp_path):
    store = ResultStore(tmp_path)
    evaluation = evaluate(QRELS, RUN, ["ndcg@10", "recall@100"])
    record = make_record("bm25", "scifact", evaluation.mean["ndcg@10"])
    folder = store.write(record, evaluation, RUN)
    assert folder == tmp_path / "beir" / "scifact" / f"bm25-{record.key[:12]}"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "per_query.parquet", "record.json",
                                                        "run.trec.gz"]
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    assert {name: entry["bytes"] for name, entry in listed.items()} == {
        name: (folder / name).stat().st_size for name in ("per_query.parquet", "record.json", "run.trec.gz")}
    assert load_record(folder) == record
    assert json.loads((folder / "record.json").read_text())["protocol_hash"] == record.protocol_hash
    per_query = load_per_query(folder)
    assert per_query["query_id"].tolist() == ["q1", "q2", "q3"]
    assert per_query["ndcg@10"].tolist() == [1.0, 0.0, 0.0]
    assert Run.from_trec(folder / "run.trec.gz").scores() == RUN.scores()
    assert [path for path, _ in store.records()] == [folder]


def test_existing_result_is_kept_unless_forced(tmp_path):
    store = ResultStore(tmp_path)
    evaluation = evaluate(QRELS, RUN, ["ndcg@10"])
    record = make_record("bm25", "scifact", 0.1)
    folder = store.write(record, evaluation, RUN)
    with pytest.raises(FileExistsError):
        store.write(record, evaluation, RUN)
    assert load_record(folder).metrics["ndcg@10"] == 0.1
    store.write(record.model_copy(update={"metrics": {"ndcg@10": 0.2, "recall@100": 0.3}}), evaluation, RUN, force=True)
    assert load_record(folder).metrics["ndcg@10"] == 0.2
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no .tmp or .trash left


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    evaluation = evaluate(QRELS, RUN, ["ndcg@10"])

    def broken(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(Run, "to_trec", broken)
    with pytest.raises(OSError, match="disk full"):
        store.write(make_record("bm25", "scifact", 0.1), evaluation, RUN)
    assert list(tmp_path.rglob("*")) == []  # no temporary, no lock file, not even the folders made for them
    assert list(store.records()) == []


def test_a_bumped_scoring_version_is_another_result_key_under_the_same_protocol(monkeypatch):
    identity = {"name": "bm25", "class": "pkg:bm25", "params": {}}
    key, protocol_hash = result_key(make_card(), identity), make_card().protocol_hash
    monkeypatch.setattr(protocol, "SCORING_VERSION", protocol.SCORING_VERSION + 1)
    assert result_key(make_card(), identity) != key  # not skipped to the old result
    assert make_card().protocol_hash == protocol_hash  # and still comparable with it


def test_a_stored_run_re_evaluates_exactly_where_6_decimals_would_tie(tmp_path):
    # Scores apart only past the 6th decimal: float64 ones (BM25's) and float32 ones (a model's).
    # Rounded, each query's three would tie and trec_eval would put the relevant "b" second.
    near = {"a": 0.1234561, "b": 0.1234564, "c": 0.1234562}
    scores = {"q1": near, "q2": {d: float(np.float32(s)) for d, s in near.items()},
              "q3": {"a": 1 / 3, "b": 1 / 3 + 1e-12, "c": 1 / 3 - 1e-12}}
    qrels = Qrels({q: {"b": 1} for q in scores})
    run = Run(scores, name="near")
    evaluation = evaluate(qrels, run, ["ndcg@10", "mrr@10"])
    rounded = Run({q: {d: round(s, 6) for d, s in docs.items()} for q, docs in scores.items()})
    assert evaluate(qrels, rounded, ["mrr@10"]).mean["mrr@10"] == 0.5 and evaluation.mean["mrr@10"] == 1.0

    record = make_record("near", "scifact", evaluation.mean["ndcg@10"])
    folder = ResultStore(tmp_path).write(record.model_copy(update={"metrics": evaluation.mean}), evaluation, run)
    back = Run.from_trec(folder / "run.trec.gz")
    assert {q: [d for d, _ in r] for q, r in back.items()} == {q: [d for d, _ in r] for q, r in run.items()}
    again = evaluate(qrels, back, ["ndcg@10", "mrr@10"])
    assert again.mean == load_record(folder).metrics == evaluation.mean
    assert again.per_query == evaluation.per_query
    assert again.ties == evaluation.ties and again.ties.tied_pairs == 0


def test_a_record_from_before_the_tie_report_still_loads(tmp_path):
    store = ResultStore(tmp_path)
    evaluation = evaluate(QRELS, RUN, ["ndcg@10"])
    record = make_record("bm25", "scifact", 0.1).model_copy(update={"ties": {"order": "trec_eval",
                                                                             **evaluation.ties.to_dict()}})
    folder = store.write(record, evaluation, RUN)
    assert load_record(folder).ties["tied_pairs"] == 0 and load_record(folder).ties["metric"] == "ndcg@10"
    old = json.loads((folder / "record.json").read_text())
    del old["ties"]  # as records were written before the tie report (their checksums aside)
    assert ResultRecord.model_validate(old).ties is None
