"""``maxsim_search``'s path for query batches of many rows: length-sorted, padded tiles of documents,
one matmul and one ``amax`` per tile (see the module docstring of ``harness.kernels.maxsim``)."""

from __future__ import annotations

import numpy as np
import torch

from harness.kernels.chunks import Buffers, ChunkPlan, from_numpy, load_rows

# Below these sizes MKL's sgemm sums each product in another order (measured: up to 5 document
# rows against a transposed query matrix; any count against fewer than 8 query rows), so a
# document alone in a small tile, or a short piece at a chunk's end, would score a rounding apart
# from the same document elsewhere, and a shard's boundaries would move scores.
MIN_MM_ROWS, MIN_MM_COLS = 16, 8


def mm_same_order(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    """``out = a @ b``, each product computed the same whatever the shapes: a side smaller than
    the sizes above is padded with zeros, and the padding dropped."""
    m, n = a.shape[0], b.shape[1]
    if m >= MIN_MM_ROWS and n >= MIN_MM_COLS:
        torch.mm(a, b, out=out)
        return
    if m < MIN_MM_ROWS:
        a = torch.cat([a, a.new_zeros(MIN_MM_ROWS - m, a.shape[1])])
    if n < MIN_MM_COLS:
        b = torch.cat([b, b.new_zeros(b.shape[0], MIN_MM_COLS - n)], dim=1)
    out.copy_(torch.mm(a, b)[:m, :n])


class TileScorer:
    """Scores one chunk of documents against one query batch at a time, in reused buffers.

    ``load`` converts the chunk once (float32, sliced and re-normalised for ``dim``, then
    ``compute_dtype``) and gathers its padded tiles; ``short_documents`` is one matmul and one
    ``amax`` per tile; ``long_documents`` scores the rest piecewise with a running max, carrying a
    document cut by the chunk's end into the next chunk.
    """

    def __init__(self, device: torch.device, compute_dtype: torch.dtype, chunk_rows: int, use: int,
                 tile_cols: int, rows_max: int, n_batches: int):
        self.device, self.dtype, self.tile_cols = device, compute_dtype, tile_cols
        self.wide = compute_dtype != torch.float32
        self.chunk32 = torch.empty((chunk_rows, use), dtype=torch.float32, device=device)
        self.buffers = Buffers(device)
        self.sim = torch.empty(tile_cols * rows_max, dtype=compute_dtype, device=device)
        self.per_doc = torch.empty(tile_cols * rows_max, dtype=compute_dtype, device=device)
        self.carry: list[torch.Tensor | None] = [None] * n_batches  # running max of a doc cut by a chunk end

    def load(self, rows: np.ndarray, use: int, renorm: bool, out: torch.Tensor | None = None) -> torch.Tensor:
        """The chunk in compute_dtype: a view of ``rows`` when they are float32 as they are used."""
        if rows.dtype == np.float32 and not renorm and not self.wide and self.device.type == "cpu":
            return from_numpy(np.asarray(rows))
        chunk = c32 = load_rows(rows, slice(None), use, renorm, out=self.chunk32[:rows.shape[0]] if out is None else out)
        if self.wide:  # one conversion per chunk
            chunk = self.buffers.get("low", (rows.shape[0], use), self.dtype)
            chunk.copy_(c32)
        return chunk

    def padded(self, chunk: torch.Tensor, plan: ChunkPlan) -> torch.Tensor:
        """The chunk's short documents' padded tile rows."""
        padded = self.buffers.get("padded", (plan.gather.size, chunk.shape[1]), self.dtype)
        torch.index_select(chunk, 0, torch.from_numpy(plan.gather).to(self.device), out=padded)
        return padded

    def _sums(self, maxes: torch.Tensor, q_max: int, b: int) -> np.ndarray:
        """(n, q_max * B) per-token maxima -> (B, n) float32 sums over query tokens."""
        m = maxes.to(torch.float32) if self.wide else maxes
        return m.view(-1, q_max, b).sum(dim=1).t().cpu().numpy()

    def short_documents(self, plan: ChunkPlan, padded: torch.Tensor, batch) -> np.ndarray:
        """(B, n short docs) scores, in ``plan.doc_ids`` order."""
        idx, q_max, flat = batch
        b, rows = idx.size, flat.shape[0]
        if q_max == 0:
            return np.zeros((b, plan.doc_ids.size), np.float32)
        scores = np.empty((b, plan.doc_ids.size), np.float32)
        for first, nd, lp, row in plan.tiles:
            cols = nd * lp
            st = self.sim[:cols * rows].view(cols, rows)
            mm_same_order(padded[row:row + cols], flat.t(), st)
            mx = self.per_doc[:nd * rows].view(nd, rows)
            torch.amax(st.view(nd, lp, rows), dim=1, out=mx)
            scores[:, first:first + nd] = self._sums(mx, q_max, b)
        return scores

    def long_documents(self, plan: ChunkPlan, chunk: torch.Tensor, batch, bi: int):
        """(doc index, (B, 1) scores) of each long document that ends in this chunk."""
        idx, q_max, flat = batch
        b, rows = idx.size, flat.shape[0]
        for doc, s, e, cont_first, cont_last in plan.long:
            run = self.carry[bi] if cont_first else None
            if q_max:
                for p0 in range(s, e, self.tile_cols):
                    p1 = min(p0 + self.tile_cols, e)
                    st = self.sim[:(p1 - p0) * rows].view(p1 - p0, rows)
                    mm_same_order(chunk[p0:p1], flat.t(), st)
                    piece = st.amax(dim=0)
                    run = piece if run is None else torch.maximum(run, piece)
            if cont_last:
                self.carry[bi] = run
                continue
            self.carry[bi] = None
            yield doc, (self._sums(run[None], q_max, b) if q_max else np.zeros((b, 1), np.float32))


