"""FAISS end-to-end retrieval as ColBERTv1 did it (Khattab & Zaharia, 2020, section 3.6; colbert-ai
v0.1's ``colbert/ranking/faiss_index.py``): a FAISS index over every document token vector, the
top ``faiss_depth`` token neighbours of each query token, the union of their documents, then exact
MaxSim over those documents from the full-precision token store.

Two index kinds, inner product over the unit vectors cut to ``dim``:

- ``ivfpq``: ``IndexIVFPQ`` with ``nlist`` cells (ColBERTv1: ``2 ** ceil(log2(8 sqrt(n_tokens)))``),
  ``pq_m`` sub-quantisers of ``pq_nbits`` bits (ColBERTv1: 16 x 8 at dim 128), trained on a seeded
  sample of at most ``train_points_per_list`` vectors per cell, searched at ``nprobe`` (ColBERTv1: 10);
- ``hnsw``: ``IndexHNSWFlat`` with ``hnsw_m`` links per node, ``ef_construction``, searched at
  ``ef_search`` (the candidate list's size; at least ``faiss_depth`` in effect).

The built index is cached on disk under (the documents' key, dim, build settings): search-time
settings (``nprobe``, ``ef_search``, ``faiss_depth``) are not in the key, so a sweep over them
builds nothing again.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from harness import atomic, integrity, progress
from harness.errors import CorruptFileError
from harness.index import cache
from harness.index.compressed_store import truncate
from harness.index.faiss_lib import require_faiss
from harness.index.plaid import exact_top_k, token_documents

INDEX_FILE = "index.faiss"
MANIFEST = "manifest.json"
_ADD_ROWS = 65536  # token rows cut to dim and added per step (float32: 32 MiB at dim 128)
FAISS_KINDS = ("ivfpq", "hnsw")
BUILD_FIELDS = {"ivfpq": ("nlist", "pq_m", "pq_nbits", "train_points_per_list", "seed"),
                "hnsw": ("hnsw_m", "ef_construction")}


def default_nlist(n_tokens: int) -> int:
    """ColBERTv1's number of partitions: 2 ** ceil(log2(8 sqrt(n_tokens)))."""
    return 1 << math.ceil(math.log2(8 * math.sqrt(max(1, n_tokens))))


def index_key(document_key: dict, dim: int, kind: str, build: dict) -> dict:
    return {"role": "faiss", "documents": document_key, "dim": dim, "kind": kind, "build": build}


class FaissIndex:
    """A built (or loaded) faiss index over one token store's vectors at ``dim``."""

    def __init__(self, index, manifest: dict, path: Path | None = None):
        self.index, self.manifest, self.path = index, manifest, path

    @property
    def nbytes(self) -> int:
        return int(self.manifest["index_bytes"])

    @property
    def build_seconds(self) -> float:
        return float(self.manifest["build_s"])

    @classmethod
    def load(cls, path: Path) -> FaissIndex:
        manifest = integrity.read_manifest(path / MANIFEST, [INDEX_FILE])
        faiss = require_faiss("index: faiss")
        try:
            index = faiss.read_index(str(path / INDEX_FILE))
        except RuntimeError as e:
            raise CorruptFileError(path / INDEX_FILE, f"cannot be read by faiss ({e})") from None
        return cls(index, manifest, path)


def build_index(store, dim: int, kind: str, build: dict) -> tuple[object, float]:
    """A faiss index of ``kind`` over ``store``'s vectors cut to ``dim`` (inner product)."""
    faiss = require_faiss("index: faiss")
    start = time.perf_counter()
    n = store.n_tokens
    if kind == "ivfpq":
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(quantizer, dim, build["nlist"], build["pq_m"], build["pq_nbits"],
                                 faiss.METRIC_INNER_PRODUCT)
        size = min(n, build["nlist"] * build["train_points_per_list"])
        rows = np.sort(np.random.default_rng(build["seed"]).choice(n, size=size, replace=False))
        index.cp.seed = build["seed"]
        index.train(truncate(store.vectors[rows], dim))
    else:
        index = faiss.IndexHNSWFlat(dim, build["hnsw_m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = build["ef_construction"]
    # Added a slice at a time anyway (bounded float32 copies), so the slices are the progress bar's
    # steps: faiss hooks no callback, and building HNSW over SciFact takes minutes on a CPU.
    starts = range(0, n, _ADD_ROWS)
    for r0 in progress.counted(starts, f"faiss {kind} index", n, "token vectors",
                               size=lambda r0: min(_ADD_ROWS, n - r0)):
        index.add(truncate(store.vectors[r0:r0 + _ADD_ROWS], dim))
    return index, time.perf_counter() - start


def open_or_build(document_key: dict, store, dim: int, kind: str, build: dict) -> tuple[FaissIndex, bool]:
    """The cached index of ``store`` (the store of ``document_key``), built on a miss; True when cached."""
    key = index_key(document_key, dim, kind, build)
    path = cache.store_path(key)

    def make() -> FaissIndex:
        faiss = require_faiss("index: faiss")
        index, seconds = build_index(store, dim, kind, build)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = atomic.temporary(path)
        tmp.mkdir()
        try:
            faiss.write_index(index, str(tmp / INDEX_FILE))
            manifest = {**cache.stored_key(key), "build_s": seconds,
                        "index_bytes": (tmp / INDEX_FILE).stat().st_size, "n_tokens": store.n_tokens}
            integrity.write_manifest(tmp / MANIFEST, manifest, [INDEX_FILE])
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return FaissIndex(index, integrity.read_manifest(path / MANIFEST), path)

    return cache._cached(path, FaissIndex.load, "faiss_", make)


def set_search_params(index: FaissIndex, kind: str, nprobe: int, ef_search: int) -> None:
    if kind == "ivfpq":
        index.index.nprobe = nprobe
    else:
        index.index.hnsw.efSearch = ef_search


def faiss_search_one(query: np.ndarray, mask: np.ndarray, store, index: FaissIndex, depth: int, k: int,
                     tie_rank: np.ndarray, token_docs: np.ndarray, dim: int,
                     **kernel) -> tuple[np.ndarray, np.ndarray, int]:
    """One query over one token store: the documents of its tokens' ``depth`` nearest document
    tokens, scored by exact MaxSim over the store's vectors cut to ``dim``: (scores, documents,
    documents scored)."""
    q = np.asarray(query, dtype=np.float32)[np.asarray(mask, dtype=bool)]
    q = q[:, :dim] / np.maximum(np.linalg.norm(q[:, :dim], axis=1, keepdims=True), np.float32(1e-12))
    _, neighbours = index.index.search(np.ascontiguousarray(q), min(depth, store.n_tokens))
    found = neighbours[neighbours >= 0]
    docs = np.unique(token_docs[found])
    scores, top = exact_top_k(np.asarray(query, dtype=np.float32), np.asarray(mask, dtype=bool), store.vectors,
                              np.asarray(store.offsets, dtype=np.int64), docs, k, tie_rank, dim=dim, **kernel)
    return scores, top, len(docs)


__all__ = ["FAISS_KINDS", "FaissIndex", "default_nlist", "faiss_search_one", "open_or_build", "set_search_params",
           "token_documents"]
