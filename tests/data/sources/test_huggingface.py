"""The `huggingface` source and the suites read through it (MLDR, LoCo, JQaRA/JaCWIR, MIRACL hard
negatives), offline: each test lays small data out in the real repo's own file layout and schema in
a temporary hub cache, at the commit the shipped suite pins, and loads it as a user would, through
`load_dataset` or the `harness` command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from harness.data import store
from harness.data.load import load_dataset
from harness.data.sources import get_source, huggingface
from harness.errors import DataError, DataUnavailableError, SuiteError
from harness.runs import Run
from harness.suite import load_suite

from tests.conftest import run_cli
from tests.data.sources.hubcache import REPO_ROOT, jsonl, offline_hub, parquet, put, suite_without_expected

SUITES = REPO_ROOT / "suites"
MLDR = "f3837caa8004c6b49954bb6b511d424222eb9161"
LOCO_DOCUMENTS = "3700f7dbed22968bfc15003eb69b85bfa9998d77"
LOCO_QUERIES = "8b55e17ef3ee008e38f9e0829612a11afb30cd67"
JQARA = "6172542a3159fd43ade568d9d7267d1b3d364cc9"
JACWIR = "dab93fba1ec8bb500e580e426f82a427b752f4cb"
MIRACL_HN = "d7d94fa4b946cec4a27c84653aa0cf6b33f74a3c"
JQARA_FILE = "data/test-00000-of-00001.parquet"


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """An empty HF_HOME of an offline user, and a fresh harness cache."""
    return offline_hub(monkeypatch, tmp_path)


# -- JQaRA: two questions, three candidates each, one passage shared -----------------------------
# Every passage is four Japanese words (SudachiPy, the `ja` analyser of the suite's BM25), so the
# ranking follows how many of the question's words a candidate holds: question 1 (富士山: 富士, 山)
# ranks 101 (both) > 103 (山) > 102 (none); question 2 (琵琶の湖: 琵琶, 湖) ranks 102 (both) >
# 105 (琵琶) > 104 (none).
PASSAGES = {"101": ("富士", "山の高さ"), "102": ("琵琶", "湖の広さ"), "103": ("東京", "山の高さ"),
            "104": ("京都", "寺の広さ"), "105": ("滋賀", "琵琶の高さ")}
JQARA_ROWS = [("QA20CAPR-0001", "富士山", "101", 0), ("QA20CAPR-0001", "富士山", "102", 0),
              ("QA20CAPR-0001", "富士山", "103", 1), ("QA20CAPR-0002", "琵琶の湖", "102", 1),
              ("QA20CAPR-0002", "琵琶の湖", "104", 0), ("QA20CAPR-0002", "琵琶の湖", "105", 0)]


def jqara_file(rows=JQARA_ROWS, drop: str | None = None) -> bytes:
    table = [{"id": f"{q}-{p}", "q_id": q, "passage_row_id": p, "label": label, "text": PASSAGES[p][1],
              "title": PASSAGES[p][0], "question": question, "answers": ["富士山" if q.endswith("1") else "琵琶湖"]}
             for q, question, p, label in rows]
    if drop:
        table = [{k: v for k, v in row.items() if k != drop} for row in table]
    return parquet(table)


# -- JaCWIR: two questions, their positive and two negatives each ----------------------------------
# Japanese words per page: question 1 (猫の餌皿: 猫, 餌皿) ranks its positive a1 (both) above a2
# (餌皿) and a3 (none); question 2 (電車の旅行: 電車, 旅行) ranks the negative b2 (both) above its
# positive b1 (旅行) and b3 (none). c1 is in the collection only.
PAGES = {"a1": ("猫", "餌皿の選び方"), "a2": ("犬", "餌皿の選び方"), "a3": ("鳥", "籠の掃除"),
         "b1": ("鉄道", "旅行の計画"), "b2": ("電車", "旅行の記録"), "b3": ("料理", "献立の作成"),
         "c1": ("天気", "予報の確認")}
JACWIR_EVAL = [{"query": "猫の餌皿", "positive": "doc_id#a1", "negatives": ["doc_id#a2", "doc_id#a3"]},
               {"query": "電車の旅行", "positive": "doc_id#b1", "negatives": ["doc_id#b2", "doc_id#b3"]}]


def jacwir_files(pages=PAGES, evaluation=JACWIR_EVAL) -> dict[str, bytes]:
    collection = [{"doc_id": f"doc_id#{k}", "title": t, "description": d, "link": f"https://example.com/{k}",
                   "date": "2024-03-01"} for k, (t, d) in pages.items()]
    return {"collection/collection-00000-of-00001.parquet": parquet(collection),
            "eval/eval-00000-of-00001.parquet": parquet(evaluation)}


def test_shipped_suites_validate_pin_commits_and_list_their_datasets():
    mldr, loco = load_suite(SUITES / "mldr.yaml"), load_suite(SUITES / "loco.yaml")
    jqara, hard = load_suite(SUITES / "jqara.yaml"), load_suite(SUITES / "miracl-hard-negatives.yaml")
    assert list(mldr.datasets) == ["ar", "de", "en", "es", "fr", "hi", "it", "ja", "ko", "pt", "ru", "th", "zh"]
    assert list(loco.datasets) == ["summ_screen_fd", "gov_report", "qmsum", "qasper_title", "qasper_abstract",
                                   "2wikimqa", "multifieldqa", "passage_retrieval", "courtlistener_HTML",
                                   "courtlistener_Plain_Text", "legal_case_reports", "stackoverflow"]
    assert list(jqara.datasets) == ["jqara", "jacwir"]
    assert list(hard.datasets) == [f"miracl-hn-{lang}" for lang in
                                   "ar bn de en es fa fi fr hi id ja ko ru sw te th yo zh".split()]
    commits = set()
    for suite in (mldr, loco, jqara, hard):
        for spec in suite.datasets.values():
            assert spec.source.kind == "huggingface"
            for part in spec.source.parts().values():
                repo, commit = spec.source.location(part)
                assert re.fullmatch(r"[0-9a-f]{40}", commit), (suite.name, spec.name, repo)
                commits.add((repo, commit))
    assert commits == {("Shitao/MLDR", MLDR), ("hazyresearch/LoCoV1-Documents", LOCO_DOCUMENTS),
                       ("hazyresearch/LoCoV1-Queries", LOCO_QUERIES), ("hotchpotch/JQaRA", JQARA),
                       ("hotchpotch/JaCWIR", JACWIR), ("mteb/MIRACLRetrievalHardNegatives", MIRACL_HN)}
    # Long documents: how much of them is read is part of the protocol.
    assert {(s.max_length.document, s.main_metric) for s in [*mldr.datasets.values(), *loco.datasets.values()]} \
        == {(8192, "ndcg@10")}
    en = mldr.dataset("en").expected
    assert (en.documents, en.queries, en.judgments, en.grades) == (200000, 800, 800, [1])
    qa, cwir = jqara.dataset("jqara"), jqara.dataset("jacwir")
    assert (qa.mode, qa.candidates.source, qa.metrics, qa.main_metric) == ("rerank", "dataset", ["ndcg@10", "mrr@10"], "ndcg@10")
    assert (qa.expected.queries, qa.expected.judgments, qa.expected.grades) == (1667, 166700, [0, 1])
    assert (cwir.main_metric, cwir.expected.documents, cwir.expected.queries) == ("map@10", 513107, 5000)
    assert hard.dataset("miracl-hn-ar").expected.documents == 192103
    assert mldr.dataset("ar").source.id == f"Shitao/MLDR@{MLDR[:7]}:mldr-v1.0-ar/test.jsonl.gz"


def test_a_branch_instead_of_a_commit_is_refused_with_its_line(tmp_path):
    text = (SUITES / "jqara.yaml").read_text(encoding="utf-8").replace(f"revision: {JQARA}", "revision: main")
    path = tmp_path / "jqara.yaml"
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("      revision: main") + 1
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert str(e.value) == (
        f"{path}:{line}: field `datasets.jqara.source.revision`: revision 'main' is not a commit: give the full "
        "40-character commit sha of the hub repo (a branch or tag such as 'main' moves, so it pins nothing; the "
        "repo's 'Files and versions' history lists the commits)."
    )


def test_an_unknown_column_reference_field_is_a_suite_error(tmp_path):
    text = (SUITES / "jqara.yaml").read_text(encoding="utf-8").replace("doc_ids: [positive, negatives]",
                                                                       "doc_id: [positive, negatives]")
    path = tmp_path / "jqara.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert "field `datasets.jacwir.source.candidates.doc_id`: unknown field (a typo?)." in str(e.value)
    assert "field `datasets.jacwir.source.candidates.doc_ids`: required field is missing." in str(e.value)


def test_mldr_language_loads_from_its_jsonl_files(hub, tmp_path):
    corpus = [{"docid": "doc-ar-0", "text": "نص طويل أول"}, {"docid": "doc-ar-1", "text": "نص طويل ثان"},
              {"docid": "doc-ar-2", "text": "نص طويل ثالث"}]
    test = [{"query_id": "q-ar-0", "query": "سؤال أول", "positive_passages": [corpus[1]], "negative_passages": []},
            {"query_id": "q-ar-1", "query": "سؤال ثان", "positive_passages": [corpus[2]], "negative_passages": []}]
    put(hub, "Shitao/MLDR", MLDR, {"mldr-v1.0-ar/corpus.jsonl.gz": jsonl(corpus, compress=True),
                                   "mldr-v1.0-ar/test.jsonl.gz": jsonl(test, compress=True)})
    spec = load_suite(suite_without_expected("mldr", tmp_path)).dataset("ar")
    dataset = load_dataset(spec, "mldr")
    assert dataset.corpus.ids == ["doc-ar-0", "doc-ar-1", "doc-ar-2"]
    assert dataset.corpus.texts == ["نص طويل أول", "نص طويل ثان", "نص طويل ثالث"]
    assert dataset.corpus.titles == ["", "", ""]
    assert (dataset.queries.ids, dataset.queries.texts) == (["q-ar-0", "q-ar-1"], ["سؤال أول", "سؤال ثان"])
    assert dataset.qrels.to_dict() == {"q-ar-0": {"doc-ar-1": 1}, "q-ar-1": {"doc-ar-2": 1}}
    assert dataset.candidates is None
    assert dataset.revision["hub_commits"] == {"Shitao/MLDR": MLDR}
    # The shipped suite expects the full language's counts, and says so.
    with pytest.raises(DataError) as e:
        load_dataset(load_suite(SUITES / "mldr.yaml").dataset("ar"), "mldr")
    assert "expects 7607 documents" in str(e.value) and "gave 3" in str(e.value)


def test_loco_task_reads_two_repos_and_keeps_its_own_rows(hub, tmp_path):
    documents = [{"pid": "qmsum_Passage_0", "passage": "Meeting one transcript.", "dataset": "qmsum"},
                 {"pid": "gov_report_Passage_0", "passage": "Another task's report.", "dataset": "gov_report"},
                 {"pid": "qmsum_Passage_1", "passage": "Meeting two transcript.", "dataset": "qmsum"}]
    queries = [{"qid": "qmsum_Query_0", "query": "What was decided?", "dataset": "qmsum",
                "answer_pids": ["qmsum_Passage_0", "qmsum_Passage_1"]},
               {"qid": "qmsum_Query_1", "query": "Who spoke first?", "dataset": "qmsum", "answer_pids": ["qmsum_Passage_1"]}]
    put(hub, "hazyresearch/LoCoV1-Documents", LOCO_DOCUMENTS, {"documents/qmsum_test.jsonl": jsonl(documents)})
    put(hub, "hazyresearch/LoCoV1-Queries", LOCO_QUERIES, {"documents/qmsum_test.jsonl": jsonl(queries)})
    dataset = load_dataset(load_suite(suite_without_expected("loco", tmp_path)).dataset("qmsum"), "loco")
    assert dataset.corpus.ids == ["qmsum_Passage_0", "qmsum_Passage_1"]  # `where: {dataset: qmsum}`
    assert dataset.corpus.texts == ["Meeting one transcript.", "Meeting two transcript."]
    assert dataset.queries.ids == ["qmsum_Query_0", "qmsum_Query_1"]
    assert dataset.qrels.to_dict() == {"qmsum_Query_0": {"qmsum_Passage_0": 1, "qmsum_Passage_1": 1},
                                       "qmsum_Query_1": {"qmsum_Passage_1": 1}}
    assert dataset.revision["hub_commits"] == {"hazyresearch/LoCoV1-Documents": LOCO_DOCUMENTS,
                                               "hazyresearch/LoCoV1-Queries": LOCO_QUERIES}


def test_jqara_candidates_keep_their_order_and_survive_the_parquet_cache(hub, tmp_path, monkeypatch):
    put(hub, "hotchpotch/JQaRA", JQARA, {JQARA_FILE: jqara_file()})
    spec = load_suite(suite_without_expected("jqara", tmp_path)).dataset("jqara")
    dataset = load_dataset(spec, "jqara")
    # A passage that is a candidate of two questions is one document.
    assert dataset.corpus.ids == ["101", "102", "103", "104", "105"]
    assert dataset.corpus.joined(["title", "text"], " ")[:2] == ["富士 山の高さ", "琵琶 湖の広さ"]
    assert (dataset.queries.ids, dataset.queries.texts) == (["QA20CAPR-0001", "QA20CAPR-0002"], ["富士山", "琵琶の湖"])
    assert dataset.qrels.to_dict() == {"QA20CAPR-0001": {"101": 0, "102": 0, "103": 1},
                                       "QA20CAPR-0002": {"102": 1, "104": 0, "105": 0}}
    expected = {"QA20CAPR-0001": ["101", "102", "103"], "QA20CAPR-0002": ["102", "104", "105"]}
    assert dataset.candidates == expected
    entry = store.entry_dir("huggingface", spec.source.id, huggingface.revision(spec.source))
    assert (entry / "candidates.parquet").is_file()
    monkeypatch.setattr(huggingface, "read", lambda *a: pytest.fail("the hub files were read again"))
    assert load_dataset(spec, "jqara").candidates == expected


def test_jacwir_builds_query_ids_and_candidates_as_its_evaluator_does(hub, tmp_path):
    put(hub, "hotchpotch/JaCWIR", JACWIR, jacwir_files())
    dataset = load_dataset(load_suite(suite_without_expected("jqara", tmp_path)).dataset("jacwir"), "jqara")
    assert len(dataset.corpus) == 7 and (dataset.corpus.titles[0], dataset.corpus.texts[0]) == ("猫", "餌皿の選び方")
    assert dataset.queries.ids == ["q_id##doc_id#a1", "q_id##doc_id#b1"]
    # The positive is judged; the negatives are mined, not judged.
    assert dataset.qrels.to_dict() == {"q_id##doc_id#a1": {"doc_id#a1": 1}, "q_id##doc_id#b1": {"doc_id#b1": 1}}
    assert dataset.candidates == {"q_id##doc_id#a1": ["doc_id#a1", "doc_id#a2", "doc_id#a3"],
                                  "q_id##doc_id#b1": ["doc_id#b1", "doc_id#b2", "doc_id#b3"]}


def test_jqara_and_jacwir_rerank_their_candidates_with_bm25_from_the_command_line(hub, tmp_path):
    put(hub, "hotchpotch/JQaRA", JQARA, {JQARA_FILE: jqara_file()})
    put(hub, "hotchpotch/JaCWIR", JACWIR, jacwir_files())
    suite, results = suite_without_expected("jqara", tmp_path), tmp_path / "results"
    done = run_cli("run", str(suite), "-d", "jqara", "-d", "jacwir", "-r", "bm25", "--results", str(results))
    assert done.returncode == 0, done.stderr
    [jqara] = list((results / "jqara" / "jqara").iterdir())
    record = json.loads((jqara / "record.json").read_text())
    # Question 1: its relevant passage 103 is second (nDCG 1/log2(3), RR 1/2); question 2: first.
    assert record["metrics"]["ndcg@10"] == pytest.approx((1 / 1.5849625007211562 + 1) / 2, abs=1e-6)
    assert record["metrics"]["mrr@10"] == pytest.approx(0.75, abs=1e-6)
    assert record["protocol"]["mode"] == "rerank" and record["protocol"]["candidates"]["source"] == "dataset"
    assert record["protocol"]["revision"]["hub_commits"] == {"hotchpotch/JQaRA": JQARA}
    run = Run.from_trec(jqara / "run.trec.gz")
    assert [d for d, _ in run["QA20CAPR-0001"]] == ["101", "103", "102"]
    assert [d for d, _ in run["QA20CAPR-0002"]] == ["102", "105", "104"]
    assert "ndcg@10=0.8155" in done.stdout
    [jacwir] = list((results / "jqara" / "jacwir").iterdir())
    record = json.loads((jacwir / "record.json").read_text())
    # Positives first and second: AP@10 1 and 1/2, both within the top 10.
    assert (record["main_metric"], record["n_queries"]) == ("map@10", 2)
    assert record["metrics"]["map@10"] == pytest.approx(0.75, abs=1e-6)
    assert record["metrics"]["hit_rate@10"] == pytest.approx(1.0, abs=1e-6)
    run = Run.from_trec(jacwir / "run.trec.gz")
    assert [d for d, _ in run["q_id##doc_id#b1"]] == ["doc_id#b2", "doc_id#b1", "doc_id#b3"]


def test_candidates_outside_the_documents_are_an_error(hub, tmp_path):
    evaluation = [{"query": "猫の餌皿", "positive": "doc_id#a1", "negatives": ["doc_id#gone"]}]
    put(hub, "hotchpotch/JaCWIR", JACWIR, jacwir_files(evaluation=evaluation))
    with pytest.raises(DataError) as e:
        load_dataset(load_suite(suite_without_expected("jqara", tmp_path)).dataset("jacwir"), "jqara")
    assert str(e.value).startswith("dataset 'jacwir' of suite 'jqara': 1 candidates (query/document) name documents "
                                   "that `source.documents` does not hold: q_id##doc_id#a1/doc_id#gone.")


def test_miracl_hard_negatives_matches_config_patterns_and_wants_every_shard(hub, tmp_path):
    corpus = [{"_id": "7#0", "title": "Hafen", "text": "Ein Hafen."}, {"_id": "7#1", "title": "Hafen", "text": "Schiffe."},
              {"_id": "9#0", "title": "Berg", "text": "Ein Berg."}]
    qrels_schema = pa.schema([("query-id", pa.string()), ("corpus-id", pa.string()), ("score", pa.int64())])
    files = {"de-corpus/dev-00000-of-00001.parquet": parquet(corpus),
             "de-queries/dev-00000-of-00001.parquet": parquet([{"_id": "31", "text": "Was ist ein Hafen?"}]),
             "de-qrels/dev-00000-of-00001.parquet": parquet(
                 [{"query-id": "31", "corpus-id": "7#0", "score": 1}, {"query-id": "31", "corpus-id": "9#0", "score": 0}],
                 qrels_schema)}
    put(hub, "mteb/MIRACLRetrievalHardNegatives", MIRACL_HN, files)
    spec = load_suite(suite_without_expected("miracl-hard-negatives", tmp_path)).dataset("miracl-hn-de")
    dataset = load_dataset(spec, "miracl-hard-negatives")
    assert dataset.corpus.ids == ["7#0", "7#1", "9#0"] and dataset.corpus.titles[2] == "Berg"
    assert dataset.qrels.to_dict() == {"31": {"7#0": 1, "9#0": 0}}
    # A corpus in two shards of which the cache holds one is incomplete, not smaller.
    files["de-corpus/dev-00000-of-00002.parquet"] = files.pop("de-corpus/dev-00000-of-00001.parquet")
    put(hub, "mteb/MIRACLRetrievalHardNegatives", "0" * 40, files)
    with pytest.raises(DataUnavailableError) as e:
        huggingface.read(spec.source.model_copy(update={"revision": "0" * 40}), "miracl-hn-de")
    assert ("Missing: mteb/MIRACLRetrievalHardNegatives at revision " + "0" * 40 +
            ": de-corpus/dev-00001-of-00002.parquet (a shard of a matched set is absent).") in str(e.value)


def test_missing_files_name_repo_revision_cache_and_how_to_fill_it(hub, tmp_path):
    spec = load_suite(suite_without_expected("jqara", tmp_path)).dataset("jqara")
    with pytest.raises(DataUnavailableError) as e:
        load_dataset(spec, "jqara")
    cache = hub / "hub"
    assert str(e.value) == (
        "The data of dataset 'jqara' of suite 'jqara' is not in the Hugging Face hub cache (HF_HUB_OFFLINE is set, "
        f"so nothing was downloaded). Missing: hotchpotch/JQaRA at revision {JQARA}: {JQARA_FILE} (not in the cache). "
        f"The hub cache is {cache} (HF_HOME={hub}, whose hub/ folder it is). To fill it, run `hf download "
        f"hotchpotch/JQaRA {JQARA_FILE} --repo-type dataset --revision {JQARA}` on a machine with internet access, "
        f"then copy that machine's hub cache folder datasets--hotchpotch--JQaRA into {cache}, or set HF_HOME to a "
        "folder whose hub/ already holds these files; then run again."
    )
    assert not (tmp_path / "harness" / "datasets").exists()


def test_missing_data_on_the_command_line_exits_2_and_writes_no_result(tmp_path):
    results, hf_home = tmp_path / "results", tmp_path / "empty-hf"
    done = run_cli("run", str(SUITES / "jqara.yaml"), "-d", "jqara", "-r", "bm25", "--results", str(results),
                   env={"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "HARNESS_HOME": str(tmp_path / "harness")})
    assert done.returncode == 2
    assert done.stderr.startswith("error: The data of dataset 'jqara' of suite 'jqara' is not in the Hugging Face hub cache")
    for part in (f"hotchpotch/JQaRA at revision {JQARA}: {JQARA_FILE}", f"The hub cache is {hf_home / 'hub'}",
                 f"HF_HOME={hf_home}", f"hf download hotchpotch/JQaRA {JQARA_FILE} --repo-type dataset --revision {JQARA}"):
        assert part in done.stderr
    assert not results.exists() or not any(results.rglob("*"))


def test_a_column_the_file_lacks_is_named_with_the_columns_it_has(hub, tmp_path):
    put(hub, "hotchpotch/JQaRA", JQARA, {JQARA_FILE: jqara_file(drop="question")})
    with pytest.raises(DataError) as e:
        load_dataset(load_suite(suite_without_expected("jqara", tmp_path)).dataset("jqara"), "jqara")
    assert str(e.value) == (
        f"dataset 'jqara' of suite 'jqara': hotchpotch/JQaRA@{JQARA[:7]}:{JQARA_FILE} has no column 'question', which "
        "`source.queries` names; its columns are answers, id, label, passage_row_id, q_id, text, title. Fix the "
        "column names of `source.queries` in the suite."
    )


def test_contradicting_grades_for_one_pair_are_an_error(hub, tmp_path):
    rows = JQARA_ROWS + [("QA20CAPR-0002", "琵琶の湖", "104", 1)]
    put(hub, "hotchpotch/JQaRA", JQARA, {JQARA_FILE: jqara_file(rows)})
    with pytest.raises(DataError) as e:
        load_dataset(load_suite(suite_without_expected("jqara", tmp_path)).dataset("jqara"), "jqara")
    assert "judges query 'QA20CAPR-0002' / document '104' twice, with grades 0 and 1" in str(e.value)


def test_ir_datasets_sources_still_go_by_their_id():
    source = load_suite(SUITES / "beir.yaml").dataset("scifact").source
    from harness.data.sources import irds

    assert get_source("ir_datasets").revision(source) == irds.revision("beir/scifact/test")
