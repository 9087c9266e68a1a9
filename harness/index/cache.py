"""Token stores cached on disk under a key of everything that shapes the vectors.

The key holds the model (revision or weights hash), the role, the encoder settings of that role,
max lengths, precision and storage dtype, and a fingerprint of the corpus texts. Query-side
settings and Matryoshka truncation are not in a document key: changing them reuses the documents.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.index.token_store import TokenStore, TokenStoreWriter
from harness.paths import harness_home
from harness.protocol import sha256

# Per-process counters, reported by the CLI: how many stores were encoded and how many reused.
STATS: Counter[str] = Counter()


def corpus_fingerprint(ids: list[str], texts: list[str]) -> str:
    digest = hashlib.sha256()
    for doc_id, text in zip(ids, texts):
        digest.update(doc_id.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")
    return digest.hexdigest()


def store_path(key: dict) -> Path:
    digest = sha256(key)
    return harness_home() / "tokens" / digest[:2] / digest


def open_or_build(key: dict, build: Callable[[Callable[[np.ndarray, int], TokenStoreWriter]], TokenStore],
                  dtype: str = "float16") -> tuple[TokenStore, bool]:
    """The cached store for ``key``, or a new one from ``build(make_writer)``; True when cached."""
    path = store_path(key)
    store = TokenStore.open(path)
    if store is not None:
        STATS["hits"] += 1
        return store, True
    STATS["misses"] += 1
    return build(lambda counts, dim: TokenStoreWriter(path, counts, dim, dtype=dtype, manifest={"key": key})), False
