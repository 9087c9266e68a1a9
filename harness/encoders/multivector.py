"""Token-level encoding the way ColBERT does it.

Queries: [CLS] marker tokens... [SEP], then (query expansion) [MASK] up to query_maxlen; the
[MASK] positions are attended to only with ``attend_to_expansion``, but their vectors always
score. Documents: [CLS] marker tokens... [SEP] up to doc_maxlen; vectors of skiplist tokens
(punctuation) and padding are dropped. Every vector goes through the projection (if any) and is
L2-normalised. Batches are length-sorted to waste little compute on padding.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from harness.encoders.checkpoint import Checkpoint
from harness.errors import UnknownNameError
from harness.index.token_store import TokenStore, TokenStoreWriter


class MultiVectorEncoder:
    def __init__(self, checkpoint: Checkpoint, precision: str = "fp32", threads: int | None = None,
                 batch_tokens: int = 8192):
        import torch

        if precision not in ("fp32", "bf16"):
            raise UnknownNameError(f"Unknown precision {precision!r}; choose fp32 or bf16.")
        torch.set_num_threads(threads or os.cpu_count() or 1)
        self.torch = torch
        self.settings = checkpoint.settings
        self.tokenizer, self.model = checkpoint.load_model()
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.model.to(self.dtype)
        self.projection = None if checkpoint.projection is None else checkpoint.projection.to(self.dtype)
        self.batch_tokens = batch_tokens
        self.query_marker_id = self._token_id(self.settings.query_marker)
        self.document_marker_id = self._token_id(self.settings.document_marker)
        self.skip_ids = self._skip_ids(self.settings.skiplist)
        self.dim = self.projection.shape[0] if self.projection is not None else self.model.config.hidden_size

    def _token_id(self, token: str | None) -> int | None:
        if token is None:
            return None
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise UnknownNameError(f"The marker token {token!r} is not in the tokenizer's vocabulary.")
        return int(token_id)

    def _skip_ids(self, words) -> frozenset[int]:
        ids = set()
        for word in words:
            pieces = self.tokenizer.encode(word, add_special_tokens=False)
            if len(pieces) == 1:
                ids.add(pieces[0])
        return frozenset(ids)

    def tokenize(self, texts: list[str], maxlen: int, marker_id: int | None) -> list[list[int]]:
        budget = maxlen - (1 if marker_id is not None else 0)
        ids = self.tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=budget)["input_ids"]
        if marker_id is not None:
            ids = [seq[:1] + [marker_id] + seq[1:] for seq in ids]
        return ids

    def _forward(self, batch: list[list[int]], attend: list[list[int]]):
        """Padded batch -> (B, L, dim) float32 unit vectors."""
        torch = self.torch
        length = max(len(s) for s in batch)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(batch), length), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), length), dtype=torch.long)
        for i, (seq, att) in enumerate(zip(batch, attend)):
            input_ids[i, : len(seq)] = torch.tensor(seq)
            attention[i, : len(att)] = torch.tensor(att)
        with torch.inference_mode():
            hidden = self.model(input_ids=input_ids, attention_mask=attention).last_hidden_state
            if self.projection is not None:
                hidden = hidden @ self.projection.T
            hidden = hidden.float()
            if self.settings.normalize:
                hidden = torch.nn.functional.normalize(hidden, p=2, dim=-1)
        return hidden

    def query_inputs(self, texts: list[str]) -> tuple[list[list[int]], list[list[int]], list[list[bool]]]:
        """Token ids, attention, and which positions score, per query."""
        s = self.settings
        ids = self.tokenize(texts, s.query_maxlen, self.query_marker_id)
        attend, scores = [], []
        for i, seq in enumerate(ids):
            n = len(seq)
            if s.query_expansion and n < s.query_maxlen:
                ids[i] = seq + [self.tokenizer.mask_token_id] * (s.query_maxlen - n)
                attend.append([1] * n + [1 if s.attend_to_expansion else 0] * (s.query_maxlen - n))
                scores.append([True] * s.query_maxlen)
            else:
                attend.append([1] * n)
                scores.append([True] * n)
        return ids, attend, scores

    def encode_queries(self, texts: list[str], batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """(n, L, dim) float32 vectors and (n, L) bool mask of the positions that score."""
        ids, attend, scoring = self.query_inputs(texts)
        length = max((len(s) for s in ids), default=1)
        out = np.zeros((len(ids), length, self.dim), dtype=np.float32)
        mask = np.zeros((len(ids), length), dtype=bool)
        for start in range(0, len(ids), batch_size):
            vectors = self._forward(ids[start:start + batch_size], attend[start:start + batch_size]).numpy()
            for j, seq in enumerate(scoring[start:start + batch_size]):
                out[start + j, : len(seq)] = vectors[j, : len(seq)]
                mask[start + j, : len(seq)] = seq
        return out, mask

    def document_inputs(self, texts: list[str]) -> tuple[list[list[int]], list[np.ndarray]]:
        ids = self.tokenize(texts, self.settings.doc_maxlen, self.document_marker_id)
        skip = self.skip_ids
        keep = [np.fromiter((t not in skip for t in seq), dtype=bool, count=len(seq)) for seq in ids]
        return ids, keep

    def encode_documents(self, texts: list[str], writer: Callable[[np.ndarray, int], TokenStoreWriter]) -> TokenStore:
        """Encode into a token store; ``writer(counts, dim)`` makes the store's writer."""
        ids, keep = self.document_inputs(texts)
        counts = np.array([int(k.sum()) for k in keep], dtype=np.int64)
        store = writer(counts, self.dim)
        try:
            order = np.argsort([len(s) for s in ids], kind="stable")
            for batch in _batches(order, [len(s) for s in ids], self.batch_tokens):
                vectors = self._forward([ids[i] for i in batch], [[1] * len(ids[i]) for i in batch]).numpy()
                for j, i in enumerate(batch):
                    store.write(i, vectors[j, : len(ids[i])][keep[i]].astype(store.dtype))
            return store.finish()
        except BaseException:
            store.abort()
            raise


def _batches(order: np.ndarray, lengths: list[int], budget: int):
    """Consecutive slices of a length-sorted order whose padded size stays within ``budget`` tokens."""
    batch: list[int] = []
    for i in order:
        longest = max(lengths[i], lengths[batch[-1]] if batch else 0)
        if batch and longest * (len(batch) + 1) > budget:
            yield batch
            batch = []
        batch.append(int(i))
    if batch:
        yield batch
