"""PLAID search (Santhanam et al., 2022b; colbert-ai's ``colbert/search/index_storage.py`` and
``filter_pids``) over one residual-compressed store (harness/index/compressed_store.py), as plain
functions of plain arrays, one stage each:

1. ``candidate_documents``: the documents holding a token in one of the ``ncells`` centroids of
   highest score for some query token (the inverted lists, ``inverted_lists``);
2. ``kept_centroids`` + ``centroid_interaction``: each candidate scored by its tokens' centroids
   alone (sum over query tokens of the best centroid score among its tokens), where a centroid
   no query token scores ``centroid_score_threshold`` or more counts as absent (pruning); the best
   ``ndocs`` are kept;
3. ``centroid_interaction`` again without pruning over those: the best ``ndocs / 4`` are kept
   (at least k, so that k documents come back);
4. ``exact_top_k``: those documents' vectors decompressed (centroid + residual, the codec's own
   decompression) and scored by exact MaxSim; the top k.

A token whose centroid is pruned scores ``-9999`` for every query token, as in colbert-ai: a
document with every token pruned ranks last. Scores in stage 4 are the exact kernel's
(harness/kernels/maxsim.py scores a document with the same bits whatever documents it is searched
with), so a search whose settings exclude nothing returns exactly exact search's run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRUNED_SCORE = np.float32(-9999.0)  # colbert-ai's score of a pruned centroid
# Candidate tokens gathered per step of centroid interaction (x query tokens float32 scores).
_INTERACTION_TOKENS = 1 << 18


@dataclass(frozen=True)
class InvertedLists:
    """For each centroid c, the documents with a token assigned to c: ``docs[starts[c]:starts[c+1]]``
    (ascending, each once)."""

    starts: np.ndarray
    docs: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.starts.nbytes + self.docs.nbytes


def token_documents(offsets: np.ndarray) -> np.ndarray:
    """The document of each token row."""
    offsets = np.asarray(offsets, dtype=np.int64)
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


def inverted_lists(centroid_ids: np.ndarray, offsets: np.ndarray, n_centroids: int) -> InvertedLists:
    pairs = np.unique(np.asarray(centroid_ids, dtype=np.int64) * (len(offsets) - 1) + token_documents(offsets))
    cells, docs = np.divmod(pairs, max(1, len(offsets) - 1))
    starts = np.zeros(n_centroids + 1, dtype=np.int64)
    np.cumsum(np.bincount(cells, minlength=n_centroids), out=starts[1:])
    return InvertedLists(starts, docs.astype(np.int32 if len(offsets) < 2**31 else np.int64))


def top_cells(centroid_scores: np.ndarray, ncells: int) -> np.ndarray:
    """The ``ncells`` centroids of highest score for each query token (rows): the union, sorted."""
    n = centroid_scores.shape[1]
    if ncells >= n:
        return np.arange(n)
    best = np.argpartition(-centroid_scores, ncells - 1, axis=1)[:, :ncells]
    return np.unique(best)


def candidate_documents(centroid_scores: np.ndarray, ncells: int, lists: InvertedLists) -> np.ndarray:
    """Stage 1: every document in the inverted list of a top-``ncells`` centroid of some query token."""
    cells = top_cells(centroid_scores, ncells)
    parts = [lists.docs[lists.starts[c]:lists.starts[c + 1]] for c in cells]
    return np.unique(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)


def kept_centroids(centroid_scores: np.ndarray, threshold: float | None) -> np.ndarray | None:
    """Centroids some query token scores at least ``threshold`` (None: no pruning)."""
    if threshold is None:
        return None
    return centroid_scores.max(axis=0) >= threshold


def document_rows(offsets: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(token rows of ``docs`` in order, their offsets within those rows)."""
    lengths = offsets[docs + 1] - offsets[docs]
    local = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=local[1:])
    rows = np.repeat(offsets[docs] - local[:-1], lengths) + np.arange(int(local[-1]))
    return rows, local


def centroid_interaction(centroid_scores: np.ndarray, centroid_ids: np.ndarray, offsets: np.ndarray,
                         docs: np.ndarray, kept: np.ndarray | None = None) -> np.ndarray:
    """Stages 2-3: each document's score from its tokens' centroids, sum over query tokens (rows of
    ``centroid_scores``) of the best score of a centroid among its tokens; a centroid not ``kept``
    scores ``PRUNED_SCORE``."""
    scores = centroid_scores.astype(np.float32)
    if kept is not None:
        scores = np.where(kept[None, :], scores, PRUNED_SCORE)
    out = np.zeros(len(docs), dtype=np.float32)
    lengths = offsets[docs + 1] - offsets[docs]
    ends = np.cumsum(lengths)
    g0 = 0
    while g0 < len(docs):  # a group of documents of about _INTERACTION_TOKENS tokens at a time
        base = ends[g0 - 1] if g0 else 0
        g1 = max(g0 + 1, int(np.searchsorted(ends, base + _INTERACTION_TOKENS, side="right")))
        rows, local = document_rows(offsets, docs[g0:g1])
        per_token = scores[:, np.asarray(centroid_ids[rows], dtype=np.intp)]
        out[g0:g1] = np.maximum.reduceat(per_token, local[:-1], axis=1).sum(axis=0, dtype=np.float32)
        g0 = g1
    return out


def best(scores: np.ndarray, docs: np.ndarray, keep: int, tie_rank: np.ndarray) -> np.ndarray:
    """The ``keep`` documents of highest score (ties by ``tie_rank``), in ascending document order."""
    if len(docs) <= keep:
        return docs
    from harness.kernels.topk import encode_keys

    keys = encode_keys(scores, tie_rank[docs])
    return np.sort(docs[np.argpartition(keys, keep - 1)[:keep]])


def exact_top_k(query: np.ndarray, mask: np.ndarray, vectors, offsets: np.ndarray, docs: np.ndarray, k: int,
                tie_rank: np.ndarray, **kernel) -> tuple[np.ndarray, np.ndarray]:
    """Stage 4: exact MaxSim of one query over ``docs`` (their rows of ``vectors`` read, a compressed
    store's decompressed), top k by score then ``tie_rank``: (scores, documents)."""
    from harness.kernels.maxsim import maxsim_search

    if len(docs) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    rows, local = document_rows(offsets, docs)
    gathered = vectors[rows]
    order = np.empty(len(docs), dtype=np.int64)
    order[np.argsort(tie_rank[docs], kind="stable")] = np.arange(len(docs))
    scores, found = maxsim_search(query[None], mask[None], gathered, local, k, tie_rank=order, **kernel)
    return scores[0], docs[found[0]]


@dataclass(frozen=True)
class PlaidSettings:
    ncells: int
    centroid_score_threshold: float | None
    ndocs: int

    @staticmethod
    def defaults(k: int) -> dict:
        """colbert-ai's searcher defaults for k (colbert/searcher.py, configure by k)."""
        if k <= 10:
            return {"ncells": 1, "centroid_score_threshold": 0.5, "ndocs": 256}
        if k <= 100:
            return {"ncells": 2, "centroid_score_threshold": 0.45, "ndocs": 1024}
        return {"ncells": 4, "centroid_score_threshold": 0.4, "ndocs": max(4 * k, 4096)}


def plaid_search_one(query: np.ndarray, mask: np.ndarray, store, lists: InvertedLists, settings: PlaidSettings,
                     k: int, tie_rank: np.ndarray, **kernel) -> tuple[np.ndarray, np.ndarray, int]:
    """One query (its real tokens by ``mask``) over one residual store: (scores, documents, number
    of documents fully scored). ``tie_rank``: the store's documents' tie ranks."""
    q = np.asarray(query, dtype=np.float32)[np.asarray(mask, dtype=bool)]
    centroids = store.codec._centroids32
    if q.shape[-1] != centroids.shape[1]:  # the store is cut to its dim: so is the query
        q = q[:, :centroids.shape[1]]
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), np.float32(1e-12))
    centroid_scores = q @ centroids.T
    ids, offsets = store.arrays["centroid_ids"], store.offsets
    docs = candidate_documents(centroid_scores, settings.ncells, lists)
    kept = kept_centroids(centroid_scores, settings.centroid_score_threshold)
    docs = best(centroid_interaction(centroid_scores, ids, offsets, docs, kept), docs, settings.ndocs, tie_rank)
    docs = best(centroid_interaction(centroid_scores, ids, offsets, docs), docs, max(k, settings.ndocs // 4),
                tie_rank)
    q_full = np.asarray(query, dtype=np.float32)
    if q_full.shape[-1] != store.dim:
        q_full = q_full[:, :store.dim]
        q_full = q_full / np.maximum(np.linalg.norm(q_full, axis=1, keepdims=True), np.float32(1e-12))
    scores, found = exact_top_k(q_full, np.asarray(mask, dtype=bool), store.vectors, offsets, docs, k, tie_rank,
                                **kernel)
    return scores, found, len(docs)
