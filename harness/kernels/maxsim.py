"""Exact late-interaction (MaxSim) scoring: brute-force search, candidate rerank, reference.

    score(q, d) = sum over real query tokens i of  max over doc tokens j of <q_i, d_j>

Document vectors are one contiguous (total_tokens, full_dim) matrix (float16 memmap or float32)
plus int64 offsets: document i owns rows ``offsets[i]:offsets[i+1]`` and has at least one token.
Queries are (n_queries, q_len, full_dim) with a bool mask (True = real token). All token vectors
are unit length at full_dim. ``dim`` truncates both sides to their first ``dim`` columns
(Matryoshka) and re-normalises every token vector; ``dim=None`` or ``dim == full_dim`` uses the
vectors as stored.

How ``maxsim_search`` works. Documents are read in chunks of about ``chunk_tokens`` rows, each
converted once (float16 -> float32, sliced and re-normalised for ``dim``, then to
``compute_dtype``). Inside a chunk, documents are sorted by length and grouped into tiles of
about ``_TILE_ELEMS / query rows`` columns; a tile's documents are padded to its longest one with
copies of their own last token (a copy never changes a max; sorting keeps the padding around 1%).
Per tile and query batch there is one torch matmul ``(tile columns, dim) @ (dim, query rows)``
and one ``amax`` over the (docs, padded length, rows) view of its result while it is still in
cache; the per-query sum is a fixed-shape ``sum`` because query rows are token-major and padded
to the batch's longest query with zero vectors (a zero vector adds exactly 0 to a score; queries
are sorted by real-token count before batching so that padding stays small). Documents longer
than a tile (or cut by a chunk boundary) are scored piecewise with a running max. On a CPU a
document's score is the same bits whatever chunk or tile it lands in (``_mm`` keeps BLAS off its
small-shape paths), so a sharded search scores as one over the whole corpus. Matmul is
about 90% of the time at dims 384 and 128 (bench/maxsim.py, profiled); the rest is mostly
the amax pass over the similarities. Memory is bounded by about two copies of a chunk plus
``_TILE_ELEMS`` similarities plus small per-batch buffers, whatever the corpus size. A memory-
mapped store (``np.memmap``) is read chunk by chunk with file reads into one reused buffer, not
through the map: every page touched through a map stays in the process's resident set while the
map is open, so one pass would leave the whole store resident (``chunks.ChunkReader``).

The running top-k (``topk.RunningTopK``) holds unique uint64 keys of (score, document), merged
with a linear-time partition and sorted once at the end. ``tie_rank`` (a permutation of the
documents) takes the doc index's place in the keys, so that ties fall in another order (the
retrievers pass trec_eval's, ``harness.runs.tie_ranks``) and the top-k set is that order's first k.

``compute_dtype=torch.bfloat16`` rounds both sides to bfloat16 for the matmul (similarities are
bfloat16 too; max is exact and per-query sums are float32). It is an opt-in fast mode for CPUs
with native bf16 GEMM (AVX512-BF16/AMX); on AVX2-only CPUs torch's bf16 matmul is several times
slower than float32, so float32 stays the default.

``device`` (default CPU) runs the matmuls and reductions on a GPU: each chunk is copied there once,
the per-document sums come back, and the top-k merge stays on the host. On a GPU tiles and chunks
are larger (``_GPU_TILE_ELEMS``), since there the cost is kernel launches, not cache misses.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from harness.kernels.chunks import Buffers, ChunkPlan, ChunkReader, chunk_cuts
from harness.kernels.topk import RunningTopK, check_tie_rank

# Similarity values computed per matmul call (rows x columns). ~1M float32 = 4 MiB keeps the
# tile in L3 for the reduction that follows; tuned with bench/maxsim.py.
_TILE_ELEMS = 1 << 20
# On a GPU: 64M similarities (256 MiB float32) per matmul and 256K-row chunks keep launches few.
_GPU_TILE_ELEMS = 1 << 26
_GPU_CHUNK_TOKENS = 1 << 18
_MIN_TILE_COLS = 256
# Pending per-document scores are merged into the running top-k at least this often (documents).
_MERGE_DOCS = 8192
# Rows gathered per step by maxsim_rerank.
_RERANK_ROWS = 65536


# ----------------------------------------------------------------------------------------------
# Inputs


def _from_numpy(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``array``'s memory; read-only memmaps are fine (we never write to them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "The given NumPy array is not writable"
        return torch.from_numpy(array)


def _full_dim_and_use(doc_vectors, dim: int | None) -> tuple[int, int, bool]:
    full_dim = int(doc_vectors.shape[1])
    if dim is None or dim == full_dim:
        return full_dim, full_dim, False
    if not 1 <= dim <= full_dim:
        raise ValueError(f"dim must be in 1..{full_dim}, got {dim}")
    return full_dim, int(dim), True


def _check_offsets(doc_vectors, doc_offsets) -> np.ndarray:
    offsets = np.asarray(doc_offsets, dtype=np.int64).reshape(-1)
    if doc_vectors.ndim != 2:
        raise ValueError(f"doc_vectors must be 2-D (total_tokens, dim), got shape {doc_vectors.shape}")
    if offsets.size < 1 or offsets[0] != 0 or offsets[-1] != doc_vectors.shape[0]:
        raise ValueError(f"doc_offsets must start at 0 and end at {doc_vectors.shape[0]} (the number of rows)")
    if offsets.size > 1 and not np.all(offsets[1:] > offsets[:-1]):
        raise ValueError("every document must own at least one token (doc_offsets strictly increasing)")
    if offsets.size - 1 >= 2**32:
        raise ValueError("more than 2**32 - 1 documents are not supported")
    return offsets


def _prepare_queries(queries, query_mask, full_dim: int, use: int, renorm: bool):
    q = queries.detach().to("cpu") if isinstance(queries, torch.Tensor) else _from_numpy(np.asarray(queries))
    mask = query_mask.detach().to("cpu") if isinstance(query_mask, torch.Tensor) else _from_numpy(np.asarray(query_mask))
    if q.ndim != 3 or q.shape[2] != full_dim:
        raise ValueError(f"queries must be (n_queries, q_len, {full_dim}), got {tuple(q.shape)}")
    if tuple(mask.shape) != tuple(q.shape[:2]):
        raise ValueError(f"query_mask must be {tuple(q.shape[:2])}, got {tuple(mask.shape)}")
    q = q[..., :use].to(torch.float32)
    if renorm:
        q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return q, mask.to(torch.bool)


def _load_rows(doc_vectors, rows, use: int, renorm: bool, out: torch.Tensor | None = None) -> torch.Tensor:
    """float32 (n, use) tensor of the given rows (a slice or an index array), re-normalised if asked."""
    block = doc_vectors[rows, :use] if not isinstance(rows, slice) else doc_vectors[rows][:, :use]
    src = _from_numpy(np.asarray(block))
    if out is None:
        out = torch.empty(src.shape, dtype=torch.float32)
    out.copy_(src)
    if renorm:
        out.div_(out.norm(dim=1, keepdim=True).clamp_min_(1e-12))
    return out


def _query_batches(q: torch.Tensor, mask: torch.Tensor, query_batch: int, dtype: torch.dtype,
                   device: torch.device):
    """Queries sorted by real-token count, in batches of ``query_batch``. Per batch: (query indices,
    token-major rows (q_max * B, dim): row t * B + b is real token t of query b or a zero vector).

    A zero query vector has similarity 0 with every doc token, so it adds exactly 0 to a score:
    padding a batch to its longest query keeps the sum over query tokens a fixed-shape reduction.
    Sorting by token count keeps that padding small.
    """
    counts = mask.sum(dim=1).numpy()
    order = np.argsort(counts, kind="stable")
    batches = []
    for b0 in range(0, order.size, query_batch):
        idx = order[b0:b0 + query_batch]
        q_max = int(counts[idx].max())
        sel = torch.from_numpy(idx)
        m = mask[sel]
        # Real tokens first: stable argsort of ~mask puts them in order, padding after.
        perm = torch.argsort((~m).to(torch.int8), dim=1, stable=True)
        qb = torch.gather(q[sel], 1, perm[..., None].expand(-1, -1, q.shape[2]))[:, :q_max]
        real = torch.gather(m, 1, perm)[:, :q_max]
        qb = qb * real[..., None]
        flat = qb.transpose(0, 1).reshape(q_max * idx.size, q.shape[2]).to(device=device, dtype=dtype).contiguous()
        batches.append((idx, q_max, flat))
    return batches


# Below these sizes MKL's sgemm sums each product in another order (measured: up to 5 document
# rows against a transposed query matrix; any count against fewer than 8 query rows), so a
# document alone in a small tile, or a short piece at a chunk's end, would score a rounding apart
# from the same document elsewhere, and a shard's boundaries would move scores.
_MIN_MM_ROWS, _MIN_MM_COLS = 16, 8


def _mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    """``out = a @ b``, each product computed the same whatever the shapes: a side smaller than
    the sizes above is padded with zeros, and the padding dropped."""
    m, n = a.shape[0], b.shape[1]
    if m >= _MIN_MM_ROWS and n >= _MIN_MM_COLS:
        torch.mm(a, b, out=out)
        return
    if m < _MIN_MM_ROWS:
        a = torch.cat([a, a.new_zeros(_MIN_MM_ROWS - m, a.shape[1])])
    if n < _MIN_MM_COLS:
        b = torch.cat([b, b.new_zeros(b.shape[0], _MIN_MM_COLS - n)], dim=1)
    out.copy_(torch.mm(a, b)[:m, :n])


# ----------------------------------------------------------------------------------------------
# Public API


class _TileScorer:
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

    def load(self, rows: np.ndarray, plan: ChunkPlan, use: int, renorm: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(the chunk in compute_dtype, its short documents' padded tile rows)."""
        c32 = _load_rows(rows, slice(None), use, renorm, out=self.chunk32[:rows.shape[0]])
        chunk = c32
        if self.wide:  # one conversion per chunk
            chunk = self.buffers.get("low", (rows.shape[0], use), self.dtype)
            chunk.copy_(c32)
        padded = self.buffers.get("padded", (plan.gather.size, use), self.dtype)
        torch.index_select(chunk, 0, torch.from_numpy(plan.gather).to(self.device), out=padded)
        return chunk, padded

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
            _mm(padded[row:row + cols], flat.t(), st)
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
                    _mm(chunk[p0:p1], flat.t(), st)
                    piece = st.amax(dim=0)
                    run = piece if run is None else torch.maximum(run, piece)
            if cont_last:
                self.carry[bi] = run
                continue
            self.carry[bi] = None
            yield doc, (self._sums(run[None], q_max, b) if q_max else np.zeros((b, 1), np.float32))


@torch.inference_mode()
def maxsim_search(queries, query_mask, doc_vectors, doc_offsets, k: int, dim: int | None = None,
                  query_batch: int = 32, chunk_tokens: int | None = None,
                  compute_dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu", tie_rank=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k late-interaction search over all documents.

    Returns (scores float32 (n_q, k'), doc indices int64 (n_q, k')), k' = min(k, n_docs), rows
    sorted by score descending, ties by lower doc index, or by lower ``tie_rank`` (one int per
    document, a permutation of 0..n_docs-1) when given. Documents are processed in chunks of at
    most ``chunk_tokens`` rows (default 65,536 on a CPU, 262,144 on a GPU; a chunk ends on a
    document boundary unless one document alone is longer), converted to ``compute_dtype`` once per
    chunk, against ``query_batch`` queries at a time; each (chunk, batch) is split into tiles of
    about ``_TILE_ELEMS`` similarities (``_GPU_TILE_ELEMS`` on a GPU).
    """
    if compute_dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"compute_dtype must be torch.float32 or torch.bfloat16, got {compute_dtype}")
    device = torch.device(device)
    on_gpu = device.type != "cpu"
    if chunk_tokens is None:
        chunk_tokens = _GPU_CHUNK_TOKENS if on_gpu else 65536
    if query_batch < 1 or chunk_tokens < 1:
        raise ValueError("query_batch and chunk_tokens must be >= 1")
    offsets = _check_offsets(doc_vectors, doc_offsets)
    full_dim, use, renorm = _full_dim_and_use(doc_vectors, dim)
    q, mask = _prepare_queries(queries, query_mask, full_dim, use, renorm)
    n_q, n_docs = q.shape[0], offsets.size - 1
    ranks = check_tie_rank(tie_rank, n_docs)
    kk = min(int(k), n_docs)
    if kk <= 0 or n_q == 0:
        return np.zeros((n_q, max(kk, 0)), np.float32), np.zeros((n_q, max(kk, 0)), np.int64)

    batches = _query_batches(q, mask, query_batch, compute_dtype, device)
    total = int(offsets[-1])
    rows_max = max(1, max(flat.shape[0] for _, _, flat in batches))
    chunk_cap = min(int(chunk_tokens), total)
    tile_cols = min(chunk_cap, max(_MIN_TILE_COLS, (_GPU_TILE_ELEMS if on_gpu else _TILE_ELEMS) // rows_max))
    scorer = _TileScorer(device, compute_dtype, chunk_cap, use, tile_cols, rows_max, len(batches))
    top = RunningTopK([idx.size for idx, _, _ in batches], kk, ranks, _MERGE_DOCS)
    reader = ChunkReader(doc_vectors, chunk_cap)

    cuts = chunk_cuts(offsets, 0, total, chunk_cap)
    for r0, r1 in zip(cuts[:-1], cuts[1:]):
        plan = ChunkPlan(offsets, r0, r1, tile_cols)
        chunk, padded = scorer.load(reader.rows(r0, r1), plan, use, renorm)
        for bi, batch in enumerate(batches):
            if plan.tiles:
                top.add(bi, scorer.short_documents(plan, padded, batch), plan.doc_ids)
            for doc, scores in scorer.long_documents(plan, chunk, batch, bi):
                top.add(bi, scores, np.array([doc], dtype=np.int64))
        top.merge(final=r1 == total)
    return top.result([idx for idx, _, _ in batches], n_q)


@torch.inference_mode()
def maxsim_rerank(queries, query_mask, doc_vectors, doc_offsets, candidates: Sequence[np.ndarray],
                  dim: int | None = None, compute_dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu") -> list[np.ndarray]:
    """For each query i, float32 scores of the documents ``candidates[i]`` (doc indices, any order,
    repeats allowed, may be empty), in the order given."""
    if compute_dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"compute_dtype must be torch.float32 or torch.bfloat16, got {compute_dtype}")
    offsets = _check_offsets(doc_vectors, doc_offsets)
    full_dim, use, renorm = _full_dim_and_use(doc_vectors, dim)
    q, mask = _prepare_queries(queries, query_mask, full_dim, use, renorm)
    if len(candidates) != q.shape[0]:
        raise ValueError(f"expected {q.shape[0]} candidate lists, got {len(candidates)}")
    n_docs = offsets.size - 1
    out = []
    for i, cand in enumerate(candidates):
        cand = np.asarray(cand, dtype=np.int64).reshape(-1)
        scores = np.zeros(cand.size, dtype=np.float32)
        if cand.size and (cand.min() < 0 or cand.max() >= n_docs):
            raise IndexError(f"candidate doc index out of range 0..{n_docs - 1} for query {i}")
        flat = q[i][mask[i]].to(device=device, dtype=compute_dtype)
        if cand.size == 0 or flat.shape[0] == 0:
            out.append(scores)
            continue
        lengths = offsets[cand + 1] - offsets[cand]
        ends = np.cumsum(lengths)
        g0 = 0
        while g0 < cand.size:
            base = ends[g0 - 1] if g0 else 0
            g1 = max(g0 + 1, int(np.searchsorted(ends, base + _RERANK_ROWS, side="right")))
            lens = lengths[g0:g1]
            rel = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.intp)
            rows = np.repeat(offsets[cand[g0:g1]] - rel, lens) + np.arange(int(lens.sum()))
            c = _load_rows(doc_vectors, rows, use, renorm).to(device=device, dtype=compute_dtype)
            sims = (flat @ c.t()).to(torch.float32).cpu().numpy()
            scores[g0:g1] = np.maximum.reduceat(sims, rel, axis=1).sum(axis=0, dtype=np.float32)
            g0 = g1
        out.append(scores)
    return out


def reference_maxsim(queries, query_mask, doc_vectors, doc_offsets, dim: int | None = None) -> np.ndarray:
    """Naive float64 reference: the full (n_q, n_docs) score matrix, one document at a time."""
    offsets = _check_offsets(doc_vectors, doc_offsets)
    full_dim, use, renorm = _full_dim_and_use(doc_vectors, dim)
    q = queries.detach().cpu().numpy() if isinstance(queries, torch.Tensor) else np.asarray(queries)
    mask = query_mask.detach().cpu().numpy() if isinstance(query_mask, torch.Tensor) else np.asarray(query_mask)
    q = q[..., :use].astype(np.float64)
    if renorm:
        q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-300)
    mask = mask.astype(bool)
    scores = np.zeros((q.shape[0], offsets.size - 1), dtype=np.float64)
    for d in range(offsets.size - 1):
        v = np.asarray(doc_vectors[offsets[d]:offsets[d + 1], :use], dtype=np.float64)
        if renorm:
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
        best = (q @ v.T).max(axis=2)  # (n_q, q_len)
        scores[:, d] = np.where(mask, best, 0.0).sum(axis=1)
    return scores
