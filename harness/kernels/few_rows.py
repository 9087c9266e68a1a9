"""``maxsim_search``'s path for query batches of few rows (one or two queries, as a single query's
search, PLAID's and FAISS's re-scoring send): no padded tiles.

With few query rows a padded tile costs more to gather than to multiply (the gather copies every
document vector, ``dim`` values a token, the matmul writes ``rows`` a token). Here the chunk is
multiplied as it lies, (chunk rows, dim) @ (dim, query rows), the orientation MKL runs several
times faster than (query rows, dim) @ (dim, chunk rows) (measured at d128: about 240 against 52
GFLOP/s), in blocks when the chunk is converted first (each block multiplied while it is still in
cache), and each document's max over its consecutive rows of similarities is one compiled pass
(``segments.segment_max``): no copy of the documents, no padding, any document length. A document
cut by a chunk boundary carries its running max into the next chunk. Sums over query tokens are
sequential, token after token (numpy's pairwise sum would group a lone document's sum otherwise),
so a document's score is the same bits whatever chunk or block it lands in or which documents
share it: each similarity is one row of a product at least ``tiles.mm_same_order``'s sizes, and
a max is exact.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.kernels.segments import segment_max
from harness.kernels.tiles import MIN_MM_COLS, mm_same_order

# Batches of at most this many query rows (tokens x queries) take this path (CPU, float32).
FEW_ROWS = 64


class ChunkSegments:
    """The documents that overlap chunk rows r0:r1: their ids, their chunk-relative starts and
    ends, and whether the first began in an earlier chunk and the last goes on into a later one."""

    def __init__(self, offsets: np.ndarray, r0: int, r1: int):
        d_lo = int(np.searchsorted(offsets, r0, side="right")) - 1
        d_hi = int(np.searchsorted(offsets, r1, side="left"))
        self.doc_ids = np.arange(d_lo, d_hi, dtype=np.int64)
        bounds = np.clip(offsets[d_lo:d_hi + 1], r0, r1) - r0
        self.starts, self.ends = bounds[:-1], bounds[1:]
        self.cut_first = bool(offsets[d_lo] < r0)
        self.cut_last = bool(offsets[d_hi] > r1)


class FewRowsScorer:
    """Scores chunks against the few-row batches, in reused buffers."""

    def __init__(self):
        self.sim = torch.empty(0)
        self.queries: dict[int, torch.Tensor] = {}  # batch -> (dim, rows), zero-padded to MIN_MM_COLS
        self.carry: dict[int, np.ndarray] = {}  # batch -> running max of a document cut by a chunk end

    def _rows(self, bi: int, flat: torch.Tensor) -> torch.Tensor:
        if bi not in self.queries:
            pad = max(0, MIN_MM_COLS - flat.shape[0])  # zero rows: similarity 0, dropped before the sums
            rows = torch.cat([flat, flat.new_zeros(pad, flat.shape[1])]) if pad else flat
            # contiguous (dim, rows): MKL multiplies it about a fifth faster than the transposed view
            self.queries[bi] = rows.t().contiguous()
        return self.queries[bi]

    def score(self, offsets: np.ndarray, r0: int, r1: int, rows, batch, bi: int, convert=None,
              block_rows: int = 0):
        """(doc ids, (B, n) float32 scores) of the documents that end in chunk rows r0:r1.

        ``rows`` is the chunk as float32 (a tensor), or, with ``convert``, as read: then it is
        converted ``block_rows`` rows at a time (``convert(rows[s:e])``), each block multiplied
        while it is still in cache.
        """
        idx, q_max, flat = batch
        whole = ChunkSegments(offsets, r0, r1)
        if q_max == 0:
            ids = whole.doc_ids[:-1] if whole.cut_last else whole.doc_ids
            return ids, np.zeros((idx.size, ids.size), np.float32)
        q = self._rows(bi, flat)
        n, cols = r1 - r0, q.shape[1]
        if self.sim.numel() < n * cols:
            self.sim = torch.empty(n * cols)
        sim = self.sim[:n * cols].view(n, cols)
        step = block_rows if convert is not None else n
        for s in range(0, n, step):
            e = min(n, s + step)
            mm_same_order(rows[s:e] if convert is None else convert(rows[s:e]), q, sim[s:e])
        maxes = segment_max(sim.numpy(), whole.starts, whole.ends)
        if whole.cut_first:
            np.maximum(maxes[0], self.carry.pop(bi), out=maxes[0])
        ids = whole.doc_ids
        if whole.cut_last:
            self.carry[bi] = maxes[-1].copy()
            maxes, ids = maxes[:-1], ids[:-1]
        b = idx.size  # columns are token-major (t * B + query); summed token after token
        scores = maxes[:, :b].T.copy()
        for t in range(1, q_max):
            scores += maxes[:, t * b:(t + 1) * b].T
        return ids, scores
