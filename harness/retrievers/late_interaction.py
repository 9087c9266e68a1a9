"""Late interaction (ColBERT-style): token vectors, exact MaxSim over the whole corpus.

One document encoding serves every Matryoshka dimension and every query-side setting: the token
store is cached under a key without them, and truncation (slice, re-normalise) happens at search.
``storage`` picks how the index keeps the vectors (harness/index/compression.py): ``fp16`` searches
the float16 token store, ``fp32`` a float32 one (its own encoding: float16 cannot give back the bits
it dropped), ``int8`` and ``residual-<bits>`` a compressed store derived from the float16 one at
``dim`` (cached; no encoding), searched exactly over its decompressed vectors. ``device`` (``auto``: a CUDA GPU when torch sees
one) runs encoding and search; it is recorded with the cost, not in the protocol.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from harness.data.corpus import Documents
from harness.devices import check_device_name
from harness.encoders.checkpoint import EncoderSettings, load_checkpoint
from harness.encoders.multivector import SKIPLIST_RULES
from harness.encoders.quantize import INT8_SCHEME, check_int8_device
from harness.errors import ParameterError
from harness.executors import default_threads
from harness.hashing import sha256
from harness.index import cache, shards, truncated
from harness.index.compressed_store import CompressedStore
from harness.index.approximate import IndexSettings
from harness.index.compression import STORAGE_KINDS, codec_for
from harness.retrievers.base import Retriever, as_documents
from harness.retrievers.late_interaction_approximate import (approximate_settings, prepare_approximate,
                                                             search_approximate)
from harness.runs import Run, tie_ranks

PRECISIONS = ("fp32", "bf16", "int8")  # int8: CPU only, harness/encoders/quantize.py
_LOADED: dict[str, Any] = {}  # the encoder this process loaded last, by its settings' hash
_DOC_FIELDS = ("format", "document_marker", "doc_maxlen", "skiplist", "normalize", "dim")


class LateInteractionRetriever(Retriever):
    def __init__(self, model: str | list[str], format: str = "auto", dim: int | None = None, revision: str | None = None,
                 trust_remote_code: bool = False, precision: str = "fp32", storage: str = "fp16",
                 storage_seed: int = 0, residual_centroids: int | None = None, batch_tokens: int | None = None,
                 threads: int | None = None, merge_weights: list[float] | None = None, device: str = "auto",
                 shard_tokens: int = shards.DEFAULT_SHARD_TOKENS, index: str = "exact", ncells: int | None = None,
                 centroid_score_threshold: float | None = None, ndocs: int | None = None,
                 faiss_kind: str | None = None, nlist: int | None = None, pq_m: int | None = None,
                 pq_nbits: int | None = None, nprobe: int | None = None, hnsw_m: int | None = None,
                 ef_construction: int | None = None, ef_search: int | None = None, faiss_depth: int | None = None,
                 **encoder_settings: Any):
        # ``model`` may list several checkpoints of one architecture: their weight average
        # (uniform, or ``merge_weights``) is the model evaluated.
        if "skiplist" in encoder_settings:
            encoder_settings["skiplist"] = tuple(encoder_settings["skiplist"])
        self.checkpoint = load_checkpoint(model, format, encoder_settings, revision, trust_remote_code, merge_weights)
        self.explicit = set(encoder_settings)
        self.dim, self.precision, self.storage = dim, precision, storage
        # Vectors per shard of the document store: how the work is split, never what it computes.
        self.shard_tokens = shard_tokens
        # The index searched (harness/index/approximate.py): exact MaxSim, PLAID or FAISS.
        self.index_settings = IndexSettings(index, ncells, centroid_score_threshold, ndocs, faiss_kind, nlist, pq_m,
                                            pq_nbits, nprobe, hnsw_m, ef_construction, ef_search, faiss_depth)
        self._depth: int | None = None
        self._approximate = None
        self._check_values()
        self.codec = codec_for(storage, storage_seed, residual_centroids)
        # The encoded token store: float32 only for fp32 storage; every other kind derives from float16.
        self.storage_dtype = "float32" if storage == "fp32" else "float16"
        self.batch_tokens, self.threads = batch_tokens, threads
        # Resolved at first use: a re-run that finds its result skips the unit without importing torch.
        self._device_name, self._device = check_device_name(device), None
        if self.precision == "int8":
            check_int8_device(self._device_name)
        self._cost: dict[str, Any] = {}
        self._encoder = None
        self._store = None
        # (first document, token store, its compressed store or None) per shard, in corpus order.
        self._parts: list[tuple[int, Any, CompressedStore | None]] = []
        self._ids: list[str] = []
        self._tie_ranks = np.zeros(0, dtype=np.int64)
        self._documents: Documents | None = None

    def _check_values(self) -> None:
        """Values the encoder or the index would refuse only after encoding: refused now, with the range."""
        if self.precision not in PRECISIONS:
            raise ParameterError(f"precision {self.precision!r} is unknown; choose {', '.join(PRECISIONS[:-1])} "
                                 f"or {PRECISIONS[-1]}.",
                                 "precision")
        if self.storage not in STORAGE_KINDS:
            raise ParameterError(f"storage {self.storage!r} is unknown; choose one of {', '.join(STORAGE_KINDS)}.",
                                 "storage")
        shards.check_shard_tokens(self.shard_tokens)
        width = self.checkpoint.output_dim
        if self.dim is not None and (self.dim < 1 or (width is not None and self.dim > width)):
            valid = f"from 1 to {width}, the model's output dimension" if width else "at least 1"
            raise ParameterError(f"dim={self.dim} is outside the valid range: {valid} (null: the model's own).",
                                 "dim")
        self.index_settings.check(self.storage, self.dim or width)

    def set_depth(self, k: int) -> None:
        """The search depth, given before ``settings()``: an approximate index's defaults follow it,
        and settings that cannot give k documents are refused here, before any work."""
        self.index_settings.check_depth(k)
        self._depth = k

    @property
    def device(self) -> str:
        if self._device is None:
            from harness.devices import resolve_device

            self._device = resolve_device(self._device_name)
            self._cost["device"] = self._device
        return self._device

    @property
    def settings_used(self) -> EncoderSettings:
        return self.checkpoint.settings

    def set_max_length(self, query: int | None, document: int | None) -> None:
        # The suite's lengths replace the checkpoint's own, unless the retriever's params set them.
        changes = {}
        if query is not None and "query_maxlen" not in self.explicit:
            changes["query_maxlen"] = query
        if document is not None and "doc_maxlen" not in self.explicit:
            changes["doc_maxlen"] = document
        self.checkpoint.settings = replace(self.checkpoint.settings, **changes)

    def settings(self) -> dict[str, Any]:
        return {
            "model": self.checkpoint.identity,
            "encoder": self.checkpoint.settings.to_dict(),
            # How skiplist words become token ids: the document key has it, so the result's must too.
            "skiplist_rule": SKIPLIST_RULES[self.checkpoint.settings.format],
            "matryoshka_dim": self.dim,
            "precision": self.precision,
            **self._int8_scheme(),
            "storage_dtype": self.storage_dtype,
            "storage": self.storage,
            **({"storage_codec": self.codec.settings()} if self.codec else {}),
            "search": "exact MaxSim over all documents",
            # Only an approximate index adds a key: exact results keep the keys they had.
            **approximate_settings(self),
        }

    def _int8_scheme(self) -> dict[str, Any]:
        """int8's quantisation (encoders/quantize.py), beside ``precision`` in the card and the
        document key, so that results and stores of an earlier int8 scheme (none, or another) are
        never found under this one. fp32 and bf16 keep the keys they had."""
        return {"int8_scheme": INT8_SCHEME} if self.precision == "int8" else {}

    def _encoder_(self):
        if self._encoder is None:
            from harness.encoders.multivector import MultiVectorEncoder

            t = time.perf_counter()
            # A worker given shard after shard of one model loads it once (the last one is kept).
            key = sha256({"model": self.checkpoint.identity, "settings": self.checkpoint.settings.to_dict(),
                          "precision": self.precision, "threads": self.threads, "batch_tokens": self.batch_tokens,
                          "device": self.device})
            if key not in _LOADED:
                _LOADED.clear()
                _LOADED[key] = MultiVectorEncoder(self.checkpoint, self.precision, self.threads, self.batch_tokens,
                                                  self.device)
            self._encoder = _LOADED[key]
            # A worker's task start sets its share of the cores; this retriever's own count wins.
            self._encoder.torch.set_num_threads(self.threads or default_threads())
            self._cost["model_load_s"] = time.perf_counter() - t
            self._cost["cpu_kernels"] = self._encoder.cpu_kernels  # fused or eager (encoders/cpu_kernels.py)
        return self._encoder

    def document_key(self, documents: Documents | list[str], texts: list[str] | None = None) -> dict[str, Any]:
        documents = as_documents(documents, texts)
        encoder = self.checkpoint.settings.to_dict()
        return {
            "role": "document",
            "model": self.checkpoint.identity,
            "encoder": {k: encoder[k] for k in _DOC_FIELDS},
            # How skiplist words become token ids changed once (it now follows each format's own
            # code); stores encoded under the old rule must not be found under this key.
            "skiplist_rule": SKIPLIST_RULES[encoder["format"]],
            "precision": self.precision,
            **self._int8_scheme(),
            "dtype": self.storage_dtype,
            "corpus": documents.fingerprint(),
        }

    def __getstate__(self):
        """What a worker needs to encode or search a shard: the settings, not the loaded model, the
        corpus's ids or the open stores; the documents go as their cache file and rows."""
        return {**self.__dict__, "_encoder": None, "_store": None, "_parts": [], "_ids": [],
                "_tie_ranks": np.zeros(0, dtype=np.int64), "_cost": {}, "_approximate": None}

    @property
    def _step_gpus(self) -> float:
        """What a shard's step asks of a GPU from a distributed executor: one, unless told the CPU."""
        return 0.0 if self._device_name == "cpu" else 1.0

    def encode_span(self, first: int, stop: int, writer) -> Any:
        """The store of documents first..stop-1, read from the dataset in batches (the step of one
        shard, in this process or on a worker)."""
        encoder = self._encoder_()
        return encoder.encode_documents(self._documents.batches(encoder.chunk_documents, first, stop), writer,
                                        total=stop - first)

    def index(self, documents: Documents | list[str], texts: list[str] | None = None) -> None:
        documents = as_documents(documents, texts)
        self._documents = documents
        self._ids = documents.ids
        self._tie_ranks = tie_ranks(self._ids)
        self._cost["device"] = self.device
        key = self.document_key(documents)
        t = time.perf_counter()
        # A document stores at most doc_maxlen vectors: the plan needs no pass over the texts.
        self._store, hit = shards.open_or_encode(
            key, self.shard_tokens, len(documents), self.checkpoint.settings.doc_maxlen,
            self, dtype=self.storage_dtype, gpus=self._step_gpus)
        elapsed = time.perf_counter() - t
        self._cost.update(shards.worker_figures(shards.STEPS))
        if not hit:
            self._cost.update({"encode_documents_s": elapsed, "documents_per_s": len(documents) / elapsed,
                               "tokens_per_s": self._store.n_tokens / elapsed})
        if isinstance(self._store, shards.ShardedStore):
            spans = self._store.spans
            parts = [(shards.shard_key(key, span, len(spans)), span[0], shard)
                     for span, shard in zip(spans, self._store.shards)]
        else:
            parts = [(key, 0, self._store)]
        self._index_storage(parts, hit)
        prepare_approximate(self, parts)

    def _index_storage(self, parts: list[tuple[dict[str, Any], int, Any]], hit: bool) -> None:
        """The compressed store for ``storage`` (if any) of each shard, and the storage figures of
        the index. Each shard is compressed from its own vectors (a residual codec clusters each
        shard's own sample)."""
        dim = self.dim or self._store.dim
        self._parts = []
        index_bytes, hits, build_s, centroids = 0, 0, 0.0, 0
        for key, first, shard in parts:
            compressed = None
            if self.codec is not None:
                compressed, compressed_hit = cache.open_or_build_compressed(key, shard, dim, self.codec)
                index_bytes += compressed.nbytes()
                hits += compressed_hit
                build_s += compressed.build_seconds
                if "centroids" in compressed.arrays:
                    centroids += int(compressed.arrays["centroids"].shape[0])
            else:
                index_bytes += shard.nbytes(dim)
                if dim < shard.dim:  # searched as a float32 store already cut to dim (index/truncated.py)
                    shard, truncated_hit = truncated.open_or_build(key, shard, dim)
                    self._cost["truncated_cache"] = "hit" if truncated_hit else "miss"
            self._parts.append((first, shard, compressed))
        if self.codec is not None:
            self._cost.update({"compressed_cache": "hit" if hits == len(parts) else "miss", "codec_build_s": build_s})
            if centroids:
                self._cost["n_centroids"] = centroids
        # The reference every storage kind is compared with: float16 vectors at this dim, same offsets.
        self._fp16_bytes = fp16_bytes = self._store.n_tokens * dim * 2 + sum(shard.offsets.nbytes for _, shard, _ in self._parts)
        self._cost.update({
            "document_cache": "hit" if hit else "miss",
            "n_documents": self._store.n_docs,
            "n_tokens": self._store.n_tokens,
            "n_shards": len(parts),
            "dim": dim,
            "storage": self.storage,
            "storage_dtype": self.storage if self.codec else self.storage_dtype,
            "index_bytes": index_bytes,
            "bytes_per_document": index_bytes / max(1, self._store.n_docs),
            "compression_ratio": fp16_bytes / index_bytes,
        })

    def encode_queries(self, texts: list[str]):
        """Query token vectors and their scoring mask; latency measurements time this alone."""
        return self._encoder_().encode_queries(texts)

    def _queries(self, texts: list[str]):
        t = time.perf_counter()
        vectors, mask = self._encoder_().encode_queries(texts)
        self._cost["encode_queries_s"] = time.perf_counter() - t
        return vectors, mask

    def _compute_dtype(self):
        import torch

        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    @property
    def _compressed(self) -> CompressedStore | None:
        """The compressed store of a one-shard index."""
        return self._parts[0][2] if len(self._parts) == 1 else None

    def _searched(self, queries: np.ndarray, compressed: CompressedStore | None) -> tuple[np.ndarray, int | None]:
        """(queries, dim) for the kernel over one shard. A compressed store is already cut to ``dim``
        and decompresses the rows the kernel reads; the queries are cut to match."""
        if compressed is None:
            searched_dim = self._parts[0][1].dim if self._parts else queries.shape[-1]
            if searched_dim < queries.shape[-1]:  # a truncated store: queries cut as the kernel would
                return truncated.cut_queries(queries, searched_dim), None
            return queries, self.dim
        dim = compressed.dim
        if dim < queries.shape[-1]:
            queries = queries[..., :dim]
            queries = queries / np.maximum(np.linalg.norm(queries, axis=-1, keepdims=True), 1e-12)
        return queries, None

    @staticmethod
    def _shard_vectors(shard, compressed: CompressedStore | None):
        return (shard.vectors, shard.offsets) if compressed is None else (compressed.vectors, compressed.offsets)

    def search(self, ids: list[str], texts: list[str], k: int) -> Run:
        if self._approximate is not None:
            return search_approximate(self, ids, texts, k)
        vectors, mask = self._queries(texts)
        t = time.perf_counter()
        jobs = []
        for first, shard, compressed in self._parts:
            queries, dim = self._searched(vectors, compressed)
            jobs.append(shards.SearchJob(
                partial(_maxsim_search, queries, mask), shard if compressed is None else compressed, first,
                self._tie_ranks[first:first + shard.n_docs], k,
                {"dim": dim, "compute_dtype": self._compute_dtype(), "device": self._device_name}))
        scores, indices = shards.search_shards(jobs, k, self._tie_ranks, gpus=self._step_gpus)
        self._cost["search_s"] = time.perf_counter() - t
        doc_ids = self._ids
        return Run({qid: {doc_ids[j]: float(s) for j, s in zip(indices[i], scores[i])} for i, qid in enumerate(ids)})

    def rerank(self, ids: list[str], texts: list[str], candidates: dict[str, list[str]]) -> Run:
        from harness.kernels.maxsim import maxsim_rerank

        position = {d: i for i, d in enumerate(self._ids)}
        lists = [np.array([position[d] for d in candidates.get(q, []) if d in position], dtype=np.int64) for q in ids]
        vectors, mask = self._queries(texts)
        t = time.perf_counter()
        scores = [np.zeros(len(c), np.float32) for c in lists]
        for first, shard, compressed in self._parts:
            queries, dim = self._searched(vectors, compressed)
            doc_vectors, offsets = self._shard_vectors(shard, compressed)
            inside = [(c >= first) & (c < first + shard.n_docs) for c in lists]
            part = maxsim_rerank(queries, mask, doc_vectors, offsets, [c[m] - first for c, m in zip(lists, inside)],
                                 dim=dim, compute_dtype=self._compute_dtype(), device=self.device)
            for s, m, p in zip(scores, inside, part):
                s[m] = p
        self._cost["search_s"] = time.perf_counter() - t
        return Run({q: {self._ids[j]: float(s) for j, s in zip(lists[i], scores[i])} for i, q in enumerate(ids)})

    def cost(self) -> dict[str, Any]:
        return dict(self._cost)


def _maxsim_search(queries, mask, vectors, offsets, k, **kernel):
    """``maxsim_search`` with the queries first: a module-level function, so a search step pickles."""
    from harness.kernels.maxsim import maxsim_search

    if isinstance(kernel.get("device"), str):  # resolved where the step runs (a worker's own GPU)
        from harness.devices import resolve_device

        kernel["device"] = resolve_device(kernel["device"])
    return maxsim_search(queries, mask, vectors, offsets, k, **kernel)
