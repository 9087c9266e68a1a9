"""Runs: trec_eval's order from scores, or a file's own rank column, kept through the protocol."""

import pytest

from harness.errors import FormatError, UnknownNameError
from harness.runs import Run

# The rank column puts a before b before c; trec_eval orders the tie by document id descending.
TIED = """q1 Q0 a 1 0.5 sys
q1 Q0 b 2 0.5 sys
q1 Q0 c 3 0.5 sys
q1 Q0 z 4 0.25 sys
q2 Q0 y 1 1.0 sys
q2 Q0 x 1 1.0 sys
q2 Q0 w 2 1.0 sys
"""


def test_a_file_is_read_in_trec_eval_order_or_in_its_rank_order(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text(TIED)
    by_score = Run.from_trec(path)
    assert [d for d, _ in by_score["q1"]] == ["c", "b", "a", "z"]
    by_rank = Run.from_trec(path, ties="rank")
    assert by_rank["q1"] == [("a", 0.5), ("b", 0.5), ("c", 0.5), ("z", 0.25)]
    # Equal ranks (x, y) fall back to trec_eval's order: y before x.
    assert [d for d, _ in by_rank["q2"]] == ["y", "x", "w"]
    assert by_rank.name == "run" and by_rank.scores() == by_score.scores()


def test_the_protocol_keeps_a_runs_order(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text(TIED.replace("q1 Q0 b", "q1 Q0 q1"))
    by_rank = Run.from_trec(path, ties="rank")
    assert [d for d, _ in by_rank.truncated(2)["q1"]] == ["a", "q1"]
    assert [d for d, _ in by_rank.without_self_matches()["q1"]] == ["a", "c", "z"]
    assert [d for d, _ in Run.ranked({"q": [("a", 1.0), ("b", 2.0)]})["q"]] == ["a", "b"]


def test_an_unknown_tie_order_or_a_bad_rank_is_an_error(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text(TIED)
    with pytest.raises(UnknownNameError, match=r"Unknown tie order 'docid'. Known tie orders: trec_eval, rank."):
        Run.from_trec(path, ties="docid")
    path.write_text("q1 Q0 a first 0.5 sys\n")
    assert Run.from_trec(path)["q1"] == [("a", 0.5)]  # trec_eval ignores the rank column
    with pytest.raises(FormatError, match=r"run.trec:1: the rank 'first' is not a whole number"):
        Run.from_trec(path, ties="rank")
