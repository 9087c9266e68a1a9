"""Corpora that stay on disk: ids in memory, titles and texts read in batches.

A ``DocumentTable`` is where a source's document rows live: a Parquet file of the dataset cache
(read in batches, a row group at a time) or, for small data and tests, lists in memory. A
``Corpus`` is a table and the rows of it that loading kept (checks drop duplicates or empty
documents, a sample keeps a subset), in order. Only the ids are held, since runs and judgments
name documents by them (about 100 bytes a document: 3 GB for MIRACL's English 32.9M passages).

``Documents`` is what a retriever indexes: the corpus's ids and the texts joined from the suite's
fields, streamed in batches (``batches``), as one span (``texts``, e.g. a shard), and fingerprinted
batch by batch. It is plain data (a file path, an array of rows), so a worker elsewhere reads the
span it was given straight from the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

BATCH = 4096  # documents per batch read: a few MB of text, whatever the corpus's size
# The fingerprint hashes a document at a time: smaller batches cost nothing there, and a driver's
# peak memory (which the fingerprint pass sets) is 40 MB lower than at 4,096 with 1.5 KB texts.
FINGERPRINT_BATCH = 1024
COLUMNS = ("id", "title", "text")


class DocumentTable:
    """Document rows (``id``, ``title``, ``text``): a Parquet file, or lists in memory."""

    def __init__(self, path: Path | None = None, columns: dict[str, list[str]] | None = None):
        self.path, self._columns = (Path(path) if path else None), columns
        self._ids: list[str] | None = None
        self._groups: np.ndarray | None = None  # first row of each row group, and the total

    @classmethod
    def of(cls, rows: Sequence[tuple[str, str, str]]) -> DocumentTable:
        """A table in memory from (id, title, text) rows."""
        ids, titles, texts = (list(c) for c in zip(*rows)) if len(rows) else ([], [], [])
        return cls(columns={"id": ids, "title": titles, "text": texts})

    def __getstate__(self):  # a worker reads the file again; no need to ship the ids
        return {**self.__dict__, "_ids": None if self.path else self._ids}

    def _file(self):
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.path)

    def __len__(self) -> int:
        if self._columns is not None:
            return len(self._columns["id"])
        return int(self.row_groups()[-1])

    def ids(self) -> list[str]:
        if self._ids is None:
            if self._columns is not None:
                self._ids = self._columns["id"]
            else:  # a row group at a time: Arrow's buffers for one group, not the whole column
                file, ids = self._file(), []
                for group in range(file.metadata.num_row_groups):
                    ids.extend(file.read_row_group(group, columns=["id"]).column(0).to_pylist())
                _release_arrow_memory()
                self._ids = ids
        return self._ids

    def row_groups(self) -> np.ndarray:
        if self._groups is None:
            meta = self._file().metadata
            sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            self._groups = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        return self._groups

    def read(self, start: int, stop: int, columns: Sequence[str], size: int = BATCH) -> Iterator[tuple[int, dict]]:
        """(first row, {column: values}) for rows start..stop-1 in batches of at most ``size``; only
        the row groups holding them are read."""
        if self._columns is not None:
            for at in range(start, stop, size):
                end = min(stop, at + size)
                yield at, {c: self._columns[c][at:end] for c in columns}
            return
        if start >= stop:
            return
        pending: dict[str, list] = {c: [] for c in columns}
        at = start
        for part in self._slices(start, stop, columns, size):
            for c in columns:  # batches of ``size`` across row groups, as one reader gave them
                pending[c].extend(part.column(c).to_pylist())
            while len(pending[columns[0]]) >= size:
                yield at, {c: v[:size] for c, v in pending.items()}
                at += size
                pending = {c: v[size:] for c, v in pending.items()}
        if pending[columns[0]]:
            yield at, pending

    def _slices(self, start: int, stop: int, columns: Sequence[str], size: int):
        """Arrow record batches of rows start..stop-1 in order, a row group at a time.
        One reader a group, its memory handed back after: a reader over many groups reads ahead,
        and Arrow's allocator keeps what it freed, so the peak grew with the corpus."""
        groups = self.row_groups()
        first, last = int(np.searchsorted(groups, start, "right") - 1), int(np.searchsorted(groups, stop, "left"))
        file = self._file()
        for group in range(first, last):
            at = int(groups[group])
            for batch in file.iter_batches(batch_size=size, row_groups=[group], columns=list(columns)):
                end = at + batch.num_rows
                lo, hi = max(start, at), min(stop, end)
                if lo < hi:
                    yield batch.slice(lo - at, hi - lo)
                at = end
            _release_arrow_memory()


def _release_arrow_memory() -> None:
    """Give the memory Arrow's allocator keeps after freeing back to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


class Corpus:
    """Documents in a fixed order; the position is the document's index everywhere. ``rows``: the
    table's rows kept, ascending (None: all of them)."""

    def __init__(self, table: DocumentTable, rows: np.ndarray | None = None):
        self.table, self.rows = table, (None if rows is None else np.asarray(rows, dtype=np.int64))
        self._ids: list[str] | None = None

    @classmethod
    def from_lists(cls, ids: list[str], titles: list[str], texts: list[str]) -> Corpus:
        return cls(DocumentTable(columns={"id": list(ids), "title": list(titles), "text": list(texts)}))

    def __getstate__(self):
        """Kept rows travel as runs of consecutive rows: a corpus the checks dropped a few documents
        of is a few numbers to a worker, not 8 bytes a document for every shard it is given."""
        state = {**self.__dict__, "_ids": None}
        if self.rows is not None and len(self.rows):
            breaks = np.flatnonzero(np.diff(self.rows) != 1) + 1
            starts = self.rows[np.concatenate([[0], breaks])]
            lengths = np.diff(np.concatenate([[0], breaks, [len(self.rows)]]))
            state["rows"] = ("runs", starts, lengths)
        return state

    def __setstate__(self, state):
        rows = state["rows"]
        if isinstance(rows, tuple):
            _, starts, lengths = rows
            state["rows"] = (np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
                             + np.arange(int(lengths.sum()))).astype(np.int64)
        self.__dict__.update(state)

    def __len__(self) -> int:
        return len(self.table) if self.rows is None else len(self.rows)

    @property
    def ids(self) -> list[str]:
        if self._ids is None:
            ids = self.table.ids()
            self._ids = ids if self.rows is None else [ids[i] for i in self.rows]
        return self._ids

    def select(self, positions) -> Corpus:
        """The documents at ``positions`` (ascending) of this corpus."""
        positions = np.asarray(positions, dtype=np.int64)
        return Corpus(self.table, positions if self.rows is None else self.rows[positions])

    def read(self, columns: Sequence[str], first: int = 0, stop: int | None = None,
             size: int = BATCH) -> Iterator[tuple[int, dict]]:
        """(position of the batch's first document, {column: values}) for documents first..stop-1."""
        stop = len(self) if stop is None else stop
        if self.rows is None:
            yield from self.table.read(first, stop, columns, size)
            return
        if first >= stop:
            return
        wanted = self.rows[first:stop]
        # Runs of consecutive table rows are read together; dropped rows in between are skipped.
        at = first
        for lo, values in self.table.read(int(wanted[0]), int(wanted[-1]) + 1, columns, size):
            n = len(values[columns[0]])
            inside = wanted[np.searchsorted(wanted, lo):np.searchsorted(wanted, lo + n)] - lo
            if len(inside):
                yield at, {c: [v[i] for i in inside] for c, v in values.items()}
                at += len(inside)

    def column(self, name: str) -> list[str]:
        """One whole column (small corpora and tests: this holds it all)."""
        return [v for _, values in self.read([name]) for v in values[name]]

    @property
    def titles(self) -> list[str]:
        return self.column("title")

    @property
    def texts(self) -> list[str]:
        return self.column("text")

    def documents(self, fields: Sequence[str], separator: str) -> Documents:
        return Documents(self, tuple(fields), separator)

    def joined(self, fields: Sequence[str], separator: str) -> list[str]:
        """Every document's text built from the fields (small corpora: this holds them all)."""
        return self.documents(fields, separator).texts()


def join_fields(values: dict, fields: Sequence[str], separator: str) -> list[str]:
    """Texts built from the given fields; empty fields are skipped, not joined."""
    columns = [values[f] for f in fields]
    return [separator.join(part for part in parts if part) for parts in zip(*columns)]


class Documents:
    """What a retriever indexes: ids, and texts joined from ``fields`` read in batches."""

    def __init__(self, corpus: Corpus, fields: tuple[str, ...] = ("text",), separator: str = " "):
        self.corpus, self.fields, self.separator = corpus, fields, separator
        self._fingerprint: str | None = None

    @classmethod
    def from_lists(cls, ids: list[str], texts: list[str]) -> Documents:
        """Documents held in memory (tests, small corpora): the texts as given."""
        return cls(Corpus.from_lists(ids, [""] * len(ids), list(texts)))

    @property
    def ids(self) -> list[str]:
        return self.corpus.ids

    def __len__(self) -> int:
        return len(self.corpus)

    def batches(self, size: int = BATCH, first: int = 0, stop: int | None = None) -> Iterator[list[str]]:
        """The texts of documents first..stop-1, in order, at most ``size`` at a time (fewer where
        the rows a corpus kept skip some of the table's)."""
        for _, values in self.corpus.read(self.fields, first, stop, size):
            yield join_fields(values, self.fields, self.separator)

    def texts(self, first: int = 0, stop: int | None = None) -> list[str]:
        """The texts of documents first..stop-1 as one list (a shard's, or a small corpus's)."""
        return [t for batch in self.batches(BATCH, first, stop) for t in batch]

    def fingerprint(self) -> str:
        """SHA-256 of every (id, text) in order: what a document store's key names the corpus by."""
        if self._fingerprint is None:
            digest, ids, at = hashlib.sha256(), self.ids, 0
            for batch in self.batches(FINGERPRINT_BATCH):
                for doc_id, text in zip(ids[at:at + len(batch)], batch):
                    digest.update(doc_id.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")
                at += len(batch)
            self._fingerprint = digest.hexdigest()
        return self._fingerprint
