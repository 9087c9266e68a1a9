"""Cutting a ranking at depth k in trec_eval's order, as retrievers do before a ``Run`` is built."""

import numpy as np

from harness.runs import Run, tie_ranks, top_k


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
