"""Files that cannot be read as what they should be: a named error with the file (and the line
where there is one), status 2, nothing stored. An empty run, or one with nothing judged, is an
error too: scored, it would be a silent 0."""

from __future__ import annotations

import gzip

import pytest

from tests.conftest import SCIFACT_SUITE, run_cli
from tests.faults.expect import expect_refusal, harness_home, seeded_results
from tests.faults.state import assert_untouched, tree_state

RUN = "q1 Q0 d1 1 2.5 mine\nq1 Q0 d2 2 1.5 mine\nq2 Q0 d3 1 0.5 mine\n"
QRELS = "q1 0 d1 1\nq2 0 d3 2\n"


@pytest.fixture
def work(tmp_path):
    seeded_results(tmp_path)
    (tmp_path / "run.trec").write_text(RUN, encoding="utf-8")
    (tmp_path / "qrels.trec").write_text(QRELS, encoding="utf-8")
    return tmp_path


def _truncated_gzip(path, text):
    whole = gzip.compress(text.encode() * 50)
    path.write_bytes(whole[: len(whole) // 2])
    return path


def _unreadable(work, kind: str, text: str):
    """A file of the given kind of damage, holding ``text`` where it holds anything."""
    path = work / f"{kind}.trec"
    if kind == "missing":
        return path
    if kind == "folder":
        path.mkdir()
    elif kind == "truncated-gzip":
        path = _truncated_gzip(work / "truncated.trec.gz", text)
    elif kind == "plain-named-gz":
        path = work / "plain.trec.gz"
        path.write_text(text, encoding="utf-8")
    elif kind == "latin-1":
        path.write_bytes(text.replace("d1", "d\xe91").encode("latin-1"))
    elif kind == "binary":
        path.write_bytes(b"PAR1\x15\x04\x15\x00\x15\x8c\x01L\x15\x02" + bytes(range(256)))  # Parquet
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "blank":
        path.write_text("\n   \n\t\n", encoding="utf-8")
    return path


# What the first line says about each kind of damage (after "error: <path>").
SAYS = {
    "missing": ": no such file.",
    "folder": " is a folder; give the",
    "truncated-gzip": ": the gzip data is truncated or corrupt",
    "plain-named-gz": ": named .gz but not gzip-compressed.",
    "latin-1": ":1: not UTF-8 text (byte 0xe9 at column 8).",
    "binary": ":1: binary data (a NUL byte)",
    "empty": ": holds no {what} lines (the file is empty or blank).",
    "blank": ": holds no {what} lines (the file is empty or blank).",
}


@pytest.mark.parametrize("kind", list(SAYS))
def test_evaluate_names_an_unreadable_run(kind, work):
    run = _unreadable(work, kind, RUN)
    expect_refusal("evaluate", "--run", str(run), "--qrels", str(work / "qrels.trec"),
                   first=f"error: {run}" + SAYS[kind].format(what="run"), results=work, cwd=work)


@pytest.mark.parametrize("kind", ["missing", "folder", "truncated-gzip", "latin-1", "empty"])
def test_evaluate_names_unreadable_judgments(kind, work):
    qrels = _unreadable(work, kind, QRELS)
    says = SAYS[kind].format(what="judgment").replace("column 8", "column 7")
    expect_refusal("evaluate", "--run", str(work / "run.trec"), "--qrels", str(qrels),
                   first=f"error: {qrels}{says}", results=work, cwd=work)


def test_a_run_whose_queries_are_all_unjudged_is_an_error_not_a_zero(work):
    qrels = work / "other.qrels"
    qrels.write_text("q7 0 d1 1\nq8 0 d2 1\n", encoding="utf-8")
    result = expect_refusal("evaluate", "--run", str(work / "run.trec"), "--qrels", str(qrels),
                            first="error: Run 'run' has 2 queries and none of them has judgments",
                            results=work, cwd=work)
    assert "'q1', 'q2'" in result.stderr and "'q7', 'q8'" in result.stderr


@pytest.mark.parametrize("kind", ["missing", "folder", "truncated-gzip", "plain-named-gz", "empty"])
def test_import_refuses_an_unreadable_run_before_loading_anything(kind, work):
    # The run is read before the dataset is loaded: these fail without any data cached.
    run = _unreadable(work, kind, RUN)
    expect_refusal("import", str(run), "--suite", str(SCIFACT_SUITE), "-d", "scifact", "--name", "theirs",
                   "--results", str(work / "results"), first=f"error: {run}" + SAYS[kind].format(what="run"),
                   results=work, cwd=work)


def test_import_of_an_unjudged_run_stores_nothing(offline, work):
    results = work / "results"
    # Load SciFact into the harness cache first (a valid run), so that the snapshot after the
    # warm-up holds everything a load writes.
    valid = work / "valid.trec"
    valid.write_text("1 Q0 31715818 1 1.0 x\n", encoding="utf-8")
    warm = run_cli("evaluate", "--run", str(valid), "--suite", str(SCIFACT_SUITE), "-d", "scifact", cwd=work)
    assert warm.returncode == 0, warm.stderr
    unjudged = work / "unjudged.trec"
    unjudged.write_text("no-such-query Q0 31715818 1 1.0 x\n", encoding="utf-8")
    expect_refusal("import", str(unjudged), "--suite", str(SCIFACT_SUITE), "-d", "scifact", "--name", "theirs",
                   "--results", str(results), first="error: Run 'theirs' has 1 queries and none of them has judgments",
                   results=work, cwd=work)


def test_a_suite_path_that_is_a_folder(work):
    expect_refusal("run", str(work), first=f"error: {work} is a folder; give a suite file inside it",
                   results=work, cwd=work)


def test_a_suite_file_that_is_not_utf8(work):
    suite = work / "latin.yaml"
    suite.write_bytes("name: faults\ndescription: caf\xe9\ndatasets: {}\n".encode("latin-1"))
    expect_refusal("run", str(suite), first=f"error: {suite}:2: not UTF-8 text (byte 0xe9).",
                   results=work, cwd=work)


def test_snapshots_see_a_change(work):
    """The fixture's check can fail: a file written under the results folder is seen."""
    before = tree_state(work, harness_home())
    (work / "results" / "new.json").write_text("{}")
    with pytest.raises(AssertionError):
        assert_untouched(before, work, harness_home())
