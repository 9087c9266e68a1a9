"""Exact top-k by dot product over single-vector documents (the dense baseline), in chunks.

The documents are read ``chunk`` rows at a time (a memory-mapped store through one reused buffer,
``chunks.ChunkReader``), scored against all queries, and folded into a running top k of
(score, tie rank) keys (``topk.RunningTopK``), so memory is bounded by one chunk and one
(queries x chunk) block of scores whatever the corpus size, and ties at the cut fall in the order
of ``tie_rank`` (the dense retriever passes trec_eval's). A chunk has at least 1,024 rows, so
BLAS takes the same path for every chunk and a document's score does not depend on where it
falls.
"""

from __future__ import annotations

import numpy as np

from harness.kernels.chunks import ChunkReader
from harness.kernels.topk import RunningTopK, check_tie_rank

# Scores held at once (queries x chunk rows): 4M float32 = 16 MiB.
_BLOCK_SCORES = 1 << 22
_MIN_CHUNK = 1024


def dot_search(queries: np.ndarray, doc_vectors, k: int, tie_rank=None,
               block_scores: int = _BLOCK_SCORES) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32 (n_q, k'), doc indices int64 (n_q, k')), k' = min(k, n_docs), best first,
    ties by lower ``tie_rank`` (default: the doc index)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    n_q, n_docs = queries.shape[0], int(doc_vectors.shape[0])
    ranks = check_tie_rank(tie_rank, n_docs)
    kk = min(int(k), n_docs)
    if kk <= 0 or n_q == 0:
        return np.zeros((n_q, max(kk, 0)), np.float32), np.zeros((n_q, max(kk, 0)), np.int64)
    chunk = min(n_docs, max(_MIN_CHUNK, block_scores // n_q))
    top = RunningTopK([n_q], kk, ranks, merge_docs=chunk)
    reader = ChunkReader(doc_vectors, chunk)
    for r0 in range(0, n_docs, chunk):
        r1 = min(r0 + chunk, n_docs)
        rows = np.asarray(reader.rows(r0, r1), dtype=np.float32)
        top.add(0, queries @ rows.T, np.arange(r0, r1, dtype=np.int64))
        top.merge(final=r1 == n_docs)
    return top.result([np.arange(n_q)], n_q)
