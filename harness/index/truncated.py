"""A token store's vectors cut to a Matryoshka ``dim`` and re-normalised, materialised once as a
float32 store and cached beside the document store (key: document key, dim), so that exact search
at that dim reads ``dim`` float32 values per token and normalises nothing per query, instead of
reading every full-width row and cutting it each time. The rows are cut exactly as the MaxSim
kernel cuts them (its own ``chunks.load_rows``), so search over this store gives the same bits."""

from __future__ import annotations

import numpy as np

from harness.index import cache
from harness.index.token_store import TokenStore, TokenStoreWriter

_ROWS = 65536  # rows cut per step (float32 working copy of 32 MiB at dim 128)


def truncated_key(document_key: dict, dim: int) -> dict:
    return {"role": "truncated", "documents": document_key, "dim": dim, "dtype": "float32"}


def build(path, source: TokenStore, dim: int, manifest: dict) -> TokenStore:
    from harness.kernels.chunks import load_rows

    offsets = np.asarray(source.offsets, dtype=np.int64)
    writer = TokenStoreWriter(path, np.diff(offsets), dim, dtype="float32", manifest=manifest)
    first = 0
    while first < source.n_docs:  # whole documents, about _ROWS rows at a time
        stop = max(first + 1, int(np.searchsorted(offsets, offsets[first] + _ROWS, side="right")) - 1)
        stop = min(stop, source.n_docs)
        rows = slice(int(offsets[first]), int(offsets[stop]))
        writer.write_span(first, stop, load_rows(source.vectors, rows, dim, True).numpy())
        first = stop
    return writer.finish()


def open_or_build(document_key: dict, source: TokenStore, dim: int) -> tuple[TokenStore, bool]:
    """The cached store of ``source`` (the store of ``document_key``) cut to ``dim``; True when cached."""
    key = truncated_key(document_key, dim)
    path = cache.store_path(key)
    return cache._cached(path, TokenStore.load, "truncated_", lambda: build(path, source, dim, cache.stored_key(key)))


def cut_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    """Queries cut to ``dim`` and re-normalised as the kernel does it (torch, float32)."""
    import torch

    q = torch.from_numpy(np.ascontiguousarray(queries))[..., :dim].to(torch.float32)
    return (q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)).numpy()
