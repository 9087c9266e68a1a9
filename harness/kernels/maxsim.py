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
``compute_dtype``; a float32 chunk used as stored is a view, not a copy). A query batch of many
rows (``tiles.TileScorer``): inside a chunk, documents are sorted by length and grouped into tiles
of about ``_TILE_ELEMS / query rows`` columns; a tile's documents are padded to its longest one
with copies of their own last token (a copy never changes a max; sorting keeps the padding around
1%). Per tile and query batch there is one torch matmul ``(tile columns, dim) @ (dim, query
rows)`` and one ``amax`` over the (docs, padded length, rows) view of its result while it is still
in cache; the per-query sum is a fixed-shape ``sum`` because query rows are token-major and padded
to the batch's longest query with zero vectors (a zero vector adds exactly 0 to a score; queries
are sorted by real-token count before batching so that padding stays small). Documents longer
than a tile (or cut by a chunk boundary) are scored piecewise with a running max. A batch of at
most ``few_rows.FEW_ROWS`` rows (one or two queries: a single query's search, PLAID's and FAISS's
re-scoring) gathers no tiles (``few_rows.FewRowsScorer``): one (chunk rows, dim) @ (dim, query
rows) matmul per chunk writes the similarities and one compiled pass (``segments.segment_max``)
takes each document's max over its consecutive rows; when such a batch is the search's only one,
each chunk is converted and multiplied in blocks of ``_FEW_BLOCK_BYTES`` (in cache, not a whole
float32 copy of the chunk).
On a CPU a document's score is the same bits whatever chunk, tile or block it lands in (both paths
pad products below the sizes where BLAS sums in another order), so a sharded search scores as
one over the whole corpus; the two paths may differ from each other by a float32 rounding. Memory
is bounded by about two copies of a chunk plus ``_TILE_ELEMS`` similarities (few rows: rows x
chunk) plus small per-batch buffers, whatever the corpus size. A memory-mapped store
(``np.memmap``) is read chunk by chunk with file reads into two reused buffers, not through the
map: every page touched through a map stays in the process's resident set while the map is open,
so one pass would leave the whole store resident (``chunks.ChunkReader``); the next chunk is read
in a background thread while this one is scored, so reading overlaps the matmuls. A single
few-row batch reads through the map instead, each chunk's pages dropped from the resident set
once scored (``MADV_DONTNEED``): there reading costs about as much as scoring, a copy made it read
every byte twice, and a reader thread beside torch's threads, one per core, slowed it on 2 cores.

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

from collections.abc import Sequence

import numpy as np
import torch

from harness.kernels.chunks import ChunkPlan, ChunkReader, chunk_cuts, from_numpy, load_rows
from harness.kernels.few_rows import FEW_ROWS, FewRowsScorer
from harness.kernels.tiles import TileScorer
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
# A single few-row batch converts its chunk this many float32 bytes at a time (in cache for the
# matmul that follows), and reads chunks of this many rows (the chunk just read is still in cache
# when it is converted or multiplied; 65,536 rows of float16 at d384 are 50 MB). Chosen with
# short runs on 2 cores: 16,384 rows were faster than 65,536 and 8,192, level with 32,768.
_FEW_BLOCK_BYTES = 8 << 20
_FEW_CHUNK_TOKENS = 16384
# Rows gathered per step by maxsim_rerank.
_RERANK_ROWS = 65536


# ----------------------------------------------------------------------------------------------
# Inputs


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
    q = queries.detach().to("cpu") if isinstance(queries, torch.Tensor) else from_numpy(np.asarray(queries))
    mask = query_mask.detach().to("cpu") if isinstance(query_mask, torch.Tensor) else from_numpy(np.asarray(query_mask))
    if q.ndim != 3 or q.shape[2] != full_dim:
        raise ValueError(f"queries must be (n_queries, q_len, {full_dim}), got {tuple(q.shape)}")
    if tuple(mask.shape) != tuple(q.shape[:2]):
        raise ValueError(f"query_mask must be {tuple(q.shape[:2])}, got {tuple(mask.shape)}")
    q = q[..., :use].to(torch.float32)
    if renorm:
        q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return q, mask.to(torch.bool)


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
    most ``chunk_tokens`` rows (default 65,536 on a CPU, ``_FEW_CHUNK_TOKENS`` for a single
    few-row batch, 262,144 on a GPU; a chunk ends on a document boundary unless one document alone
    is longer), converted to ``compute_dtype`` once per chunk, against ``query_batch`` queries at
    a time; each (chunk, batch) is split into tiles of about ``_TILE_ELEMS`` similarities
    (``_GPU_TILE_ELEMS`` on a GPU), or, for a batch of at most ``few_rows.FEW_ROWS`` query rows
    on a CPU, scored without tiles (see the module docstring).
    """
    if compute_dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"compute_dtype must be torch.float32 or torch.bfloat16, got {compute_dtype}")
    device = torch.device(device)
    on_gpu = device.type != "cpu"
    if query_batch < 1 or (chunk_tokens is not None and chunk_tokens < 1):
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
    # Few query rows (a single query's search): similarities per query row, no padded tiles.
    few = {bi for bi, (_, _, flat) in enumerate(batches)
           if not on_gpu and compute_dtype == torch.float32 and flat.shape[0] <= FEW_ROWS}
    # One few-row batch: the chunk is converted and multiplied block by block, in cache.
    blockwise = len(few) == len(batches) == 1
    if chunk_tokens is None:
        chunk_tokens = _GPU_CHUNK_TOKENS if on_gpu else _FEW_CHUNK_TOKENS if blockwise else 65536
    total = int(offsets[-1])
    rows_max = max([1] + [flat.shape[0] for bi, (_, _, flat) in enumerate(batches) if bi not in few])
    chunk_cap = min(int(chunk_tokens), total)
    tile_cols = min(chunk_cap, max(_MIN_TILE_COLS, (_GPU_TILE_ELEMS if on_gpu else _TILE_ELEMS) // rows_max))
    scorer = TileScorer(device, compute_dtype, chunk_cap, use, tile_cols, rows_max, len(batches))
    few_scorer = FewRowsScorer()
    top = RunningTopK([idx.size for idx, _, _ in batches], kk, ranks, _MERGE_DOCS)
    reader = ChunkReader(doc_vectors, chunk_cap)
    block_rows = max(_MIN_TILE_COLS, _FEW_BLOCK_BYTES // (4 * use))

    def convert(rows):
        return scorer.load(rows, use, renorm, out=scorer.chunk32[:rows.shape[0]])

    # A single query reads each chunk through the map when it needs it: a reader thread beside
    # torch's threads (one per core) made it 10-25% slower on 2 cores, a copy 1.6x slower at d128.
    for r0, r1, rows in reader.spans(chunk_cuts(offsets, 0, total, chunk_cap), background=not blockwise):
        if blockwise:
            ids, scores = few_scorer.score(offsets, r0, r1, rows, batches[0], 0, convert, block_rows)
            top.add(0, scores, ids)
            top.merge(final=r1 == total)
            continue
        chunk = scorer.load(rows, use, renorm)
        if len(few) < len(batches):
            plan = ChunkPlan(offsets, r0, r1, tile_cols)
            padded = scorer.padded(chunk, plan)
        for bi, batch in enumerate(batches):
            if bi in few:
                ids, scores = few_scorer.score(offsets, r0, r1, chunk, batch, bi)
                top.add(bi, scores, ids)
                continue
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
            c = load_rows(doc_vectors, rows, use, renorm).to(device=device, dtype=compute_dtype)
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
