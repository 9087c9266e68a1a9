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
than a tile (or cut by a chunk boundary) are scored piecewise with a running max. Matmul is
about 90% of the time at dims 384 and 128 (bench/maxsim.py, profiled); the rest is mostly
the amax pass over the similarities. Memory is bounded by about two copies of a chunk plus
``_TILE_ELEMS`` similarities plus small per-batch buffers, whatever the corpus size. A memory-
mapped store (``np.memmap``) is read chunk by chunk with file reads into one reused buffer, not
through the map: every page touched through a map stays in the process's resident set while the
map is open, so one pass would leave the whole store resident (``_ChunkReader``).

The running top-k is kept as uint64 keys ``(descending-score bits << 32) | doc index``: keys are
unique, their ascending order is "score descending, lower doc index first", and ``np.partition``
on them is exact with ties, so chunk results are merged with a linear-time partition and sorted
once at the end. ``tie_rank`` (a permutation of the documents) takes the doc index's place in the
keys and is mapped back after decoding, so that ties fall in another order (the retrievers pass
trec_eval's, ``harness.runs.tie_ranks``) and the top-k set is that order's first k.

``compute_dtype=torch.bfloat16`` rounds both sides to bfloat16 for the matmul (similarities are
bfloat16 too; max is exact and per-query sums are float32). It is an opt-in fast mode for CPUs
with native bf16 GEMM (AVX512-BF16/AMX); on AVX2-only CPUs torch's bf16 matmul is several times
slower than float32, so float32 stays the default.

``device`` (default CPU) runs the matmuls and reductions on a GPU: each chunk is copied there once,
the per-document sums come back, and the top-k merge stays on the host. On a GPU tiles and chunks
are larger (``_GPU_TILE_ELEMS``), since there the cost is kernel launches, not cache misses.
"""

from __future__ import annotations

import mmap
import warnings
from collections.abc import Sequence

import numpy as np
import torch

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
_WORST_KEY = np.uint64(0xFFFFFFFFFFFFFFFF)


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


class _ChunkReader:
    """Consecutive row ranges of the document matrix, for ``maxsim_search``'s chunk loop.

    A read-only ``np.memmap`` of a file (what ``TokenStore`` opens) is read with file reads into one
    reused buffer: the file's pages stay in the OS page cache, out of this process's resident set,
    which holds one chunk. Anything else (in-memory arrays, copy-on-write maps whose changes are not
    in the file, views, array-likes) is sliced as before.
    """

    def __init__(self, doc_vectors, max_rows: int):
        self.doc_vectors, self.buffer = doc_vectors, None
        if (isinstance(doc_vectors, np.memmap) and isinstance(doc_vectors.base, mmap.mmap)
                and doc_vectors.mode != "c" and doc_vectors.flags.c_contiguous and doc_vectors.filename
                and max_rows > 0):
            self.row_bytes = doc_vectors.shape[1] * doc_vectors.dtype.itemsize
            self.start = int(doc_vectors.offset)
            self.buffer = np.empty((max_rows, doc_vectors.shape[1]), dtype=doc_vectors.dtype)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        if self.buffer is None:
            return self.doc_vectors[r0:r1]
        out = self.buffer[:r1 - r0]
        view = memoryview(out).cast("B")
        with open(self.doc_vectors.filename, "rb", buffering=0) as f:  # one open per chunk: nothing to close later
            f.seek(self.start + r0 * self.row_bytes)
            done = 0
            while done < len(view):
                n = f.readinto(view[done:])
                if not n:
                    raise OSError(f"{self.doc_vectors.filename}: the file ends before row {r1}")
                done += n
        return out


# ----------------------------------------------------------------------------------------------
# Keys: (score desc, doc index asc) as one sortable uint64


def _encode(scores: np.ndarray, doc_ids: np.ndarray) -> np.ndarray:
    s = np.ascontiguousarray(scores, dtype=np.float32) + np.float32(0.0)  # -0.0 -> +0.0
    u = s.view(np.uint32)
    ascending = np.where(u >> np.uint32(31), ~u, u | np.uint32(0x80000000))
    return ((~ascending).astype(np.uint64) << np.uint64(32)) | doc_ids.astype(np.uint64)


def _decode(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ascending = ~((keys >> np.uint64(32)).astype(np.uint32))
    u = np.where(ascending >> np.uint32(31), ascending & np.uint32(0x7FFFFFFF), ~ascending)
    return u.view(np.float32).copy(), (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _check_tie_rank(tie_rank, n_docs: int) -> np.ndarray | None:
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


class _Buffers:
    """Reused scratch tensors, grown on demand (fresh allocations page-fault on every chunk)."""

    def __init__(self, device: torch.device):
        self._store: dict[str, torch.Tensor] = {}
        self.device = device

    def get(self, name: str, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        n = shape[0] * shape[1]
        buf = self._store.get(name)
        if buf is None or buf.numel() < n or buf.dtype != dtype:
            size = max(n, int(1.25 * buf.numel()) if buf is not None else n)
            buf = self._store[name] = torch.empty(size, dtype=dtype, device=self.device)
        return buf[:n].view(shape)


# ----------------------------------------------------------------------------------------------
# Plans


def _cuts(bounds: np.ndarray, lo: int, hi: int, limit: int) -> list[int]:
    """Cut points lo < c1 < ... < hi, spans at most ``limit`` long, each ending on a value of the
    sorted ``bounds`` (document boundaries) where one fits, else ``limit`` long (inside a long doc)."""
    cuts, pos = [lo], lo
    while pos < hi:
        j = int(np.searchsorted(bounds, pos + limit, side="right")) - 1
        end = int(bounds[j]) if j >= 0 and bounds[j] > pos else pos + limit
        pos = min(end, hi)
        cuts.append(pos)
    return cuts


class _ChunkPlan:
    """How one chunk (rows r0:r1) is scored.

    Short documents (wholly inside the chunk, at most ``tile_cols`` tokens) are sorted by length
    and grouped into tiles of equal padded length ``Lp`` (at most ``tile_cols`` columns a tile);
    a document shorter than ``Lp`` is padded with copies of its own last token, which leaves its
    max unchanged, so a tile's per-document max is one ``amax`` over a (docs, Lp, rows) view.
    ``gather`` holds, per padded row, the chunk-relative row it copies. Long documents (longer
    than ``tile_cols``, or cut by a chunk boundary) are scored piecewise with a running max.
    """

    def __init__(self, offsets: np.ndarray, r0: int, r1: int, tile_cols: int):
        d_lo = int(np.searchsorted(offsets, r0, side="right")) - 1
        d_hi = int(np.searchsorted(offsets, r1, side="left"))
        starts = offsets[d_lo:d_hi]
        ends = offsets[d_lo + 1:d_hi + 1]
        lengths = ends - starts
        whole = (starts >= r0) & (ends <= r1)
        short = whole & (lengths <= tile_cols)
        self.long = [(d_lo + int(i), max(int(starts[i]), r0) - r0, min(int(ends[i]), r1) - r0,
                      bool(starts[i] < r0), bool(ends[i] > r1)) for i in np.flatnonzero(~short)]
        idx = np.flatnonzero(short)
        order = idx[np.argsort(lengths[idx], kind="stable")]
        self.doc_ids = (d_lo + order).astype(np.int64)  # short docs in tile order
        sorted_len = lengths[order]
        self.tiles = []  # (first short doc, n docs, Lp, first padded row)
        gathers, i, row, n = [], 0, 0, order.size
        while i < n:
            lo, hi = 1, n - i  # largest m with m * sorted_len[i + m - 1] <= tile_cols
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if mid * sorted_len[i + mid - 1] <= tile_cols:
                    lo = mid
                else:
                    hi = mid - 1
            lp = int(sorted_len[i + lo - 1])
            docs = order[i:i + lo]
            pad = np.minimum(np.arange(lp)[None, :], (lengths[docs] - 1)[:, None])
            gathers.append((pad + (starts[docs] - r0)[:, None]).ravel())
            self.tiles.append((i, lo, lp, row))
            row += lo * lp
            i += lo
        self.gather = np.concatenate(gathers) if gathers else np.zeros(0, np.int64)


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


# ----------------------------------------------------------------------------------------------
# Public API


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
    ranks = _check_tie_rank(tie_rank, n_docs)
    kk = min(int(k), n_docs)
    if kk <= 0 or n_q == 0:
        return np.zeros((n_q, max(kk, 0)), np.float32), np.zeros((n_q, max(kk, 0)), np.int64)

    batches = _query_batches(q, mask, query_batch, compute_dtype, device)
    total = int(offsets[-1])
    rows_max = max(1, max(flat.shape[0] for _, _, flat in batches))
    chunk_cap = min(int(chunk_tokens), total)
    tile_cols = min(chunk_cap, max(_MIN_TILE_COLS, (_GPU_TILE_ELEMS if on_gpu else _TILE_ELEMS) // rows_max))

    chunk32 = torch.empty((chunk_cap, use), dtype=torch.float32, device=device)
    buffers = _Buffers(device)
    sim = torch.empty(tile_cols * rows_max, dtype=compute_dtype, device=device)
    per_doc = torch.empty(tile_cols * rows_max, dtype=compute_dtype, device=device)
    wide = compute_dtype != torch.float32

    tops = [np.full((idx.size, 0), _WORST_KEY, dtype=np.uint64) for idx, _, _ in batches]
    pending: list[list[np.ndarray]] = [[] for _ in batches]
    pending_docs = 0
    carry: list[torch.Tensor | None] = [None] * len(batches)  # running max of a doc cut by a chunk end

    def doc_scores(maxes: torch.Tensor, q_max: int, b: int) -> np.ndarray:
        """(n, q_max * B) per-token maxima -> (B, n) float32 sums over query tokens."""
        m = maxes.to(torch.float32) if wide else maxes
        return m.view(-1, q_max, b).sum(dim=1).t().cpu().numpy()

    chunk_cuts = _cuts(offsets, 0, total, chunk_cap)
    reader = _ChunkReader(doc_vectors, chunk_cap)
    for r0, r1 in zip(chunk_cuts[:-1], chunk_cuts[1:]):
        plan = _ChunkPlan(offsets, r0, r1, tile_cols)
        c32 = _load_rows(reader.rows(r0, r1), slice(None), use, renorm, out=chunk32[:r1 - r0])
        if wide:  # one conversion per chunk
            c_low = buffers.get("low", (r1 - r0, use), compute_dtype)
            c_low.copy_(c32)
        else:
            c_low = c32
        padded = buffers.get("padded", (plan.gather.size, use), compute_dtype)
        torch.index_select(c_low, 0, torch.from_numpy(plan.gather).to(device), out=padded)
        new_docs = 0
        for bi, (idx, q_max, flat) in enumerate(batches):
            b, rows = idx.size, flat.shape[0]
            chunk_keys = []
            if plan.tiles:
                if q_max == 0:
                    scores = np.zeros((b, plan.doc_ids.size), np.float32)
                else:
                    scores = np.empty((b, plan.doc_ids.size), np.float32)
                    for first, nd, lp, row in plan.tiles:
                        cols = nd * lp
                        st = sim[:cols * rows].view(cols, rows)
                        torch.mm(padded[row:row + cols], flat.t(), out=st)
                        mx = per_doc[:nd * rows].view(nd, rows)
                        torch.amax(st.view(nd, lp, rows), dim=1, out=mx)
                        scores[:, first:first + nd] = doc_scores(mx, q_max, b)
                chunk_keys.append(_encode(scores, plan.doc_ids if ranks is None else ranks[plan.doc_ids]))
            for doc, s, e, cont_first, cont_last in plan.long:
                run = carry[bi] if cont_first else None
                if q_max:
                    for p0 in range(s, e, tile_cols):
                        p1 = min(p0 + tile_cols, e)
                        st = sim[:(p1 - p0) * rows].view(p1 - p0, rows)
                        torch.mm(c_low[p0:p1], flat.t(), out=st)
                        piece = st.amax(dim=0)
                        run = piece if run is None else torch.maximum(run, piece)
                if cont_last:
                    carry[bi] = run
                    continue
                carry[bi] = None
                scores = doc_scores(run[None], q_max, b) if q_max else np.zeros((b, 1), np.float32)
                chunk_keys.append(_encode(scores, np.array([doc if ranks is None else ranks[doc]], dtype=np.int64)))
            if chunk_keys:
                pending[bi].extend(chunk_keys)
                if bi == 0:
                    new_docs += sum(key.shape[1] for key in chunk_keys)
        pending_docs += new_docs
        if pending_docs >= _MERGE_DOCS or r1 == total:
            for bi in range(len(batches)):
                if pending[bi]:
                    tops[bi] = _merge(tops[bi], pending[bi], kk)
                    pending[bi] = []
            pending_docs = 0

    keys = np.empty((n_q, kk), dtype=np.uint64)
    for (idx, _, _), top in zip(batches, tops):
        keys[idx] = top
    scores, found = _decode(np.sort(keys, axis=1))
    if ranks is not None:
        found = np.argsort(ranks)[found]  # rank -> doc index
    return scores, found


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
