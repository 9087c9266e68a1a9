"""``TokenStore``: the token vectors of a corpus as one contiguous matrix plus offsets.

    <folder>/vectors.bin    (n_tokens, dim) row-major, float16 (or float32)
    <folder>/offsets.npy    int64, n_docs + 1: document i owns rows offsets[i]:offsets[i+1]
    <folder>/manifest.json  shape, dtype, key fields, checksums of both files; written last

Offsets are fixed before any vector is written, so documents can be encoded in any order (length-
sorted batches) and written straight into their rows. A store is whole only when its manifest
exists, is sealed, and both files have the sizes and block checksums it records
(harness/integrity.py); ``load`` says what is wrong with any other, and the cache rebuilds it.
A single-vector (dense) index is a store with one row per document.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import atomic, integrity
from harness.errors import CorruptFileError

VECTORS, OFFSETS, MANIFEST = "vectors.bin", "offsets.npy", "manifest.json"
_datasync = getattr(os, "fdatasync", os.fsync)  # data, not metadata: macOS has only fsync


@dataclass
class TokenStore:
    path: Path
    vectors: np.ndarray  # (n_tokens, dim), memory-mapped read-only
    offsets: np.ndarray  # (n_docs + 1,)
    manifest: dict

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def doc(self, i: int) -> np.ndarray:
        return self.vectors[self.offsets[i]:self.offsets[i + 1]]

    def __reduce__(self):
        """Pickled by its path: a worker handed a store opens the files (already verified by the
        process that opened it first) instead of receiving its vectors."""
        return _reopen, (str(self.path),)

    def nbytes(self, dim: int | None = None) -> int:
        """Bytes on disk of this store, or of the same store saved at a truncated ``dim``."""
        dim = dim or self.dim
        return self.n_tokens * dim * self.vectors.dtype.itemsize + self.offsets.nbytes

    @classmethod
    def open(cls, path: str | Path) -> TokenStore | None:
        """The store at ``path`` if it is whole, else None."""
        try:
            return cls.load(path)
        except CorruptFileError:
            return None

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> TokenStore:
        """The store at ``path``; ``CorruptFileError`` names the file and what is wrong when it is
        absent, unfinished, damaged or without checksums. ``verify=False`` skips reading the files
        back (only for a store this process has just written and checksummed)."""
        path = Path(path)
        manifest = (integrity.read_manifest(path / MANIFEST, [VECTORS, OFFSETS]) if verify
                    else integrity.unseal((path / MANIFEST).read_text(encoding="utf-8"), path / MANIFEST))
        try:
            dtype = np.dtype(manifest["dtype"])
            n_tokens, dim = manifest["n_tokens"], manifest["dim"]
            offsets = np.load(path / OFFSETS)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CorruptFileError(path, f"cannot be read ({type(e).__name__}: {e})") from None
        if (path / VECTORS).stat().st_size != n_tokens * dim * dtype.itemsize:
            raise CorruptFileError(path / VECTORS, f"does not hold {n_tokens} x {dim} {dtype.name} values")
        if len(offsets) != manifest["n_docs"] + 1 or int(offsets[-1]) != n_tokens:
            raise CorruptFileError(path / OFFSETS, f"does not fit {manifest['n_docs']} documents of {n_tokens} rows")
        vectors = np.memmap(path / VECTORS, dtype=dtype, mode="r", shape=(n_tokens, dim)) if n_tokens else np.zeros((0, dim), dtype)
        return cls(path, vectors, offsets, manifest)


class TokenStoreWriter:
    """Fills a new store. ``counts`` (and each later ``extend(counts)``) adds documents with that many
    rows each, which fixes their place in the file; ``write(i, rows)`` fills document i, in any
    order once it was added; ``finish()`` flushes, writes the manifest and moves the store into
    place. One thread at a time.

    Documents can be added as they are tokenised, so an encoder streams a corpus in chunks and
    never holds all its token ids. Every ``sync_bytes`` written, the file is flushed to disk, so
    the final flush has only the rest left and the disk works while the encoder does.
    """

    def __init__(self, path: str | Path, counts, dim: int, dtype="float16", manifest: dict | None = None,
                 sync_bytes: int = 256 << 20):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = atomic.temporary(self.path)
        self.tmp.mkdir()
        self.dim, self.dtype = dim, np.dtype(dtype)
        self.extra = manifest or {}
        self.n_docs = 0
        self._offsets = np.zeros(1, dtype=np.int64)
        self._written = np.zeros(0, dtype=bool)
        # Rows go to the file with positioned writes, not through a writable memory map: a mapped
        # page that was written stays in this process's resident set until the map is closed,
        # so a memory map would hold the whole store in memory by the end of the encoding.
        self._row_bytes = dim * self.dtype.itemsize
        self._file = open(self.tmp / VECTORS, "wb", buffering=0)
        self._sync_bytes, self._unsynced = sync_bytes, 0
        self.extend(counts)

    @property
    def offsets(self) -> np.ndarray:
        return self._offsets[: self.n_docs + 1]

    def extend(self, counts) -> None:
        """Add documents after the ones already added, with ``counts[j]`` rows each."""
        counts = np.asarray(counts, dtype=np.int64)
        if len(counts) and counts.min() < 1:
            raise ValueError("every document needs at least one vector")
        n = self.n_docs + len(counts)
        if n + 1 > len(self._offsets):  # grow by doubling: adding chunk after chunk stays linear
            self._offsets = _grown(self._offsets, n + 1)
        if n > len(self._written):
            self._written = _grown(self._written, n)
        np.cumsum(counts, out=self._offsets[self.n_docs + 1: n + 1])
        self._offsets[self.n_docs + 1: n + 1] += self._offsets[self.n_docs]
        self.n_docs = n
        self._file.truncate(int(self._offsets[n]) * self._row_bytes)

    def write(self, i: int, rows: np.ndarray) -> None:
        """Fill document i."""
        self.write_span(i, i + 1, rows)

    def write_span(self, first: int, stop: int, rows: np.ndarray) -> None:
        """Fill documents first..stop-1 with their rows in document order, in one write (none for
        an empty span)."""
        if not 0 <= first <= stop <= self.n_docs:
            raise ValueError(f"document {stop - 1} was not added to the store (it has {self.n_docs})")
        start, end = int(self._offsets[first]), int(self._offsets[stop])
        if rows.shape != (end - start, self.dim):
            which = f"document {first}" if stop == first + 1 else f"documents {first}-{stop - 1}"
            raise ValueError(f"{which}: expected {(end - start, self.dim)} rows, got {rows.shape}")
        if first == stop:
            return
        data = memoryview(np.ascontiguousarray(rows, dtype=self.dtype)).cast("B")
        self._unsynced += len(data)
        position = start * self._row_bytes
        while data:
            done = os.pwrite(self._file.fileno(), data, position)
            data, position = data[done:], position + done
        self._written[first:stop] = True
        if self._unsynced >= self._sync_bytes:
            _datasync(self._file.fileno())
            self._unsynced = 0

    def finish(self) -> TokenStore:
        written = self._written[: self.n_docs]
        if not written.all():
            missing = np.flatnonzero(~written)[:5].tolist()
            raise ValueError(f"token store incomplete: documents {missing} were never written")
        os.fsync(self._file.fileno())
        self._file.close()
        offsets = self.offsets
        np.save(self.tmp / OFFSETS, offsets)
        manifest = {**self.extra, "n_docs": self.n_docs, "n_tokens": int(offsets[-1]),
                    "dim": self.dim, "dtype": self.dtype.name}
        # Checksummed from the file as written and synced: one read back, from the OS cache.
        integrity.write_manifest(self.tmp / MANIFEST, manifest, [VECTORS, OFFSETS])
        if self.path.exists():  # a damaged leftover, or a store another process just finished
            existing = TokenStore.open(self.path)
            if existing is not None:
                shutil.rmtree(self.tmp)
                return existing
            shutil.rmtree(self.path)
        os.replace(self.tmp, self.path)
        return TokenStore.load(self.path, verify=False)

    def abort(self) -> None:
        self._file.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _grown(array: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(max(n, 2 * len(array)), dtype=array.dtype)
    out[: len(array)] = array
    return out


def _reopen(path: str) -> TokenStore:
    return TokenStore.load(path, verify=False)
