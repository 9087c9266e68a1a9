"""Sharded document stores: a corpus's vectors as consecutive spans of documents, each its own
``TokenStore`` cached under its own key, plus a manifest of the whole written last.

The plan (``shard_plan``) depends only on the number of documents, the most vectors a document
stores (``doc_maxlen`` for token stores, 1 for single vectors) and the shard size, so any machine
computes the same one without reading, let alone tokenising, the corpus: each shard holds as many
documents as fit in ``shard_tokens`` vectors at their longest (fewer vectors when documents are
shorter).
A shard's key is the document key (which holds the whole corpus's fingerprint) with its place in
the plan: a finished shard is found again by a run that was killed, and only the missing ones are
encoded. A plan of one shard keeps the whole store at the document key
itself, where stores were kept before sharding.

    <home>/tokens/<xx>/<sha256 of the sharded key>/manifest.json   the plan and each shard's key

Search runs each shard alone (``search_shard``: its top k, document indices of the whole corpus)
and ``merge_topk`` keeps the best k of them by the kernel's sortable keys (harness/kernels/topk.py)
with the corpus's tie ranks, which is exactly the top k of one search over all documents.

Encoding a shard (``encode_shard``) and searching one (``search_step``) are plain functions of
plain data (``EncodeJob``, ``SearchJob``), mapped by the step executor (``harness.executors.steps``):
a loop in this process by default, Ray tasks under ``--executor ray``. ``STATS`` counts shards
encoded and reused (only for stores of more than one shard), printed beside the cache counters.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import executors, integrity, locks
from harness.environment import high_water_mark
from harness.errors import CorruptFileError, ParameterError
from harness.hashing import sha256
from harness.index import cache
from harness.index.token_store import TokenStore, TokenStoreWriter
from harness.kernels.topk import decode_keys, encode_keys

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# Large enough that every BEIR corpus up to a few million passages is one shard (SciFact has
# about 1.5M document vectors): a size you choose to split a corpus, not one it has to pick.
DEFAULT_SHARD_TOKENS = 1 << 24

STATS: Counter[str] = Counter()
# What each shard step of the last ``open_or_encode`` in this process reported (``encode_shard``).
STEPS: list[dict] = []
# Seconds of the last ``open_or_encode``'s phases in this process: planning and verifying the shards
# found (``find_s``), the steps (``steps_s``), opening the new shards and writing the plan (``open_s``).
PHASES: dict[str, float] = {}


def worker_figures(steps: list[dict]) -> dict:
    """The cost figures of shard steps that ran in other processes (workers): their peak resident
    memory, and how many there were; nothing when every step ran here."""
    elsewhere = [s for s in steps if s["pid"] != os.getpid() and s["peak_rss_bytes"]]
    if not elsewhere:
        return {}
    return {"shard_workers": len({s["pid"] for s in elsewhere}),
            "shard_worker_peak_rss_bytes": max(s["peak_rss_bytes"] for s in elsewhere)}


def check_shard_tokens(shard_tokens) -> int:
    """A shard size a retriever takes: a whole number of vectors, at least 1."""
    if isinstance(shard_tokens, bool) or not isinstance(shard_tokens, int) or shard_tokens < 1:
        raise ParameterError(f"shard_tokens={shard_tokens!r} is not a number of vectors; give a whole number of "
                             "at least 1 (the default keeps most corpora in one shard).", "shard_tokens")
    return shard_tokens


def shard_plan(n_docs: int, doc_vectors: int, shard_tokens: int) -> list[tuple[int, int]]:
    """(first document, stop document) spans covering ``n_docs`` documents in order, each of
    ``shard_tokens // doc_vectors`` documents (at least one), so that a shard stores at most
    ``shard_tokens`` vectors when each document stores at most ``doc_vectors``. No documents: one
    empty span. A plan from counts alone: planning a corpus of 10^8 documents reads nothing."""
    if shard_tokens < 1 or doc_vectors < 1:
        raise ValueError("shard_tokens and doc_vectors must be at least 1")
    per_shard = max(1, shard_tokens // doc_vectors)
    return [(a, min(n_docs, a + per_shard)) for a in range(0, n_docs, per_shard)] or [(0, 0)]


def sharded_key(document_key: dict, shard_tokens: int) -> dict:
    return {"role": "sharded", "documents": document_key, "shard_tokens": shard_tokens}


def shard_key(document_key: dict, span: tuple[int, int], n_shards: int) -> dict:
    """The key of one shard: the document key itself for a one-shard plan, else the document key
    (which names the whole corpus by its fingerprint) with the span's place in the plan."""
    if n_shards == 1:
        return document_key
    first, stop = span
    return {**document_key, "shard": {"first": first, "stop": stop}}


class ShardedStore:
    """The shards of one corpus, in order: ``shards[j]`` holds documents ``spans[j]``."""

    def __init__(self, spans: list[tuple[int, int]], shards: list[TokenStore]):
        self.spans, self.shards = spans, shards

    @property
    def n_docs(self) -> int:
        return sum(s.n_docs for s in self.shards)

    @property
    def n_tokens(self) -> int:
        return sum(s.n_tokens for s in self.shards)

    @property
    def dim(self) -> int:
        return self.shards[0].dim

    @property
    def offsets(self) -> np.ndarray:
        """Every document's first row as if the shards were one store (n_docs + 1)."""
        parts = [np.zeros(1, np.int64)]
        base = 0
        for s in self.shards:
            parts.append(s.offsets[1:] + base)
            base += s.n_tokens
        return np.concatenate(parts)

    def nbytes(self, dim: int | None = None) -> int:
        return sum(s.nbytes(dim) for s in self.shards)

    def locate(self, i: int) -> tuple[int, int]:
        """(shard, document within it) of document i."""
        j = int(np.searchsorted([stop for _, stop in self.spans], i, side="right"))
        return j, i - self.spans[j][0]

    def doc(self, i: int) -> np.ndarray:
        j, local = self.locate(i)
        return self.shards[j].doc(local)


def _read_plan(path: Path) -> list[tuple[int, int]] | None:
    try:
        manifest = integrity.read_manifest(path / MANIFEST)
        return [(int(a), int(b)) for a, b in manifest["spans"]]
    except CorruptFileError as e:
        if path.exists():
            log.warning("shard manifest damaged: %s; planning the shards again", e)
        return None
    except (KeyError, TypeError, ValueError):
        log.warning("shard manifest %s does not hold a plan; planning the shards again", path / MANIFEST)
        return None


def _write_plan(path: Path, key: dict, spans: list[tuple[int, int]], keys: list[dict]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".{MANIFEST}.{os.getpid()}.tmp"
    integrity.write_manifest(tmp, {**cache.stored_key(key), "spans": [list(s) for s in spans],
                                   "shards": [sha256(cache.stored_key(k)) for k in keys]}, [])
    os.replace(tmp, path / MANIFEST)  # whole or absent


@dataclass(frozen=True)
class EncodeJob:
    """One shard to encode: plain data a worker elsewhere can take. ``encoder`` is picklable (a
    retriever without its loaded model) and has ``encode_span(first, stop, make_writer)``, which
    reads the documents first..stop-1 from the dataset cache and writes their store."""

    key: dict
    span: tuple[int, int]
    dtype: str
    encoder: Any

    def __str__(self) -> str:
        return f"document shard {self.span[0]}-{self.span[1] - 1}"


def encode_shard(job: EncodeJob) -> dict:
    """The step that encodes one shard into its store, unless a whole one is there. Under the
    store's lock: two runs wanting the same shard encode it once. Returns what it did: ``reused``,
    its ``seconds``, and the process it ran in with that process's peak resident memory (a worker's
    own since its task began; harness/executors/ray.py resets it)."""
    path = cache.store_path(job.key)
    start, began = time.perf_counter(), time.time()
    with locks.hold(path, f"another process encoding {path}"):
        reused = _open(path) is not None
        if not reused:
            job.encoder.encode_span(*job.span, lambda counts, dim: TokenStoreWriter(
                path, counts, dim, dtype=job.dtype, manifest=cache.stored_key(job.key)))
    return {"reused": reused, "seconds": time.perf_counter() - start, "began": began,
            "documents": job.span[1] - job.span[0], "pid": os.getpid(), "peak_rss_bytes": high_water_mark()}


def _open(path: Path) -> TokenStore | None:
    """The store at ``path`` if whole (verified); a damaged one is named and treated as missing."""
    if not path.exists():
        return None
    try:
        return TokenStore.load(path)
    except CorruptFileError as e:
        cache.log.warning("vector cache damaged: %s; rebuilding %s", e, path)
        return None


def open_or_encode(document_key: dict, shard_tokens: int, n_docs: int, doc_vectors: int, encoder: Any,
                   dtype: str = "float16", gpus: float = 0) -> tuple[TokenStore | ShardedStore, bool]:
    """The store of ``document_key`` (``n_docs`` documents of at most ``doc_vectors`` vectors) in
    shards of at most ``shard_tokens`` vectors: every whole shard reused, the others encoded as
    ``EncodeJob`` steps on the step executor (harness.executors: a loop here, or Ray tasks, ``gpus``
    each); a manifest's plan, where one is stored, is the plan. True when every shard was reused.
    One shard comes back as its ``TokenStore``."""
    t = time.perf_counter()
    folder = cache.store_path(sharded_key(document_key, shard_tokens))
    spans = _read_plan(folder)
    planned = spans is not None
    if spans is None:
        spans = shard_plan(n_docs, doc_vectors, shard_tokens)
    keys = [shard_key(document_key, span, len(spans)) for span in spans]
    found = [_open(cache.store_path(key)) for key in keys]
    jobs = [EncodeJob(key, span, dtype, encoder) for key, span, store in zip(keys, spans, found) if store is None]
    reused = len(spans) - len(jobs)
    PHASES["find_s"], t = time.perf_counter() - t, time.perf_counter()
    STEPS[:] = _run_steps(encode_shard, jobs, gpus)
    PHASES["steps_s"], t = time.perf_counter() - t, time.perf_counter()
    reused += sum(step["reused"] for step in STEPS)
    # A shard a step returned was verified there, or written and checksummed there from the file
    # as written: reading it all back here again would double the I/O of every new shard.
    shards = [store or TokenStore.load(cache.store_path(key), verify=False) for key, store in zip(keys, found)]
    hit = reused == len(spans)
    cache.STATS["hits" if hit else "misses"] += 1
    if len(spans) > 1:
        STATS["encoded"] += len(spans) - reused
        STATS["reused"] += reused
    if not (planned and hit):
        _write_plan(folder, sharded_key(document_key, shard_tokens), spans, keys)
    PHASES["open_s"] = time.perf_counter() - t
    return (shards[0] if len(shards) == 1 else ShardedStore(spans, shards)), hit


@dataclass(frozen=True)
class SearchJob:
    """One shard's exact search: the queries, the shard's vectors (a store, pickled by its path),
    its first document's place in the corpus, the corpus's tie ranks of its documents, and what
    the kernel takes besides (``search(vectors, offsets, k, tie_rank=..., **kernel)``)."""

    search: Callable
    store: Any
    first: int
    tie_rank: np.ndarray
    k: int
    kernel: dict

    def __str__(self) -> str:
        return f"search of document shard {self.first}-{self.first + len(self.tie_rank) - 1}"


def search_step(job: SearchJob) -> tuple[np.ndarray, np.ndarray]:
    return search_shard(job.search, job.store.vectors, job.store.offsets, job.first, job.tie_rank, job.k, **job.kernel)


def search_shards(jobs: list[SearchJob], k: int, tie_rank: np.ndarray, gpus: float = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every shard searched on the step executor, merged into the global top k."""
    results = _run_steps(search_step, jobs, gpus)
    return results[0] if len(results) == 1 else merge_topk(results, k, tie_rank)


def _run_steps(step: Callable, jobs: list, gpus: float = 0) -> list:
    """``step(job)`` for every job on the step executor, the values in the jobs' order (they end in
    any order); the first failure is raised as its step raised it."""
    values: dict[int, Any] = {}
    for finished in executors.steps().map(step, jobs, gpus=gpus):
        if finished.failed:
            raise finished.error
        values[id(finished.item)] = finished.value
    return [values[id(job)] for job in jobs]


def search_shard(search: Callable, vectors, offsets, first: int, tie_rank: np.ndarray, k: int,
                 **kernel) -> tuple[np.ndarray, np.ndarray]:
    """One shard's top k: (scores (n_q, k'), indices into the whole corpus), by ``search(vectors,
    offsets, k, tie_rank=...)`` (``maxsim_search`` with the queries bound). ``tie_rank`` holds the
    corpus's ranks of the shard's documents; the kernel gets their order as a permutation of its own."""
    local = np.empty(len(tie_rank), dtype=np.int64)
    local[np.argsort(tie_rank, kind="stable")] = np.arange(len(tie_rank))
    scores, found = search(vectors, offsets, k, tie_rank=local, **kernel)
    return scores, found + first


def merge_topk(results: list[tuple[np.ndarray, np.ndarray]], k: int,
               tie_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of the shards' (scores, corpus indices) per query, best first, ties by
    ``tie_rank`` (the corpus's): the same documents in the same order as one search over all."""
    keys = np.concatenate([encode_keys(s, tie_rank[d]) for s, d in results], axis=1)
    kk = min(k, keys.shape[1])
    if keys.shape[1] > kk:
        keys = np.partition(keys, kk - 1, axis=1)[:, :kk]
    scores, ranks = decode_keys(np.sort(keys, axis=1))
    return scores, np.argsort(tie_rank)[ranks]
