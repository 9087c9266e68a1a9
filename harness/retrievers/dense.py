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
from functools import partial
from typing import Any

import numpy as np

from harness import atomic, integrity, locks
from harness.devices import check_device_name
from harness.encoders.checkpoint import model_identity, resolve_path
from harness.environment import versions
from harness.errors import CorruptFileError
from harness.executors import default_threads
from harness.hashing import sha256
from harness.data.corpus import Documents
from harness.encoders.batches import length_sorted_batches
from harness.index import shards
from harness.index.shards import check_shard_tokens
from harness.paths import harness_home
from harness.retrievers.base import Retriever, as_documents
from harness.runs import Run, tie_ranks

log = logging.getLogger(__name__)
_CHUNK = 4096  # documents tokenised at once (then batched by length)


class DenseRetriever(Retriever):
    def __init__(self, model: str, revision: str | None = None, batch_size: int = 64, threads: int | None = None,
                 max_length: int | None = None, query_prompt: str = "", document_prompt: str = "",
                 device: str = "auto", batch_tokens: int | None = None,
                 shard_tokens: int = shards.DEFAULT_SHARD_TOKENS):
        # batch_size caps the texts of a batch, batch_tokens its padded tokens (default: 4,096 on a
        # CPU, 65,536 on a GPU); shard_tokens the documents per shard of the store (one vector each).
        self.path, self.revision = resolve_path(model, revision)
        self.model_name, self.batch_size, self.threads = model, batch_size, threads
        self.batch_tokens = batch_tokens
        self.shard_tokens = check_shard_tokens(shard_tokens)
        self._documents: Documents | None = None
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
        """Embeddings of ``texts`` (the prompt before each), through the model's own modules
        (tokeniser, transformer, pooling, normalisation) in length-sorted batches of at most
        ``batch_tokens`` padded tokens (``batch_size`` texts at most), as token encoding does."""
        import torch

        model = self._st()
        out = None
        with torch.inference_mode():
            for start in range(0, len(texts), _CHUNK):
                features = model.preprocess([prompt + t for t in texts[start:start + _CHUNK]])
                lengths = features["attention_mask"].sum(dim=1).tolist()
                for batch in length_sorted_batches(lengths, self._batch_tokens(), self.batch_size):
                    longest = max(lengths[i] for i in batch)
                    index = torch.as_tensor(batch)
                    part = {name: value[index][:, :longest] if value.dim() == 2 else value[index]
                            for name, value in features.items() if isinstance(value, torch.Tensor)}
                    part = {name: value.to(model.device) for name, value in part.items()}
                    vectors = model(part)["sentence_embedding"].float().cpu().numpy()
                    if out is None:
                        out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                    out[start + index.numpy()] = vectors
        if out is None:
            return np.zeros((0, model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
        return out

    def _batch_tokens(self) -> int:
        return self.batch_tokens or (4096 if str(self.device).startswith("cpu") else 65536)

    def __getstate__(self):
        """What a worker needs to encode or search a shard: not the loaded model, the ids or the stores."""
        return {**self.__dict__, "_model": None, "_store": None, "_ids": [],
                "_tie_ranks": np.zeros(0, dtype=np.int64), "_cost": {}}

    def encode_span(self, first: int, stop: int, writer) -> Any:
        """The store of documents first..stop-1 (one row each), read from the dataset in batches."""
        out = None
        try:
            at = first
            for batch in self._documents.batches(_CHUNK, first, stop):
                vectors = self._encode(batch, self.document_prompt)
                ones = np.ones(len(batch), dtype=np.int64)
                if out is None:
                    out = writer(ones, vectors.shape[1])
                else:
                    out.extend(ones)
                out.write_span(at - first, at - first + len(batch), vectors)
                at += len(batch)
            if out is None:
                out = writer(np.zeros(0, dtype=np.int64), self._st().get_sentence_embedding_dimension())
            return out.finish()
        except BaseException:  # Ctrl-C or a full disk: no temporary left behind
            if out is not None:
                out.abort()
            raise

    def index(self, documents: Documents | list[str], texts: list[str] | None = None) -> None:
        documents = as_documents(documents, texts)
        self._documents = documents
        self._ids = documents.ids
        self._tie_ranks = tie_ranks(self._ids)
        key = {"role": "document", "kind": "dense", "model": self._identity(), "max_seq_length": self._st().max_seq_length,
               "prompt": self.document_prompt, "corpus": documents.fingerprint(), "dtype": "float32",
               # Pooling and normalisation are sentence-transformers' own code.
               "libraries": versions("sentence-transformers")}
        t = time.perf_counter()
        self._store, hit = shards.open_or_encode(key, self.shard_tokens, len(documents), 1, self, dtype="float32",
                                                 gpus=self._step_gpus)  # one vector a document
        elapsed = time.perf_counter() - t
        self._cost.update(shards.worker_figures(shards.STEPS))
        self._cost.update({"document_cache": "hit" if hit else "miss", "n_documents": self._store.n_docs,
                           "n_shards": len(getattr(self._store, "shards", [self._store])),
                           "dim": self._store.dim, "storage_dtype": "float32", "index_bytes": self._store.nbytes(),
                           "bytes_per_document": self._store.nbytes() / max(1, self._store.n_docs)})
        if not hit:
            self._cost.update({"encode_documents_s": elapsed, "documents_per_s": len(documents) / elapsed})

    @property
    def _step_gpus(self) -> float:
        return 0.0 if self.device == "cpu" else 1.0

    def _parts(self) -> list[tuple[int, Any]]:
        """(first document, store) of each shard, in corpus order."""
        if isinstance(self._store, shards.ShardedStore):
            return [(span[0], store) for span, store in zip(self._store.spans, self._store.shards)]
        return [(0, self._store)]

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
        queries = self._queries(texts)
        jobs = [shards.SearchJob(partial(_dot_search, queries), store, first,
                                 self._tie_ranks[first:first + store.n_docs], k, {}) for first, store in self._parts()]
        scores, found = shards.search_shards(jobs, k, self._tie_ranks, gpus=0)
        self._cost["search_s"] = time.perf_counter() - self._search_start
        return Run({q: {self._ids[j]: float(s) for j, s in zip(found[i], scores[i])} for i, q in enumerate(ids)})

    def rerank(self, ids, texts, candidates) -> Run:
        queries = self._queries(texts)
        position = {d: i for i, d in enumerate(self._ids)}
        run = {}
        for i, q in enumerate(ids):  # only each query's candidates: no queries x corpus matrix
            docs = [d for d in candidates.get(q, []) if d in position]
            rows = np.stack([self._store.doc(position[d])[0] for d in docs]).astype(np.float32) if docs else None
            run[q] = dict(zip(docs, (rows @ queries[i]).tolist())) if docs else {}
        self._cost["search_s"] = time.perf_counter() - self._search_start
        return Run(run)

    def cost(self) -> dict[str, Any]:
        return dict(self._cost)


def _dot_search(queries, vectors, offsets, k, tie_rank=None):
    """``dot_search`` in the shape a search step calls (one row per document: no offsets needed)."""
    from harness.kernels.dot import dot_search

    return dot_search(queries, vectors, k, tie_rank)
