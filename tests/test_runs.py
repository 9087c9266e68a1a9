"""Runs: trec_eval's order from scores, or a file's own rank column, kept through the protocol."""

import numpy as np
import pytest

from harness.errors import FormatError, UnknownNameError
from harness.runs import Run, tie_ranks, top_k

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


# Cutting a ranking at depth k in trec_eval's order, as retrievers do before a ``Run`` is built.

def test_top_k_is_the_first_k_of_the_trec_eval_order_whatever_k():
    rng = np.random.default_rng(0)
    ids = [f"d{i}" for i in rng.permutation(300)]  # corpus position and id order differ
    scores = rng.integers(0, 6, 300).astype(np.float32)  # six values: every cut falls inside a tie
    ranks = tie_ranks(ids)
    full = [d for d, _ in Run({"q": dict(zip(ids, scores.tolist()))})["q"]]
    for k in (1, 7, 49, 50, 51, 150, 299, 300, 1000):
        assert [ids[i] for i in top_k(scores, k, ranks)] == full[:k], k
    assert top_k(scores, 0, ranks).size == 0


def test_tie_ranks_order_ids_descending_as_trec_eval_compares_them():
    ids = ["b", "a10", "a9", "c", "A"]
    assert tie_ranks(ids).tolist() == [1, 3, 2, 0, 4]  # c, b, a9, a10, A: string order, not numeric
