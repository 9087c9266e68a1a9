"""Token-level encoding the way ColBERT does it.

Queries: [CLS] marker tokens... [SEP], then (query expansion) [MASK] up to query_maxlen; the
[MASK] positions are attended to only with ``attend_to_expansion``, but their vectors always
score. Documents: [CLS] marker tokens... [SEP] up to doc_maxlen; vectors of skiplist tokens
(punctuation) and padding are dropped. Every vector goes through the projection (if any) and is
L2-normalised. Batches are length-sorted to waste little compute on padding.

``device`` picks where the forward pass runs (``auto``: the first CUDA GPU if torch sees one, else
the CPU). On a GPU, documents' vectors are filtered and rounded to the store's dtype before they
are copied back, so the host receives only the bytes it stores. The device is a cost fact, not part
of the protocol: fp32 on a GPU computes the same products as on a CPU (TF32 stays off).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable

import numpy as np

from harness.encoders.checkpoint import Checkpoint
from harness.errors import UnknownNameError
from harness.index.token_store import TokenStore, TokenStoreWriter


class MultiVectorEncoder:
    def __init__(self, checkpoint: Checkpoint, precision: str = "fp32", threads: int | None = None,
                 batch_tokens: int | None = None, device: str = "auto"):
        import torch

        if precision not in ("fp32", "bf16"):
            raise UnknownNameError(f"Unknown precision {precision!r}; choose fp32 or bf16.")
        torch.set_num_threads(threads or os.cpu_count() or 1)
        self.torch = torch
        self.device = torch.device(resolve_device(device))
        self.settings = checkpoint.settings
        self.tokenizer, self.model = checkpoint.load_model()
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.model.to(device=self.device, dtype=self.dtype)
        self.projection = (None if checkpoint.projection is None
                           else checkpoint.projection.to(device=self.device, dtype=self.dtype))
        # Padded tokens per forward pass. On a CPU small batches keep each layer's activations
        # (at most 4096 x 1536 floats here) in cache and off fresh pages: 4,096 ran SciFact 15%
        # faster than 8,192 (bench/README.md). A GPU wants large ones.
        self.batch_tokens = batch_tokens or (4096 if self.device.type == "cpu" else 65536)
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
        """Padded batch -> (B, L, dim) float32 unit vectors, on the encoder's device."""
        length = max(len(s) for s in batch)
        input_ids = np.full((len(batch), length), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        attention = np.zeros((len(batch), length), dtype=np.int64)
        for i, (seq, att) in enumerate(zip(batch, attend)):
            input_ids[i, : len(seq)] = seq
            attention[i, : len(att)] = att
        return self._forward_padded(input_ids, attention)

    def _forward_padded(self, input_ids: np.ndarray, attention: np.ndarray):
        """(B, L) int64 token ids and attention mask -> (B, L, dim) float32 unit vectors, on the device."""
        torch = self.torch
        with torch.inference_mode():
            input_ids = torch.from_numpy(input_ids).to(self.device, non_blocking=True)
            attention = torch.from_numpy(attention).to(self.device, non_blocking=True)
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
            vectors = self._forward(ids[start:start + batch_size], attend[start:start + batch_size]).cpu().numpy()
            for j, seq in enumerate(scoring[start:start + batch_size]):
                out[start + j, : len(seq)] = vectors[j, : len(seq)]
                mask[start + j, : len(seq)] = seq
        return out, mask

    def document_inputs(self, texts: list[str]) -> tuple[list[list[int]], list[np.ndarray]]:
        """Token ids per document, and which of its positions are stored (not in the skiplist)."""
        ids, _, starts, keep = self._document_tokens(texts)
        return ids, (np.split(keep, starts[1:-1]) if ids else [])

    def _document_tokens(self, texts: list[str]):
        """(ids per document, all ids in one int64 array, each document's start plus the total,
        and per token whether it is stored)."""
        ids = self.tokenize(texts, self.settings.doc_maxlen, self.document_marker_id)
        flat, starts = _flatten(ids)
        keep = ~np.isin(flat, np.fromiter(self.skip_ids, dtype=np.int64, count=len(self.skip_ids)))
        return ids, flat, starts, keep

    def encode_documents(self, texts: list[str], writer: Callable[[np.ndarray, int], TokenStoreWriter]) -> TokenStore:
        """Encode into a token store; ``writer(counts, dim)`` makes the store's writer.

        Batches are built from one flat array of token ids (no per-document tensors). The stored
        rows of a batch are gathered and rounded on the device, then copied to the host while the
        next batch is computed (pinned memory on a GPU), and written to the store after that.
        """
        torch = self.torch
        _, flat, starts, keep = self._document_tokens(texts)
        lengths = np.diff(starts)
        counts = np.add.reduceat(keep, starts[:-1]).astype(np.int64) if lengths.size else np.zeros(0, np.int64)
        store = writer(counts, self.dim)
        store_dtype = torch.from_numpy(np.zeros(0, dtype=store.dtype)).dtype
        on_gpu = self.device.type == "cuda"
        pad = self.tokenizer.pad_token_id or 0
        pending = None
        try:
            order = np.argsort(lengths, kind="stable")
            for batch in _batches(order, lengths.tolist(), self.batch_tokens):
                batch = np.asarray(batch, dtype=np.int64)
                length = int(lengths[batch].max())
                positions = np.arange(length)
                inside = positions[None, :] < lengths[batch][:, None]
                index = np.where(inside, starts[batch][:, None] + positions[None, :], 0)
                input_ids = np.where(inside, flat[index], pad)
                vectors = self._forward_padded(input_ids, inside.astype(np.int64))
                # Flat positions (row j * length + token) of the stored tokens, in document order.
                stored = np.concatenate([j * length + np.flatnonzero(keep[starts[i]:starts[i + 1]])
                                         for j, i in enumerate(batch)])
                with torch.inference_mode():
                    rows = vectors.reshape(-1, self.dim).index_select(
                        0, torch.from_numpy(stored).to(self.device, non_blocking=True)).to(store_dtype)
                    if on_gpu:
                        host = torch.empty(rows.shape, dtype=store_dtype, pin_memory=True)
                        host.copy_(rows, non_blocking=True)
                        done = torch.cuda.Event()
                        done.record()
                        rows = (host, done)
                if pending is not None:
                    _write(store, *pending)
                pending = (batch, counts, rows)
            if pending is not None:
                _write(store, *pending)
            return store.finish()
        except BaseException:
            store.abort()
            raise


def _flatten(ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """All token ids in one int64 array, and the start of each sequence (plus the total at the end)."""
    lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
    starts = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(starts[-1]))
    return flat, starts


def _write(store: TokenStoreWriter, batch: np.ndarray, counts: np.ndarray, rows) -> None:
    """Write one batch's stored rows (concatenated in batch order) document by document."""
    if isinstance(rows, tuple):  # (pinned host tensor, event): wait for the copy from the GPU
        rows[1].synchronize()
        rows = rows[0]
    rows = rows.numpy()
    start = 0
    for i in batch:
        n = int(counts[i])
        store.write(int(i), rows[start:start + n])
        start += n


def check_device_name(device: str) -> str:
    """A device name's form, checked without importing torch (where it is, is checked at use)."""
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps|xpu(:\d+)?", device):
        raise UnknownNameError(f"Unknown device {device!r}; use auto, cpu, cuda or cuda:<n>.")
    return device


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; a named device must exist."""
    import torch

    check_device_name(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UnknownNameError(f"device {device!r} was asked for, but torch {torch.__version__} sees no CUDA GPU "
                               "(a CPU-only build, or no driver); use device: cpu or auto.")
    try:
        torch.device(device)
    except RuntimeError as e:
        raise UnknownNameError(f"Unknown device {device!r}; use auto, cpu, cuda or cuda:<n>.") from e
    return device


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
