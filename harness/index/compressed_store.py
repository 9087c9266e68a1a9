"""``CompressedStore``: a token store at one Matryoshka dimension, kept through a storage codec.

    <folder>/<array>.bin    raw arrays, no header: the codec's per-token arrays (int8: codes,
                            scales; residual: centroid_ids, residuals), its tables (centroids,
                            bucket_cutoffs, bucket_weights) and offsets (int64, n_docs + 1)
    <folder>/manifest.json  codec settings, dtype and shape of every array, seconds, checksums of
                            every array file; written last

It is derived from a float16 (or float32) ``TokenStore`` without encoding anything: vectors are cut
to their first ``dim`` components and re-normalised, then compressed, a chunk at a time. As with
token stores, a store is whole only when its sealed manifest exists and every file has the size and
block checksums it records (harness/integrity.py); it is written under a temporary name and
renamed into place. The files hold no
headers, so the bytes on disk are exactly ``nbytes()``.

Residual stores that differ only in bits per dimension share their clustering (k-means centroids and
every token's centroid id: the costly part). A build given such a sibling copies them instead of
recomputing them, bit for bit the same, and records the sibling's clustering seconds, so
``build_seconds`` is what the store costs built alone whichever kind a sweep built first.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness import atomic, integrity
from harness.errors import CorruptFileError
from harness.index.compression import Int8Codec, ResidualCodec
from harness.index.token_store import TokenStore

MANIFEST = "manifest.json"
# Token rows compressed per step while building (float32 working copies of about 32 MiB at d=128).
_BUILD_ROWS = 65536


def truncate(rows: np.ndarray, dim: int) -> np.ndarray:
    """float32 first ``dim`` components, re-normalised (the Matryoshka cut the kernel also makes)."""
    x = np.asarray(rows[:, :dim], dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))


def codec_from_settings(settings: dict[str, Any]) -> Int8Codec | ResidualCodec:
    if settings["kind"] == "int8":
        return Int8Codec()
    return ResidualCodec(settings["nbits"], settings["n_centroids"], settings["seed"], settings["kmeans_iters"],
                         settings["points_per_centroid"])


class DecompressedRows:
    """The store's vectors as a read-only (n_tokens, dim) float32 array-like: indexing it (a slice or
    an index array of rows, optionally with a column slice) decompresses just those rows. The MaxSim
    kernel reads documents a chunk at a time, so memory stays at the compressed size plus a chunk."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, store: CompressedStore):
        self.store = store
        self.shape = (store.n_tokens, store.dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        cols = slice(None)
        if isinstance(key, tuple):
            key, cols = key
        single = isinstance(key, (int, np.integer))
        rows = np.array([key]) if single else key
        out = self.store.decompress_rows(rows)
        out = out[:, cols] if cols != slice(None) else out
        return out[0] if single else out


class CompressedStore:
    def __init__(self, path: Path, manifest: dict, arrays: dict[str, np.ndarray]):
        self.path, self.manifest, self.arrays = path, manifest, arrays
        self.codec = codec_from_settings(manifest["codec"])
        if manifest["tables"]:
            self.codec.load_tables({n: arrays[n] for n in manifest["tables"]})
        self.offsets = np.asarray(arrays["offsets"])
        self.vectors = DecompressedRows(self)

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        return int(self.manifest["n_tokens"])

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def build_seconds(self) -> float:
        """Seconds to build this store alone: its own build, plus a shared clustering's seconds."""
        reused = self.manifest.get("clustering_from") is not None
        return float(self.manifest["build_s"]) + (float(self.manifest["clustering_s"]) if reused else 0.0)

    def nbytes(self) -> int:
        """Bytes of every array the store keeps: per-token codes, codec tables and offsets."""
        return sum(a.nbytes for a in self.arrays.values())

    def decompress_rows(self, rows) -> np.ndarray:
        return self.codec.decompress({n: np.asarray(self.arrays[n][rows]) for n in self.manifest["per_token"]})

    def doc(self, i: int) -> np.ndarray:
        return self.vectors[int(self.offsets[i]):int(self.offsets[i + 1])]

    def __reduce__(self):
        """Pickled by its path (a worker opens and verifies the files itself)."""
        return type(self).load, (str(self.path),)

    @classmethod
    def open(cls, path: str | Path) -> CompressedStore | None:
        """The store at ``path`` if it is whole, else None."""
        try:
            return cls.load(path)
        except CorruptFileError:
            return None

    @classmethod
    def load(cls, path: str | Path) -> CompressedStore:
        """The store at ``path``; ``CorruptFileError`` names the file and what is wrong when it is
        absent, unfinished, damaged or without checksums."""
        path = Path(path)
        manifest = integrity.read_manifest(path / MANIFEST)
        try:
            arrays = {}
            for name, spec in manifest["arrays"].items():
                dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
                file = path / f"{name}.bin"
                if name + ".bin" not in manifest[integrity.FILES]:
                    raise CorruptFileError(path / MANIFEST, f"lists no checksum for {file.name}")
                if file.stat().st_size != dtype.itemsize * int(np.prod(shape)):
                    raise CorruptFileError(file, f"does not hold {shape} {dtype.name} values")
                arrays[name] = (np.memmap(file, dtype=dtype, mode="r", shape=shape) if np.prod(shape)
                                else np.zeros(shape, dtype))
            store = cls(path, manifest, arrays)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CorruptFileError(path, f"cannot be read ({type(e).__name__}: {e})") from None
        if store.n_docs != manifest["n_docs"] or int(store.offsets[-1]) != store.n_tokens:
            raise CorruptFileError(path / "offsets.bin", f"does not fit {manifest['n_docs']} documents")
        return store

    @classmethod
    def build(cls, path: str | Path, source: TokenStore, dim: int, codec: Int8Codec | ResidualCodec,
              manifest: dict | None = None, sample_seed: int = 0,
              clustering: CompressedStore | None = None) -> CompressedStore:
        """Fit ``codec`` on a seeded sample of ``source``'s tokens cut to ``dim``, compress every token,
        and write the store at ``path`` (atomically: a temporary folder, manifest last, rename).
        ``clustering``: a residual store of the same source, dim and clustering settings, whose
        centroids and centroid ids are taken instead of computed."""
        path = Path(path)
        if not 1 <= dim <= source.dim:
            raise ValueError(f"dim must be in 1..{source.dim}, got {dim}")
        start = time.perf_counter()
        n = source.n_tokens
        residual = isinstance(codec, ResidualCodec)
        shared = clustering is not None and residual
        clustering_s = clustering.manifest["clustering_s"] if shared else 0.0
        size = codec.sample_size(n, source.n_docs)
        if size:  # sorted rows: the memmap is read front to back
            rows = np.sort(np.random.default_rng(sample_seed).choice(n, size=size, replace=False))
            sample = truncate(source.vectors[rows], dim)
            t = time.perf_counter()
            codec.fit(sample, n_embeddings=n,
                      centroids=np.asarray(clustering.arrays["centroids"]) if shared else None)
            clustering_s += 0.0 if shared else time.perf_counter() - t
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = atomic.temporary(path)
        tmp.mkdir()
        try:
            layout = codec.row_layout(dim)
            per_token = {name: np.memmap(tmp / f"{name}.bin", dtype=dtype, mode="w+", shape=(n, *shape))
                         for name, (dtype, shape) in layout.items()} if n else {}
            for r0 in range(0, n, _BUILD_ROWS):
                r1 = min(n, r0 + _BUILD_ROWS)
                x = truncate(source.vectors[r0:r1], dim)
                if not residual:
                    parts = codec.compress(x)
                elif shared:
                    parts = codec.compress(x, np.asarray(clustering.arrays["centroid_ids"][r0:r1]))
                else:
                    t = time.perf_counter()
                    ids = codec.assign(x)
                    clustering_s += time.perf_counter() - t
                    parts = codec.compress(x, ids)
                for name, part in parts.items():
                    per_token[name][r0:r1] = part
            arrays: dict[str, dict] = {}
            for name, (dtype, shape) in layout.items():
                if n:
                    per_token[name].flush()
                else:
                    (tmp / f"{name}.bin").touch()
                arrays[name] = {"dtype": dtype.name, "shape": [n, *shape]}
            for name, table in {**codec.tables, "offsets": np.asarray(source.offsets, dtype=np.int64)}.items():
                table = np.ascontiguousarray(table)
                table.tofile(tmp / f"{name}.bin")
                arrays[name] = {"dtype": table.dtype.name, "shape": list(table.shape)}
            del per_token
            full = {**(manifest or {}), "codec": codec.settings(), "storage": codec.name, "dim": dim,
                    "n_docs": source.n_docs, "n_tokens": n, "arrays": arrays, "per_token": list(layout),
                    "tables": list(codec.tables), "sample_seed": sample_seed,
                    "clustering_s": clustering_s,
                    "clustering_from": clustering.manifest["storage"] if shared else None,
                    "build_s": time.perf_counter() - start}
            integrity.write_manifest(tmp / MANIFEST, full, [f"{name}.bin" for name in arrays])
            if path.exists():  # a damaged leftover, or a store another process just finished
                existing = cls.open(path)
                if existing is not None:
                    shutil.rmtree(tmp)
                    return existing
                shutil.rmtree(path)
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls.load(path)
