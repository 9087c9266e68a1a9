"""Values that make no sense, refused by field before any work, with the valid range; and what is
ambiguous but legal (a run query without judgments), counted and reported."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SCIFACT_SUITE, run_cli
from tests.faults.expect import expect_refusal, seeded_results

QRELS = "q1 0 d1 1\nq1 0 d2 0\nq2 0 d3 2\n"
RUN = "q1 Q0 d1 1 2.5 mine\nq1 Q0 d2 2 1.5 mine\nq2 Q0 d3 1 0.5 mine\n"

SUITE_HEAD = """name: faults
defaults: {language: en, split: test}
datasets:
  scifact:
    source: {kind: ir_datasets, id: beir/scifact/test}
"""
MINILM = "{model: sentence-transformers/all-MiniLM-L6-v2, format: plain"


@pytest.fixture
def work(tmp_path):
    seeded_results(tmp_path)
    (tmp_path / "qrels.trec").write_text(QRELS, encoding="utf-8")
    (tmp_path / "run.trec").write_text(RUN, encoding="utf-8")
    return tmp_path


def _evaluate(work, run_text=RUN, qrels_text=QRELS, *extra):
    run, qrels = work / "case.run", work / "case.qrels"
    run.write_text(run_text, encoding="utf-8")
    qrels.write_text(qrels_text, encoding="utf-8")
    return ("evaluate", "--run", str(run), "--qrels", str(qrels), *extra), run, qrels


# --- run scores -----------------------------------------------------------------------------------

@pytest.mark.parametrize("score", ["nan", "NaN", "inf", "-inf"])
def test_a_score_that_is_not_finite(score, work):
    args, run, _ = _evaluate(work, RUN.replace("1.5", score))
    expect_refusal(*args, first=f"error: {run}:2: the score is {score!r}; scores must be finite numbers",
                   results=work, cwd=work)


def test_import_stores_no_run_with_nan_scores(work):
    run = work / "theirs.trec"
    run.write_text("1 Q0 31715818 1 nan x\n", encoding="utf-8")
    expect_refusal("import", str(run), "--suite", str(SCIFACT_SUITE), "-d", "scifact", "--name", "theirs",
                   "--results", str(work / "results"), first=f"error: {run}:1: the score is 'nan'",
                   results=work, cwd=work)


# --- judgments ------------------------------------------------------------------------------------

@pytest.mark.parametrize("grade", ["-1", "1.5", "1000", "1e9"])
def test_a_grade_outside_whole_numbers_0_to_100(grade, work):
    args, _, qrels = _evaluate(work, RUN, QRELS.replace("d3 2", f"d3 {grade}"))
    expect_refusal(*args, first=f"error: {qrels}:3: the relevance {grade!r} is not a grade: grades are whole "
                                "numbers from 0", results=work, cwd=work)


def test_contradicting_duplicate_judgments(work):
    args, _, qrels = _evaluate(work, RUN, QRELS + "q1 0 d1 0\n")
    expect_refusal(*args, first=f"error: {qrels}:4: query 'q1', document 'd1' is judged 0 here and 1 on line 1.",
                   results=work, cwd=work)


def test_a_repeated_identical_judgment_is_kept_once(work):
    args, _, _ = _evaluate(work, RUN, QRELS + "q1 0 d1 1\n", "--json", "-m", "ndcg@10")
    result = run_cli(*args, cwd=work)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["ndcg@10"] == pytest.approx(1.0)


def test_a_run_query_without_judgments_is_counted_not_an_error(work):
    args, _, _ = _evaluate(work, RUN + "q9 Q0 d1 1 1.0 mine\n", QRELS, "--json", "-m", "ndcg@10")
    result = run_cli(*args, cwd=work)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["n_queries"], out["unjudged_queries"]) == (2, 1)
    table = run_cli(*args[:-3], "-m", "ndcg@10", cwd=work)
    assert "note: 1 queries of the run have no judgments; they are not scored" in table.stdout


# --- suite values -------------------------------------------------------------------------------

def _suite(work, retrievers: str, head: str = SUITE_HEAD):
    path = work / "suite.yaml"
    path.write_text(head + retrievers, encoding="utf-8")
    return path


@pytest.mark.parametrize("retrievers,name,line,field,says", [
    ("retrievers:\n  bm25:\n    class: bm25\n    params: {k1: fast}\n", "bm25", 9, "retrievers.bm25.params.k1",
     "`k1` is 'fast', but BM25Retriever takes a float"),
    ("retrievers:\n  bm25:\n    class: bm25\n    params: {lowercase: 1}\n", "bm25", 9,
     "retrievers.bm25.params.lowercase", "`lowercase` is 1, but BM25Retriever takes a bool"),
    ("retrievers:\n  bm25:\n    class: bm25\n    params: {stopwords: 5}\n", "bm25", 9,
     "retrievers.bm25.params.stopwords", "`stopwords` is 5, but BM25Retriever takes `str | list[str] | None`"),
    ("retrievers:\n  bm25:\n    class: bm25\n    sweep: {b: [0.4, high]}\n", "bm25", 9, "retrievers.bm25.sweep.b",
     "`b` is 'high', but BM25Retriever takes a float"),
    ("retrievers:\n  bm25:\n    class: bm25\n    params: {k3: 1.2}\n", "bm25", 9, "retrievers.bm25.params.k3",
     "BM25Retriever takes no parameter 'k3'; its parameters are k1, b,"),
    ("retrievers:\n  dense:\n    class: dense\n    params: {batch_size: 8}\n", "dense", 7, "retrievers.dense",
     "DenseRetriever needs `model` in its params."),
])
def test_a_retriever_param_of_the_wrong_name_or_type(retrievers, name, line, field, says, work):
    suite = _suite(work, retrievers)
    expect_refusal("run", str(suite), "-r", name, first=f"error: {suite}:{line}: field `{field}`: {says}",
                   results=work, cwd=work)


@pytest.mark.parametrize("params,field,says", [
    (f"{MINILM}, dim: 999}}", "params.dim", "dim=999 is outside the valid range: from 1 to 384, the model's output"),
    (f"{MINILM}, dim: 0}}", "params.dim", "dim=0 is outside the valid range: from 1 to 384"),
    (f"{MINILM}, storage: int4}}", "params.storage", "storage 'int4' is unknown; choose one of fp32, fp16, int8,"),
    (f"{MINILM}, precision: fp8}}", "params.precision", "precision 'fp8' is unknown; choose fp32, bf16 or int8."),
    (f"{MINILM}, precision: int8, device: cuda}}", "params.precision",
     "precision 'int8' quantises the encoder's linear layers for a CPU (its int8 kernels are oneDNN's, which have "
     "no GPU version), but device is 'cuda'; set device: cpu for int8, or use precision: bf16 (or fp32) on a GPU."),
])
def test_late_interaction_values_are_refused_before_any_encoding(params, field, says, offline, work):
    suite = _suite(work, f"retrievers:\n  li:\n    class: late_interaction\n    params: {params}\n")
    expect_refusal("run", str(suite), first=f"error: {suite}:9: field `retrievers.li.{field}`: retriever 'li': {says}",
                   results=work, cwd=work)


def test_a_sweep_point_beyond_the_models_dimension_fails_before_the_others_run(offline, work):
    suite = _suite(work, f"retrievers:\n  li:\n    class: late_interaction\n    params: {MINILM}}}\n"
                         "    sweep: {dim: [64, 4096]}\n")
    expect_refusal("run", str(suite), first=f"error: {suite}:10: field `retrievers.li.sweep.dim`: retriever "
                                            "'li@dim=4096': dim=4096 is outside the valid range", results=work, cwd=work)


def test_retrievers_written_as_a_list(work):
    suite = _suite(work, "retrievers:\n  - bm25\n  - dense\n")
    expect_refusal("run", str(suite), first=f"error: {suite}:6: field `retrievers`: must be a mapping of "
                                            "configuration names to entries", results=work, cwd=work)


def test_a_suite_without_datasets(work):
    suite = _suite(work, "", head="name: faults\ndatasets: {}\n")
    expect_refusal("list", "--suites", str(work), first=f"error: {suite}:2: field `datasets`: lists no datasets",
                   results=work, cwd=work)
