"""Token stores cached on disk under a key of everything that shapes the vectors.

The key holds the model (hub revision, or a local folder's files hash), the role, the encoder
settings of that role, max lengths, precision and storage dtype, and a fingerprint of the corpus
texts; every store's key adds the harness's ``SCORING_VERSION`` and the versions of transformers
and tokenizers, which turn texts into vectors (``stored_key``). Query-side settings and Matryoshka
truncation are not in a document key: changing them reuses the documents.

A compressed store (int8, residual) is derived from a cached document store, never from the
encoder, and cached beside it under (document key, dim, codec settings): a sweep over storage
kinds encodes the documents once, and residual kinds that differ only in bits cluster once (a
new one takes the centroids and centroid ids of a cached sibling). Its counters are
``compressed_misses`` / ``compressed_hits``.

A cached store is verified against its manifest's checksums each time it is opened; one that fails
(cut short, overwritten, written before checksums) is logged as a warning naming the file, counted
as a miss and rebuilt in place, so its numbers never reach a result.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness import locks, protocol
from harness.environment import versions
from harness.errors import CorruptFileError
from harness.hashing import sha256
from harness.index.compressed_store import CompressedStore
from harness.index.compression import RESIDUAL_BITS, ResidualCodec
from harness.index.token_store import TokenStore, TokenStoreWriter
from harness.paths import harness_home

# The libraries every encoder reads texts and weights through; a retriever names its own others
# (sentence-transformers for the dense baseline) under ``libraries`` in its key.
ENCODING_LIBRARIES = ("transformers", "tokenizers")

log = logging.getLogger(__name__)

# Per-process counters, reported by the CLI: how many stores were encoded and how many reused.
STATS: Counter[str] = Counter()


def corpus_fingerprint(ids: list[str], texts: list[str]) -> str:
    """The fingerprint of a corpus given as two lists (``Documents.fingerprint``'s, streamed)."""
    from harness.data.corpus import Documents

    return Documents.from_lists(ids, texts).fingerprint()


def stored_key(key: dict) -> dict:
    """``key`` with what every store depends on besides it: the scoring version and the encoding
    libraries' versions (an upgrade re-encodes rather than mixing old documents with new queries)."""
    return {"key": key, "scoring_version": protocol.SCORING_VERSION,
            "libraries": versions(*ENCODING_LIBRARIES)}


def store_path(key: dict) -> Path:
    digest = sha256(stored_key(key))
    return harness_home() / "tokens" / digest[:2] / digest


def open_or_build(key: dict, build: Callable[[Callable[[np.ndarray, int], TokenStoreWriter]], TokenStore],
                  dtype: str = "float16") -> tuple[TokenStore, bool]:
    """The cached store for ``key``, or a new one from ``build(make_writer)``; True when cached."""
    path = store_path(key)
    return _cached(path, TokenStore.load, "", lambda: build(
        lambda counts, dim: TokenStoreWriter(path, counts, dim, dtype=dtype, manifest=stored_key(key))))


def _cached(path: Path, load_store: Callable, counter: str, build: Callable):
    """The store at ``path`` if whole (counted as a hit), else ``build()`` (a miss), which replaces
    a damaged one. Under the store's lock: a second process wanting the same store waits, then
    reuses it."""
    with locks.hold(path, f"another process building the store {path}"):
        if path.exists():
            try:
                store = load_store(path)
            except CorruptFileError as e:
                kind = "compressed store" if counter else "vector cache"
                log.warning("%s damaged: %s; rebuilding %s", kind, e, path)
            else:
                STATS[counter + "hits"] += 1
                return store, True
        STATS[counter + "misses"] += 1
        return build(), False


def compressed_key(document_key: dict, dim: int, codec_settings: dict) -> dict:
    return {"role": "compressed", "documents": document_key, "dim": dim, "codec": codec_settings}


def open_or_build_compressed(document_key: dict, source: TokenStore, dim: int, codec) -> tuple[CompressedStore, bool]:
    """The cached compressed form of ``source`` (the store of ``document_key``) at ``dim`` through
    ``codec``, built from ``source`` on a miss; True when cached."""
    key = compressed_key(document_key, dim, codec.settings())
    path = store_path(key)
    return _cached(path, CompressedStore.load, "compressed_", lambda: CompressedStore.build(
        path, source, dim, codec, manifest=stored_key(key), clustering=_clustered_sibling(document_key, dim, codec)))


def _clustered_sibling(document_key: dict, dim: int, codec) -> CompressedStore | None:
    """A cached residual store of the same documents, dim and clustering settings (other bits)."""
    if not isinstance(codec, ResidualCodec):
        return None
    for nbits in sorted(set(RESIDUAL_BITS) - {codec.nbits}):
        settings = {**codec.settings(), "nbits": nbits}
        sibling = CompressedStore.open(store_path(compressed_key(document_key, dim, settings)))
        if sibling is not None and "clustering_s" in sibling.manifest:
            return sibling
    return None
