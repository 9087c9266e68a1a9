"""Dense single-vector baseline: sentence-transformers pooling, exact dot product.

Document embeddings are cached like token stores (one row per document), so a re-run encodes
nothing. The settings that go into the protocol card (module types, max_seq_length) are read off
the loaded model once and kept beside the caches, keyed by the model's identity (a hub revision,
or a local folder's files hash: weights, tokenizer, configs), the lengths asked for and the
sentence-transformers version: a re-run that finds its result skips the unit without importing
sentence-transformers (seconds) or loading the model.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from harness import atomic, integrity, locks
from harness.devices import check_device_name
from harness.encoders.checkpoint import model_identity, resolve_path
from harness.environment import versions
from harness.errors import CorruptFileError
from harness.executors import default_threads
from harness.hashing import sha256
from harness.index import cache
from harness.paths import harness_home
from harness.retrievers.base import Retriever
from harness.runs import Run, tie_ranks

log = logging.getLogger(__name__)


class DenseRetriever(Retriever):
    def __init__(self, model: str, revision: str | None = None, batch_size: int = 64, threads: int | None = None,
                 max_length: int | None = None, query_prompt: str = "", document_prompt: str = "",
                 device: str = "auto"):
        self.path, self.revision = resolve_path(model, revision)
        self.model_name, self.batch_size, self.threads = model, batch_size, threads
        self.max_length, self.explicit_length = max_length, max_length is not None
        self.query_prompt, self.document_prompt = query_prompt, document_prompt
        self._model = None
        self._model_identity: dict[str, Any] | None = None
        self._store = None
        self._ids: list[str] = []
        self._tie_ranks = np.zeros(0, dtype=np.int64)
        self.device = check_device_name(device)  # resolved when the model is loaded
        self._cost: dict[str, Any] = {}
        self._search_start = 0.0

    def set_max_length(self, query: int | None, document: int | None) -> None:
        if not self.explicit_length and document is not None:
            self.max_length = document

    def _identity(self) -> dict[str, Any]:
        if self._model_identity is None:  # hashed once: a local folder's files can be large
            self._model_identity = {"model": self.model_name, **model_identity(self.path, self.revision)}
        return self._model_identity

    def settings(self) -> dict[str, Any]:
        return {
            "model": self._identity(),
            **self._model_facts(),
            "prompts": {"query": self.query_prompt, "document": self.document_prompt},
            "similarity": "dot product",
        }

    def _model_facts(self) -> dict[str, Any]:
        """Module types and the effective max_seq_length, from the loaded model or from a record of it."""
        key = {"model": self._identity(), "max_length": self.max_length,
               "libraries": versions("sentence-transformers")}
        record = harness_home() / "model-facts" / f"{sha256(key)}.json"
        if record.exists():
            try:  # sealed: a record cut short or edited would put wrong settings into the card
                return integrity.unseal(record.read_text(encoding="utf-8"), record)
            except (CorruptFileError, OSError, UnicodeDecodeError) as e:
                log.warning("model facts damaged: %s; reading them off the model again", e)
        model = self._st()
        facts = {"modules": [type(m).__name__ for m in model], "max_seq_length": model.max_seq_length}
        record.parent.mkdir(parents=True, exist_ok=True)
        with locks.hold(record):  # marks the temporary as live for harness.atomic.sweep
            tmp = atomic.temporary(record)
            tmp.write_text(integrity.seal(facts), encoding="utf-8")
            os.replace(tmp, record)  # whole or absent, never half-written
        return facts

    def _st(self):
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            from harness.devices import resolve_device

            self.device = resolve_device(self.device)
            self._cost["device"] = self.device
            torch.set_num_threads(self.threads or default_threads())
            t = time.perf_counter()
            self._model = SentenceTransformer(str(self.path), device=self.device)
            if self.max_length is not None:
                # Never beyond what the model's position embeddings allow.
                self._model.max_seq_length = min(self.max_length, self._model.max_seq_length or self.max_length)
            self._cost["model_load_s"] = time.perf_counter() - t
        return self._model

    def _encode(self, texts: list[str], prompt: str) -> np.ndarray:
        return self._st().encode([prompt + t for t in texts], batch_size=self.batch_size, convert_to_numpy=True,
                                 show_progress_bar=False).astype(np.float32)

    def index(self, ids: list[str], texts: list[str]) -> None:
        self._ids = list(ids)
        self._tie_ranks = tie_ranks(self._ids)
        key = {"role": "document", "kind": "dense", "model": self._identity(), "max_seq_length": self._st().max_seq_length,
               "prompt": self.document_prompt, "corpus": cache.corpus_fingerprint(ids, texts), "dtype": "float32",
               # Pooling and normalisation are sentence-transformers' own code.
               "libraries": versions("sentence-transformers")}

        def build(writer):
            vectors = self._encode(texts, self.document_prompt)
            out = writer(np.ones(len(texts), dtype=np.int64), vectors.shape[1])
            try:
                out.write_span(0, len(texts), vectors)  # one row per document, all in one write
                return out.finish()
            except BaseException:  # Ctrl-C or a full disk: no temporary left behind
                out.abort()
                raise

        t = time.perf_counter()
        self._store, hit = cache.open_or_build(key, build, dtype="float32")
        elapsed = time.perf_counter() - t
        self._cost.update({"document_cache": "hit" if hit else "miss", "n_documents": self._store.n_docs,
                           "dim": self._store.dim, "storage_dtype": str(self._store.vectors.dtype),
                           "index_bytes": self._store.nbytes(),
                           "bytes_per_document": self._store.nbytes() / max(1, self._store.n_docs)})
        if not hit:
            self._cost.update({"encode_documents_s": elapsed, "documents_per_s": len(ids) / elapsed})

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors; latency measurements time this alone."""
        return self._encode(texts, self.query_prompt)

    def _queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors, timed apart from the search phase that follows."""
        t = time.perf_counter()
        queries = self.encode_queries(texts)
        self._cost["encode_queries_s"] = time.perf_counter() - t
        self._search_start = time.perf_counter()
        return queries

    def search(self, ids: list[str], texts: list[str], k: int) -> Run:
        from harness.kernels.dot import dot_search

        scores, found = dot_search(self._queries(texts), self._store.vectors, k, self._tie_ranks)
        self._cost["search_s"] = time.perf_counter() - self._search_start
        return Run({q: {self._ids[j]: float(s) for j, s in zip(found[i], scores[i])} for i, q in enumerate(ids)})

    def rerank(self, ids, texts, candidates) -> Run:
        queries = self._queries(texts)
        position = {d: i for i, d in enumerate(self._ids)}
        run = {}
        for i, q in enumerate(ids):  # only each query's candidates: no queries x corpus matrix
            docs = [d for d in candidates.get(q, []) if d in position]
            rows = np.asarray(self._store.vectors[[position[d] for d in docs]], dtype=np.float32)
            run[q] = dict(zip(docs, (rows @ queries[i]).tolist())) if docs else {}
        self._cost["search_s"] = time.perf_counter() - self._search_start
        return Run(run)

    def cost(self) -> dict[str, Any]:
        return dict(self._cost)
