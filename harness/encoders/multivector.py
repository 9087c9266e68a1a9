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
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing, nullcontext

import numpy as np

from harness import progress
from harness.devices import resolve_device
from harness.encoders.batches import length_sorted_batches
from harness.encoders.checkpoint import Checkpoint
from harness.encoders.quantize import check_int8_device, quantize_linear_layers
from harness.errors import UnknownNameError
from harness.executors import default_threads
from harness.index.token_store import TokenStore, TokenStoreWriter


class MultiVectorEncoder:
    def __init__(self, checkpoint: Checkpoint, precision: str = "fp32", threads: int | None = None,
                 batch_tokens: int | None = None, device: str = "auto", chunk_tokens: int = 1 << 18,
                 cpu_kernels: str = "fused"):
        import torch

        from harness.encoders import cpu_kernels as kernels

        if precision not in ("fp32", "bf16", "int8"):
            raise UnknownNameError(f"Unknown precision {precision!r}; choose fp32, bf16 or int8.")
        if cpu_kernels not in kernels.CPU_KERNELS:
            raise UnknownNameError(f"Unknown cpu_kernels {cpu_kernels!r}; choose fused or eager.")
        torch.set_num_threads(threads or default_threads())
        self.torch = torch
        self.device = torch.device(resolve_device(device))
        if precision == "int8":
            check_int8_device(str(self.device), device)
        self.settings = checkpoint.settings
        self.tokenizer, self.model = checkpoint.load_model()
        self.precision = precision
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.model.to(device=self.device, dtype=self.dtype)
        # fp32 on a CPU: oneDNN's fused linear kernels and reused pages (cpu_kernels.py says why);
        # "eager" keeps the plain transformers forward. Which one ran is a cost fact, not protocol.
        # int8's linear layers are its own (quantize.py); "fused" keeps the pages for it too.
        self.cpu_kernels = ("fused" if cpu_kernels == "fused" and precision in ("fp32", "int8")
                            and self.device.type == "cpu" and kernels.fusable(self.model) else "eager")
        if precision == "int8":  # linear layers on int8 GEMMs; the rest stays float32
            self.model = quantize_linear_layers(self.model)
        elif self.cpu_kernels == "fused":
            kernels.fuse_linear_layers(self.model)
        self._pages_kept = kernels.pages_kept if self.cpu_kernels == "fused" else nullcontext
        self.projection = (None if checkpoint.projection is None
                           else checkpoint.projection.to(device=self.device, dtype=self.dtype))
        # Padded tokens per forward pass. On a CPU small batches keep each layer's activations
        # (at most 4096 x 1536 floats here) in cache and off fresh pages: 4,096 ran SciFact 15%
        # faster than 8,192 (bench/README.md). A GPU wants large ones.
        # int8's quantising passes are memory-bound: 1,024-token batches keep them in cache (its
        # forward passes 0.89x as long as at 4,096, bench/README.md).
        self.batch_tokens = batch_tokens or (65536 if self.device.type != "cpu" else 1024 if precision == "int8" else 4096)
        # Documents per chunk, so that a chunk's rows (its write buffer) stay within chunk_tokens.
        self.chunk_documents = max(1, chunk_tokens // self.settings.doc_maxlen)
        # Tokenise the next chunk on a thread while this one is encoded: on a GPU. On a CPU the
        # tokeniser's threads would only take cores from the forward pass.
        self.tokenize_ahead = self.device.type != "cpu"
        self._backends: dict[int, object] = {}
        self.query_marker_id = self._token_id(self.settings.query_marker)
        self.document_marker_id = self._token_id(self.settings.document_marker)
        self.skip_ids = skiplist_ids(self.tokenizer, self.settings.skiplist, self.settings.format)
        self.dim = checkpoint.projection.dim if checkpoint.projection is not None else self.model.config.hidden_size

    def _token_id(self, token: str | None) -> int | None:
        if token is None:
            return None
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise UnknownNameError(f"The marker token {token!r} is not in the tokenizer's vocabulary.")
        return int(token_id)

    def tokenize(self, texts: list[str], maxlen: int, marker_id: int | None) -> list[list[int]]:
        """Token ids per text: [CLS] (marker) ... [SEP], at most ``maxlen``."""
        ids = self._ids(texts, maxlen - (1 if marker_id is not None else 0))
        if marker_id is not None:
            ids = [seq[:1] + [marker_id] + seq[1:] for seq in ids]
        return ids

    def _ids(self, texts: list[str], budget: int) -> list[list[int]]:
        """Token ids per text with the tokenizer's special tokens, truncated to ``budget``."""
        backend = self._truncating_backend(budget)
        if backend is not None:
            return [e.ids for e in backend.encode_batch_fast(list(texts), add_special_tokens=True)]
        return self.tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=budget)["input_ids"]

    def _truncating_backend(self, budget: int):
        """The fast tokenizer's Rust tokenizer, truncating at ``budget`` as ``tokenizer(...)`` would,
        or None for a slow tokenizer. Called directly it gives the same ids without the per-text
        offsets and dicts that ``tokenizer(...)`` builds: half the tokenising time on a 16-core
        machine, where that Python work does not run in parallel."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None or not hasattr(backend, "encode_batch_fast"):
            return None
        if budget not in self._backends:
            copy = type(backend).from_str(backend.to_str())  # the loaded tokenizer keeps its settings
            copy.no_padding()
            copy.enable_truncation(budget, stride=0, strategy="longest_first",
                                   direction=getattr(self.tokenizer, "truncation_side", "right"))
            self._backends[budget] = copy
        return self._backends[budget]

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
        with torch.inference_mode(), self._attention_kernels():
            input_ids = torch.from_numpy(input_ids).to(self.device, non_blocking=True)
            attention = torch.from_numpy(attention).to(self.device, non_blocking=True)
            hidden = self.model(input_ids=input_ids, attention_mask=attention).last_hidden_state
            if self.projection is not None:
                hidden = self.projection(hidden)
            hidden = hidden.float()
            if self.settings.normalize:
                hidden = torch.nn.functional.normalize(hidden, p=2, dim=-1)
        return hidden

    def _attention_kernels(self):
        """On a GPU, attention without cuDNN's kernel: cuDNN builds a plan for every new batch
        shape, about 70 ms each on an H200 (SciFact's first encoding: 1.9 s of forward passes
        against 0.25 s), and length-sorted batches are nearly all new shapes."""
        if self.device.type != "cuda":
            return nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])

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
        flat, starts, keep = self._document_tokens(texts)
        if not len(texts):
            return [], []
        return [a.tolist() for a in np.split(flat, starts[1:-1])], np.split(keep, starts[1:-1])

    def _document_tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(all documents' ids in one int64 array, each document's start plus the total, and per
        token whether it is stored)."""
        marker = self.document_marker_id
        ids = self._ids(texts, self.settings.doc_maxlen - (1 if marker is not None else 0))
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        # The lists' ints chained into one array: 4.4 ms per 873-document chunk on the 2-core VM,
        # against 5.7 ms for one small array per document joined after.
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        if marker is not None:  # after [CLS]
            flat = np.insert(flat, np.cumsum(lengths) - lengths + 1, marker)
            lengths += 1
        starts = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        keep = ~np.isin(flat, np.fromiter(self.skip_ids, dtype=np.int64, count=len(self.skip_ids)))
        return flat, starts, keep

    def _document_chunks(self, texts) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """(index of the chunk's first document, flat ids, starts, stored-token mask) per chunk of
        ``chunk_documents`` documents, from a list of texts or from batches of them (a corpus read
        from its cache: only a chunk's texts are held); on a GPU the next chunk is tokenised on a
        thread while this one is encoded."""
        def tokens(item):
            start, chunk = item
            return start, *self._document_tokens(chunk)

        chunks = _rechunk(texts, self.chunk_documents)
        yield from _ahead(tokens, chunks) if self.tokenize_ahead else map(tokens, chunks)

    def encode_documents(self, texts, writer: Callable[[np.ndarray, int], TokenStoreWriter],
                         total: int | None = None) -> TokenStore:
        """Encode ``texts`` (a list, or batches of texts: then ``total`` says how many, for the
        progress shown) into a token store; ``writer(counts, dim)``
        makes the store's writer from the first chunk's row counts, and later chunks ``extend`` it.

        Batches are built from a chunk's flat array of token ids (no per-document tensors). Each
        batch's stored rows are rounded to the store's dtype and put in their documents' places
        in the chunk's buffer on the device; the full buffer is copied to the host (through
        pinned memory on a GPU) and written by the writing thread while the next chunk is computed.
        """
        store = None
        with ExitStack() as stack:
            stack.enter_context(self._pages_kept())
            behind = stack.enter_context(_WriteBehind())
            chunks = stack.enter_context(closing(self._document_chunks(texts)))
            count = len(texts) if total is None else total
            chunks = progress.counted(chunks, "encoding documents", count, "docs", size=lambda c: len(c[2]) - 1)
            try:
                for base, flat, starts, keep in chunks:
                    counts = np.add.reduceat(keep, starts[:-1]).astype(np.int64)
                    if store is None:
                        store = writer(counts, self.dim)
                        store_dtype = self.torch.from_numpy(np.zeros(0, dtype=store.dtype)).dtype
                    else:
                        behind.submit(store.extend, counts)
                    rows = self._encode_chunk(flat, starts, keep, counts, store_dtype)
                    behind.submit(_write_span, store, base, base + len(counts), rows)
                if store is None:  # no documents
                    store = writer(np.zeros(0, dtype=np.int64), self.dim)
                behind.drain()
                return store.finish()
            except BaseException:
                behind.close()  # queued writes finish or fail before the store is removed
                if store is not None:
                    store.abort()
                raise

    def _encode_chunk(self, flat: np.ndarray, starts: np.ndarray, keep: np.ndarray, counts: np.ndarray, dtype):
        """A chunk's stored rows in document order, in the store's dtype: a CPU tensor, or from a
        GPU (pinned host tensor, event marking the end of its copy)."""
        torch = self.torch
        lengths = np.diff(starts)
        first_row = np.zeros(len(counts), dtype=np.int64)
        np.cumsum(counts[:-1], out=first_row[1:])
        with torch.inference_mode():
            out = torch.empty((int(counts.sum()), self.dim), dtype=dtype, device=self.device)
            for batch in length_sorted_batches(lengths.tolist(), self.batch_tokens):
                batch = np.asarray(batch, dtype=np.int64)
                length = int(lengths[batch].max())
                positions = np.arange(length)
                inside = positions[None, :] < lengths[batch][:, None]
                index = np.where(inside, starts[batch][:, None] + positions[None, :], 0)
                input_ids = np.where(inside, flat[index], self.tokenizer.pad_token_id or 0)
                vectors = self._forward_padded(input_ids, inside.astype(np.int64))
                # Flat positions (row j * length + token) of the stored tokens, batch order, and
                # the rows they go to in the chunk's buffer.
                stored = np.flatnonzero(inside & keep[index])
                n = counts[batch]
                to = np.repeat(first_row[batch] - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
                out.index_copy_(0, torch.from_numpy(to).to(self.device, non_blocking=True),
                                vectors.reshape(-1, self.dim).index_select(
                                    0, torch.from_numpy(stored).to(self.device, non_blocking=True)).to(dtype))
            if self.device.type != "cuda":
                return out
            host = torch.empty(out.shape, dtype=dtype, pin_memory=True)
            host.copy_(out, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
            return host, done


# How each format's own code turns skiplist words into token ids. They agree on WordPiece
# vocabularies (BERT's punctuation marks are single tokens) and can differ on SentencePiece ones,
# where a mark alone encodes as the word-start piece plus the mark.
SKIPLIST_RULES = {
    "stanford": "first-piece",  # colbert-ai: tokenizer.encode(word, add_special_tokens=False)[0]
    "pylate": "vocabulary-entry",  # PyLate: tokenizer.convert_tokens_to_ids(word)
    "plain": "single-piece",  # the harness's own: words that encode to exactly one piece
}


def skiplist_ids(tokenizer, words, format: str) -> frozenset[int]:
    """Token ids whose document vectors are dropped, by the rule of ``format``'s reference code:
    Stanford ColBERT drops the first piece of each word encoded alone (with a SentencePiece
    tokenizer that can be the word-start piece itself); PyLate looks each word up as one
    vocabulary entry (a word not in the vocabulary gives the unknown token's id, as there); plain
    checkpoints drop the words that are exactly one piece."""
    rule = SKIPLIST_RULES[format]
    ids = set()
    for word in words:
        if rule == "vocabulary-entry":
            pieces = [tokenizer.convert_tokens_to_ids(word)]
        else:
            pieces = tokenizer.encode(word, add_special_tokens=False)
        if pieces and pieces[0] is not None and (rule != "single-piece" or len(pieces) == 1):
            ids.add(int(pieces[0]))
    return frozenset(ids)


class _WriteBehind:
    """Runs store calls on one thread, in the order given, at most ``depth`` calls behind the
    caller, which meanwhile computes the next batch. A call's error is raised to the caller."""

    def __init__(self, depth: int = 4):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self.pending: deque[Future] = deque()
        self.depth = depth

    def submit(self, fn: Callable, *args) -> None:
        while self.pending and (len(self.pending) >= self.depth or self.pending[0].done()):
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(fn, *args))

    def drain(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rechunk(texts, size: int) -> Iterator[tuple[int, list[str]]]:
    """(first index, texts) in chunks of ``size`` from a list of texts or from batches (lists) of
    any size, without holding more than a chunk and a batch."""
    if isinstance(texts, list) and (not texts or isinstance(texts[0], str)):
        for start in range(0, len(texts), size):
            yield start, texts[start:start + size]
        return
    pending: list[str] = []
    start = 0
    for batch in texts:
        pending.extend(batch)
        while len(pending) >= size:
            yield start, pending[:size]
            pending, start = pending[size:], start + size
    if pending:
        yield start, pending


def _ahead(fn: Callable, items) -> Iterator:
    """``fn(item)`` for each item, in order, the next one computed on a thread while the caller
    works on this one (the Rust tokenizer releases the GIL). Two such threads, tried on a 16-core
    GPU machine, were no faster than one. Closing the generator waits for the item in flight."""
    with ThreadPoolExecutor(1, thread_name_prefix="tokenizer") as pool:
        pending = None
        for item in items:
            following = pool.submit(fn, item)
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()


def _write_span(store: TokenStoreWriter, first: int, stop: int, rows) -> None:
    """Write the rows of documents first..stop-1, in document order."""
    if isinstance(rows, tuple):  # (pinned host tensor, event): wait for the copy from the GPU
        rows[1].synchronize()
        rows = rows[0]
    store.write_span(first, stop, rows.numpy())
