"""``TokenStore``: the token vectors of a corpus as one contiguous matrix plus offsets.

    <folder>/vectors.bin    (n_tokens, dim) row-major, float16 (or float32)
    <folder>/offsets.npy    int64, n_docs + 1: document i owns rows offsets[i]:offsets[i+1]
    <folder>/manifest.json  shape, dtype, key fields; written last

Offsets are fixed before any vector is written, so documents can be encoded in any order (length-
sorted batches) and written straight into their rows. A store is complete only when its manifest
exists and the vector file has exactly the size the manifest states; anything else is rebuilt.
A single-vector (dense) index is a store with one row per document.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VECTORS, OFFSETS, MANIFEST = "vectors.bin", "offsets.npy", "manifest.json"


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

    def nbytes(self, dim: int | None = None) -> int:
        """Bytes on disk of this store, or of the same store saved at a truncated ``dim``."""
        dim = dim or self.dim
        return self.n_tokens * dim * self.vectors.dtype.itemsize + self.offsets.nbytes

    @classmethod
    def open(cls, path: str | Path) -> TokenStore | None:
        """The store at ``path`` if it is complete, else None."""
        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            dtype = np.dtype(manifest["dtype"])
            n_tokens, dim = manifest["n_tokens"], manifest["dim"]
            if (path / VECTORS).stat().st_size != n_tokens * dim * dtype.itemsize:
                return None
            offsets = np.load(path / OFFSETS)
        except (OSError, ValueError, KeyError):
            return None
        if len(offsets) != manifest["n_docs"] + 1 or int(offsets[-1]) != n_tokens:
            return None
        vectors = np.memmap(path / VECTORS, dtype=dtype, mode="r", shape=(n_tokens, dim)) if n_tokens else np.zeros((0, dim), dtype)
        return cls(path, vectors, offsets, manifest)


class TokenStoreWriter:
    """Pre-allocates the store from per-document token counts; ``write(i, rows)`` fills document i;
    ``finish()`` flushes, writes the manifest and moves the store into place."""

    def __init__(self, path: str | Path, counts: np.ndarray, dim: int, dtype="float16", manifest: dict | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.parent / f".tmp-{self.path.name}-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()
        counts = np.asarray(counts, dtype=np.int64)
        if len(counts) and counts.min() < 1:
            raise ValueError("every document needs at least one vector")
        self.offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.offsets[1:])
        self.dim, self.dtype = dim, np.dtype(dtype)
        self.extra = manifest or {}
        n = int(self.offsets[-1])
        # Rows go to the file with positioned writes, not through a writable memory map: a mapped
        # page that was written stays in this process's resident set until the map is closed,
        # so a memory map would hold the whole store in memory by the end of the encoding.
        self._row_bytes = dim * self.dtype.itemsize
        self._file = open(self.tmp / VECTORS, "wb", buffering=0)
        self._file.truncate(n * self._row_bytes)
        self.written = np.zeros(len(counts), dtype=bool)

    def write(self, i: int, rows: np.ndarray) -> None:
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        if rows.shape != (end - start, self.dim):
            raise ValueError(f"document {i}: expected {(end - start, self.dim)} rows, got {rows.shape}")
        data = memoryview(np.ascontiguousarray(rows, dtype=self.dtype)).cast("B")
        self._file.seek(start * self._row_bytes)
        while data:
            data = data[self._file.write(data):]
        self.written[i] = True

    def finish(self) -> TokenStore:
        if not self.written.all():
            missing = np.flatnonzero(~self.written)[:5].tolist()
            raise ValueError(f"token store incomplete: documents {missing} were never written")
        os.fsync(self._file.fileno())
        self._file.close()
        np.save(self.tmp / OFFSETS, self.offsets)
        manifest = {**self.extra, "n_docs": len(self.offsets) - 1, "n_tokens": int(self.offsets[-1]),
                    "dim": self.dim, "dtype": self.dtype.name}
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if self.path.exists():  # an incomplete leftover, or a store another process just finished
            if TokenStore.open(self.path) is not None:
                shutil.rmtree(self.tmp)
                return TokenStore.open(self.path)
            shutil.rmtree(self.path)
        os.replace(self.tmp, self.path)
        return TokenStore.open(self.path)

    def abort(self) -> None:
        self._file.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
