"""The running top-k of ``maxsim_search``: (score, document) pairs as sortable uint64 keys.

A key is ``(descending-score bits << 32) | tie rank``: keys are unique, their ascending order is
"score descending, lower tie rank first", and ``np.partition`` on them is exact with ties, so
chunk results merge with a linear-time partition and are sorted once at the end. The tie rank is
the document index unless a permutation is given (the retrievers give trec_eval's order).
"""

from __future__ import annotations

import numpy as np

WORST_KEY = np.uint64(0xFFFFFFFFFFFFFFFF)


def encode_keys(scores: np.ndarray, doc_ids: np.ndarray) -> np.ndarray:
    s = np.ascontiguousarray(scores, dtype=np.float32) + np.float32(0.0)  # -0.0 -> +0.0
    u = s.view(np.uint32)
    ascending = np.where(u >> np.uint32(31), ~u, u | np.uint32(0x80000000))
    return ((~ascending).astype(np.uint64) << np.uint64(32)) | doc_ids.astype(np.uint64)


def decode_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ascending = ~((keys >> np.uint64(32)).astype(np.uint32))
    u = np.where(ascending >> np.uint32(31), ascending & np.uint32(0x7FFFFFFF), ~ascending)
    return u.view(np.float32).copy(), (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)


def check_tie_rank(tie_rank, n_docs: int) -> np.ndarray | None:
    if tie_rank is None:
        return None
    ranks = np.asarray(tie_rank, dtype=np.int64).reshape(-1)
    if ranks.size != n_docs or not np.array_equal(np.sort(ranks), np.arange(n_docs)):
        raise ValueError(f"tie_rank must be a permutation of 0..{n_docs - 1} (one rank per document)")
    return ranks


def _merge(top: np.ndarray, pending: list[np.ndarray], k: int) -> np.ndarray:
    cand = np.concatenate([top, *pending], axis=1)
    if cand.shape[1] > k:
        cand = np.partition(cand, k - 1, axis=1)[:, :k]
    return cand


class RunningTopK:
    """Per query batch, the best ``k`` keys so far; new scores wait in a list and are merged at
    least every ``merge_docs`` documents (a partition per merge, not per chunk)."""

    def __init__(self, batch_sizes: list[int], k: int, tie_rank: np.ndarray | None, merge_docs: int):
        self.k, self.ranks, self.merge_docs = k, tie_rank, merge_docs
        self.tops = [np.full((b, 0), WORST_KEY, dtype=np.uint64) for b in batch_sizes]
        self.pending: list[list[np.ndarray]] = [[] for _ in batch_sizes]
        self.pending_docs = 0

    def add(self, batch: int, scores: np.ndarray, doc_ids: np.ndarray) -> None:
        """(B, n) float32 scores of documents ``doc_ids`` (n indices) for the batch's queries."""
        ranks = doc_ids if self.ranks is None else self.ranks[doc_ids]
        self.pending[batch].append(encode_keys(scores, ranks))
        if batch == 0:  # every batch sees the same documents: count them once
            self.pending_docs += doc_ids.size

    def merge(self, final: bool = False) -> None:
        if self.pending_docs < self.merge_docs and not final:
            return
        for b, pending in enumerate(self.pending):
            if pending:
                self.tops[b] = _merge(self.tops[b], pending, self.k)
                self.pending[b] = []
        self.pending_docs = 0

    def result(self, batch_rows: list[np.ndarray], n_queries: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, doc indices) per query (rows in query order), best first."""
        keys = np.empty((n_queries, self.k), dtype=np.uint64)
        for rows, top in zip(batch_rows, self.tops):
            keys[rows] = top
        scores, found = decode_keys(np.sort(keys, axis=1))
        if self.ranks is not None:
            found = np.argsort(self.ranks)[found]  # rank -> doc index
        return scores, found
