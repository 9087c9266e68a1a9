"""The CLI end to end, as a user runs it: fresh processes, the real ir_datasets path, offline."""

import json
import shutil

import pytest

from harness.results import ResultStore, load_per_query

from tests.conftest import REPO, SCIFACT_SUITE, run_cli
from tests.helpers import ndcg

PYSERINI_BM25_FLAT_SCIFACT = 0.6789  # Pyserini's published BEIR (v1.0.0) flat BM25 nDCG@10


@pytest.fixture(scope="module")
def scifact_bm25(cache_root, tmp_path_factory):
    """One BM25 run on SciFact test, shared by the tests below."""
    work = tmp_path_factory.mktemp("cli")
    env = {"IR_DATASETS_HOME": str(cache_root / "ir_datasets"), "HARNESS_HOME": str(cache_root / "harness")}
    done = run_cli("run", str(SCIFACT_SUITE), "--dataset", "scifact", "--retriever", "bm25",
                   "--results", str(work / "results"), env=env)
    assert done.returncode == 0, done.stderr
    return work, env, done


def test_bm25_on_scifact_reproduces_pyserini(scifact_bm25):
    work, _, done = scifact_bm25
    ((folder, record),) = list(ResultStore(work / "results").records())
    assert "done" in done.stdout and "ndcg@10=0.6769" in done.stdout
    assert abs(record.metrics["ndcg@10"] - PYSERINI_BM25_FLAT_SCIFACT) < 0.01
    assert record.metrics["ndcg@10"] == pytest.approx(0.67689, abs=5e-5)
    assert record.metrics["recall@100"] == pytest.approx(0.92867, abs=5e-5)
    assert record.n_queries == 300
    assert record.protocol["system"]["tokenizer"]["stemmer"] == "pystemmer:porter"
    assert record.protocol["revision"]["files_md5"] == ["5f7d1de60b170fc8027bb7898e2efca1"]
    per_query = load_per_query(folder)
    assert len(per_query) == 300
    assert per_query["ndcg@10"].mean() == pytest.approx(record.metrics["ndcg@10"], abs=1e-12)


def test_second_run_is_skipped(scifact_bm25):
    work, env, _ = scifact_bm25
    again = run_cli("run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "bm25", "--results", str(work / "results"), env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[0] == "skipped"
    assert len(list(ResultStore(work / "results").records())) == 1


def test_stored_run_re_evaluates_to_the_same_numbers(scifact_bm25):
    work, env, _ = scifact_bm25
    ((folder, record),) = list(ResultStore(work / "results").records())
    result = run_cli("evaluate", "--run", str(folder / "run.trec.gz"), "--suite", str(SCIFACT_SUITE),
                     "--dataset", "scifact", "--json", env=env)
    assert result.returncode == 0, result.stderr
    # Exactly: the stored scores are at full precision, so ties and order are those scored.
    assert json.loads(result.stdout)["metrics"] == record.metrics
    assert json.loads(result.stdout)["ties"] == record.ties and record.ties["order"] == "trec_eval"
    # Against a plain qrels file too: the shipped official BEIR judgments for SciFact.
    qrels = REPO.parent / "shared" / "data" / "reference" / "beir" / "qrels.beir-v1.0.0-scifact.test.txt.gz"
    plain = work / "scifact.qrels"
    import gzip

    plain.write_bytes(gzip.decompress(qrels.read_bytes()))
    result = run_cli("evaluate", "--run", str(folder / "run.trec.gz"), "--qrels", str(plain), "-m", "ndcg@10", "--json")
    assert json.loads(result.stdout)["metrics"]["ndcg@10"] == pytest.approx(record.metrics["ndcg@10"], abs=1e-12)


def test_imported_run_is_stored_and_reported_beside_bm25(scifact_bm25):
    work, env, _ = scifact_bm25
    ((folder, record),) = list(ResultStore(work / "results").records())
    shutil.copy(folder / "run.trec.gz", work / "theirs.trec.gz")
    done = run_cli("import", str(work / "theirs.trec.gz"), "--suite", str(SCIFACT_SUITE), "-d", "scifact",
                   "--name", "their_bm25", "--results", str(work / "results"), env=env)
    assert done.returncode == 0, done.stderr
    theirs = next(r for _, r in ResultStore(work / "results").records() if r.label == "their_bm25")
    assert theirs.metrics == record.metrics and theirs.ties == record.ties
    assert f"ndcg@10 over tie orders: {record.metrics['ndcg@10']:.4f} in trec_eval order" in done.stdout
    report = run_cli("report", str(work / "results"), "-f", "markdown", "-f", "csv", "-f", "latex",
                     "--out", str(work / "reports"))
    assert report.returncode == 0, report.stderr
    md = (work / "reports" / "results.md").read_text()
    assert "| bm25 | **67.7** | **67.7** |" in md and "| their_bm25 | **67.7** | **67.7** |" in md
    assert (work / "reports" / "results.csv").read_text().splitlines()[3] == "beir,bm25,0.676887,0.676887"
    assert "\\begin{tabular}{lrr}" in (work / "reports" / "results.tex").read_text()


def test_malformed_suite_is_one_paragraph_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCIFACT_SUITE.read_text().replace("main_metric: ndcg@10", "main_metric: ndcg@10\n  bogus: 1"))
    result = run_cli("run", str(bad), "--results", str(tmp_path / "results"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:14: field `defaults.bogus`: unknown field (a typo?)" in " ".join(result.stderr.split())
    assert not (tmp_path / "results").exists()


def test_unknown_dataset_names_the_known_ones_and_writes_nothing(tmp_path):
    result = run_cli("run", str(SCIFACT_SUITE), "--dataset", "scifakt", "--results", str(tmp_path / "results"))
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "has no dataset 'scifakt'. Its datasets are: trec-covid, nfcorpus, nq," in message
    assert ", scifact, msmarco, bioasq, signal1m, trec-news, robust04." in message
    assert not (tmp_path / "results").exists()


def test_missing_cache_names_the_file_and_the_variable_and_writes_nothing(offline, tmp_path):
    env = {"IR_DATASETS_HOME": str(tmp_path / "empty"), "HARNESS_HOME": str(tmp_path / "home")}
    result = run_cli("run", str(SCIFACT_SUITE), "-d", "scifact", "--results", str(tmp_path / "results"), env=env)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert "'beir/scifact/test' (dataset 'scifact' of suite 'beir') is not in the ir_datasets cache" in message
    assert f"IR_DATASETS_HOME, now {tmp_path / 'empty'}" in message
    assert f"{tmp_path / 'empty' / 'beir' / 'scifact' / 'source.zip'} (md5 5f7d1de60b170fc8027bb7898e2efca1" in message
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()
    assert not list((tmp_path / "home").rglob("manifest.json")) if (tmp_path / "home").exists() else True


def test_list_shows_suites_datasets_and_retrievers():
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    assert "suite beir" in result.stdout
    assert "scifact" in result.stdout and "ir_datasets:beir/scifact/test" in result.stdout
    assert "harness.retrievers.bm25:BM25Retriever" in result.stdout
    assert "minilm-maxsim@dim=128" in result.stdout and "dense-minilm" in result.stdout


# q1: d1, d2, d3 tie (grades 2, 0, 1) and the rank column orders them d1 d2 d3, trec_eval d3 d2 d1;
# q2: d5, d6 tie (grades 1, 0), rank d5 d6, trec_eval d6 d5; q3 has no tie.
TIED_RUN = """q1 Q0 d1 1 0.5 sys
q1 Q0 d2 2 0.5 sys
q1 Q0 d3 3 0.5 sys
q1 Q0 d4 4 0.25 sys
q2 Q0 d5 1 0.75 sys
q2 Q0 d6 2 0.75 sys
q3 Q0 d7 1 0.9 sys
q3 Q0 d8 2 0.1 sys
"""
TIED_QRELS = "q1 0 d1 2\nq1 0 d3 1\nq2 0 d5 1\nq3 0 d7 1\n"


def test_evaluate_orders_ties_like_trec_eval_or_by_the_files_rank_column(tmp_path):
    (tmp_path / "tied.trec").write_text(TIED_RUN)
    (tmp_path / "qrels").write_text(TIED_QRELS)
    base = ["evaluate", "--run", str(tmp_path / "tied.trec"), "--qrels", str(tmp_path / "qrels"), "-m", "ndcg@10"]
    expected = {
        "trec_eval": (ndcg([1, 0, 2, 0], [2, 1]) + ndcg([0, 1], [1]) + 1.0) / 3,
        "rank": (ndcg([2, 0, 1, 0], [2, 1]) + 1.0 + 1.0) / 3,
    }
    pessimistic = (ndcg([0, 1, 2, 0], [2, 1]) + ndcg([0, 1], [1]) + 1.0) / 3
    for order, value in expected.items():
        result = run_cli(*base, "--ties", order, "--json")
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["metrics"]["ndcg@10"] == pytest.approx(value, abs=1e-12)
        ties = out["ties"]
        assert {k: ties[k] for k in ("order", "metric", "pairs", "tied_pairs", "tied_groups", "mixed_groups",
                                     "queries_with_ties")} == {"order": order, "metric": "ndcg@10", "pairs": 8,
                                                               "tied_pairs": 5, "tied_groups": 2, "mixed_groups": 2,
                                                               "queries_with_ties": 2}
        assert ties["optimistic"] == pytest.approx(1.0, abs=1e-12)
        assert ties["pessimistic"] == pytest.approx(pessimistic, abs=1e-12)
        assert ties["optimistic"] > value > ties["pessimistic"]
    assert expected["rank"] - expected["trec_eval"] > 0.18
    text = run_cli(*base, "--ties", "rank").stdout
    assert ("ties: 5 of 8 scored pairs share their score with another document of their query, in 2 groups "
            "over 2 queries; 2 groups mix grades") in text
    assert f"ndcg@10 over tie orders: {expected['rank']:.4f} in rank order, optimistic 1.0000, " \
           f"pessimistic {pessimistic:.4f}" in text
    # The default is trec_eval's order.
    assert f"│ ndcg@10 │ {expected['trec_eval']:.4f} │" in run_cli(*base).stdout


def test_an_unknown_tie_order_is_a_usage_error_naming_the_choices(tmp_path):
    (tmp_path / "tied.trec").write_text(TIED_RUN)
    (tmp_path / "qrels").write_text(TIED_QRELS)
    for args in (["evaluate", "--run", str(tmp_path / "tied.trec"), "--qrels", str(tmp_path / "qrels")],
                 ["import", str(tmp_path / "tied.trec"), "--suite", str(SCIFACT_SUITE), "-d", "scifact",
                  "--name", "theirs", "--results", str(tmp_path / "results")]):
        result = run_cli(*args, "--ties", "docid")
        assert result.returncode == 2
        assert "Invalid value for '--ties'" in result.stderr
        assert "'docid' is not one of 'trec_eval', 'rank'" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()
