"""Late interaction (ColBERT-style): token vectors, exact MaxSim over the whole corpus.

One document encoding serves every Matryoshka dimension and every query-side setting: the token
store is cached under a key without them, and truncation (slice, re-normalise) happens at search.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from harness.encoders.checkpoint import EncoderSettings, load_checkpoint
from harness.index import cache
from harness.retrievers.base import Retriever
from harness.runs import Run

_DOC_FIELDS = ("format", "document_marker", "doc_maxlen", "skiplist", "normalize", "dim")


class LateInteractionRetriever(Retriever):
    def __init__(self, model: str, format: str = "auto", dim: int | None = None, revision: str | None = None,
                 trust_remote_code: bool = False, precision: str = "fp32", storage_dtype: str = "float16",
                 batch_tokens: int = 8192, threads: int | None = None, **encoder_settings: Any):
        if "skiplist" in encoder_settings:
            encoder_settings["skiplist"] = tuple(encoder_settings["skiplist"])
        self.checkpoint = load_checkpoint(model, format, encoder_settings, revision, trust_remote_code)
        self.explicit = set(encoder_settings)
        self.dim, self.precision, self.storage_dtype = dim, precision, storage_dtype
        self.batch_tokens, self.threads = batch_tokens, threads
        self._encoder = None
        self._store = None
        self._ids: list[str] = []
        self._cost: dict[str, Any] = {}
        if dim is not None and self.checkpoint.settings.dim is not None and dim > self.checkpoint.settings.dim:
            raise ValueError(f"dim={dim} exceeds the model's output dimension {self.checkpoint.settings.dim}")

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
            "matryoshka_dim": self.dim,
            "precision": self.precision,
            "storage_dtype": self.storage_dtype,
            "search": "exact MaxSim over all documents",
        }

    def _encoder_(self):
        if self._encoder is None:
            from harness.encoders.multivector import MultiVectorEncoder

            t = time.perf_counter()
            self._encoder = MultiVectorEncoder(self.checkpoint, self.precision, self.threads, self.batch_tokens)
            self._cost["model_load_s"] = time.perf_counter() - t
        return self._encoder

    def document_key(self, ids: list[str], texts: list[str]) -> dict[str, Any]:
        encoder = self.checkpoint.settings.to_dict()
        return {
            "role": "document",
            "model": self.checkpoint.identity,
            "encoder": {k: encoder[k] for k in _DOC_FIELDS},
            "precision": self.precision,
            "dtype": self.storage_dtype,
            "corpus": cache.corpus_fingerprint(ids, texts),
        }

    def index(self, ids: list[str], texts: list[str]) -> None:
        self._ids = list(ids)
        t = time.perf_counter()
        self._store, hit = cache.open_or_build(
            self.document_key(ids, texts), lambda writer: self._encoder_().encode_documents(texts, writer),
            dtype=self.storage_dtype)
        elapsed = time.perf_counter() - t
        dim = self.dim or self._store.dim
        self._cost.update({
            "document_cache": "hit" if hit else "miss",
            "n_documents": self._store.n_docs,
            "n_tokens": self._store.n_tokens,
            "dim": dim,
            "index_bytes": self._store.nbytes(dim),
            "bytes_per_document": self._store.nbytes(dim) / max(1, self._store.n_docs),
        })
        if not hit:
            self._cost.update({"encode_documents_s": elapsed, "documents_per_s": len(ids) / elapsed,
                               "tokens_per_s": self._store.n_tokens / elapsed})

    def _queries(self, texts: list[str]):
        t = time.perf_counter()
        vectors, mask = self._encoder_().encode_queries(texts)
        self._cost["encode_queries_s"] = time.perf_counter() - t
        return vectors, mask

    def _compute_dtype(self):
        import torch

        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    def search(self, ids: list[str], texts: list[str], k: int) -> Run:
        from harness.kernels.maxsim import maxsim_search

        vectors, mask = self._queries(texts)
        t = time.perf_counter()
        scores, indices = maxsim_search(vectors, mask, self._store.vectors, self._store.offsets, k, dim=self.dim,
                                        compute_dtype=self._compute_dtype())
        self._cost["search_s"] = time.perf_counter() - t
        doc_ids = self._ids
        return Run({qid: {doc_ids[j]: float(s) for j, s in zip(indices[i], scores[i])} for i, qid in enumerate(ids)})

    def rerank(self, ids: list[str], texts: list[str], candidates: dict[str, list[str]]) -> Run:
        from harness.kernels.maxsim import maxsim_rerank

        position = {d: i for i, d in enumerate(self._ids)}
        lists = [np.array([position[d] for d in candidates.get(q, []) if d in position], dtype=np.int64) for q in ids]
        vectors, mask = self._queries(texts)
        t = time.perf_counter()
        scores = maxsim_rerank(vectors, mask, self._store.vectors, self._store.offsets, lists, dim=self.dim,
                               compute_dtype=self._compute_dtype())
        self._cost["search_s"] = time.perf_counter() - t
        return Run({q: {self._ids[j]: float(s) for j, s in zip(lists[i], scores[i])} for i, q in enumerate(ids)})

    def cost(self) -> dict[str, Any]:
        return dict(self._cost)
