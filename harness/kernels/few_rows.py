"""``maxsim_search``'s path for query batches of few rows (one or two queries, as a single query's
search, PLAID's and FAISS's re-scoring send): no padded tiles.

With few query rows a padded tile costs more to gather than to multiply (the gather copies every
document vector, ``dim`` values a token, the matmul writes ``rows`` a token), and a max over the
(docs, padded length, rows) view reduces across a middle dimension. Here one matmul per chunk
writes the similarities as (query rows, chunk rows), each query row's similarities contiguous,
and ``np.maximum.reduceat`` takes each document's max along that row at its offsets: no copy of
the documents, no padding, any document length. A document cut by a chunk boundary carries its
running max into the next chunk. Sums over query tokens are sequential, token after token (numpy's
pairwise sum would group a lone document's sum otherwise), so a document's score is the same bits
whatever chunk it lands in or which documents share it.
"""

from __future__ import annotations

import numpy as np
import torch

# Batches of at most this many query rows (tokens x queries) take this path (CPU, float32).
FEW_ROWS = 64
# MKL's sgemm sums a product in another order when the query side has fewer rows or the document
# side fewer columns than these (measured: one column; up to 31 against 8 rows), so both are padded.
_MIN_ROWS, _MIN_COLS = 16, 32


class ChunkSegments:
    """The documents that overlap chunk rows r0:r1: their ids, their chunk-relative starts, and
    whether the first began in an earlier chunk and the last goes on into a later one."""

    def __init__(self, offsets: np.ndarray, r0: int, r1: int):
        d_lo = int(np.searchsorted(offsets, r0, side="right")) - 1
        d_hi = int(np.searchsorted(offsets, r1, side="left"))
        self.doc_ids = np.arange(d_lo, d_hi, dtype=np.int64)
        self.starts = (np.maximum(offsets[d_lo:d_hi], r0) - r0).astype(np.intp)
        self.cut_first = bool(offsets[d_lo] < r0)
        self.cut_last = bool(offsets[d_hi] > r1)


class FewRowsScorer:
    """Scores chunks against the few-row batches, in reused buffers."""

    def __init__(self, use: int):
        self.sim = torch.empty(0)
        self.pad = torch.zeros((_MIN_COLS, use))  # a block shorter than _MIN_COLS rows, zero-padded
        self.queries: dict[int, torch.Tensor] = {}  # batch -> its rows, zero-padded to _MIN_ROWS
        self.carry: dict[int, np.ndarray] = {}  # batch -> running max of a document cut by a block end

    def _rows(self, bi: int, flat: torch.Tensor) -> torch.Tensor:
        if bi not in self.queries:
            pad = max(0, _MIN_ROWS - flat.shape[0])
            self.queries[bi] = torch.cat([flat, flat.new_zeros(pad, flat.shape[1])]) if pad else flat
        return self.queries[bi]

    def score(self, offsets: np.ndarray, r0: int, r1: int, rows, batch, bi: int, convert=None,
              block_rows: int = 0):
        """(doc ids, (B, n) float32 scores) of the documents that end in chunk rows r0:r1.

        ``rows`` is the chunk as float32 (a tensor), or, with ``convert``, as read: then it is
        converted ``block_rows`` rows at a time (``convert(rows[s:e])``), each block multiplied
        while it is still in cache.
        """
        idx, q_max, flat = batch
        if q_max == 0:
            whole = ChunkSegments(offsets, r0, r1)
            ids = whole.doc_ids[:-1] if whole.cut_last else whole.doc_ids
            return ids, np.zeros((idx.size, ids.size), np.float32)
        step = block_rows if convert is not None else r1 - r0
        maxes, ids = [], []
        for s in range(0, r1 - r0, step):
            e = min(r1 - r0, s + step)
            block = rows[s:e] if convert is None else convert(rows[s:e])
            m, d = self._maxes(ChunkSegments(offsets, r0 + s, r0 + e), block, flat, bi)
            maxes.append(m)
            ids.append(d)
        per_token = (np.concatenate(maxes, axis=1) if len(maxes) > 1 else maxes[0]).reshape(q_max, idx.size, -1)
        scores = per_token[0].copy()  # rows are token-major (t * B + query); summed token after token
        for t in range(1, q_max):
            scores += per_token[t]
        return (np.concatenate(ids) if len(ids) > 1 else ids[0]), scores

    def _maxes(self, segments: ChunkSegments, block: torch.Tensor, flat: torch.Tensor, bi: int):
        """(rows, n) per-token maxima of the n documents that end in this block, their ids."""
        q, n = self._rows(bi, flat), block.shape[0]
        if n < _MIN_COLS:
            self.pad[:n] = block
            self.pad[n:] = 0
            block = self.pad
        cols = block.shape[0]
        if self.sim.numel() < q.shape[0] * cols:
            self.sim = torch.empty(q.shape[0] * cols)
        sim = self.sim[:q.shape[0] * cols].view(q.shape[0], cols)
        torch.mm(q, block.t(), out=sim)
        maxes = np.maximum.reduceat(sim.numpy()[:flat.shape[0], :n], segments.starts, axis=1)
        if segments.cut_first:
            np.maximum(maxes[:, 0], self.carry.pop(bi), out=maxes[:, 0])
        ids = segments.doc_ids
        if segments.cut_last:
            self.carry[bi] = maxes[:, -1].copy()
            maxes, ids = maxes[:, :-1], ids[:-1]
        return maxes, ids
