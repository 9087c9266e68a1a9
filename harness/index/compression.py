"""Storage codecs for token vectors: what an index stores per token, and what it costs in bytes.

A storage kind names how a late-interaction index keeps its document vectors:

| kind | per token (dim d) | once per index |
| --- | --- | --- |
| ``fp32`` / ``fp16`` | 4d / 2d bytes (the token store itself, no codec) | - |
| ``int8`` | d int8 values + a float32 scale | - |
| ``residual-<b>`` | a centroid id (uint16; uint32 past 65,536) + d x b bits | centroids (float16), |
| | | bucket cutoffs and weights (float32) |

``ResidualCodec`` is ColBERTv2's residual compression (Santhanam et al., 2022; the colbert-ai code in
``colbert/indexing/collection_indexer.py`` and ``colbert/indexing/codecs/residual.py``):

- k-means over token vectors: ``2 ** floor(log2(16 * sqrt(n_embeddings)))`` centroids, 4 Lloyd
  iterations with L2 assignment (faiss ``Kmeans``, seed 123 there, the codec's seed here), then each
  centroid L2-normalised;
- a held-out 5% of the sample (at most 50,000 vectors) gives the residuals ``x - nearest centroid``,
  over all of their coordinates together: bucket cutoffs at the quantiles ``i / 2**b`` (i = 1 ..
  2**b - 1) and bucket weights (the value a bucket decodes to) at ``(i + 0.5) / 2**b`` (i = 0 ..
  2**b - 1), the same for every dimension;
- compress: the centroid of largest dot product, and each residual coordinate's bucket
  (``bucketize``: the number of cutoffs strictly below it), packed ``8 / b`` buckets to a byte;
- decompress: centroid + bucket weights, L2-normalised.

k-means is faiss's (``faiss.Kmeans``, harness/index/faiss_lib.py; on GPU where faiss has one), on
colbert-ai's sample: the tokens of ``16 * sqrt(120 * n_docs)`` documents (all of SciFact's), of which
faiss keeps at most ``points_per_centroid`` per centroid. colbert-ai leaves faiss's 256 there; the
default here is 32 (on a 2-core CPU a SciFact-sized k-means at 256 takes several times longer).
Centroids are stored as float16 (what a GPU-built colbert-ai index stores) and centroid ids at the
narrowest unsigned width (colbert-ai stores int32: 2 more bytes per token). An empty cluster is
split from a large one (faiss). Everything is seeded: the same input and settings give the same
bytes, so kinds that differ only in bits can share one clustering
(harness/index/compressed_store.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.index.faiss_lib import kmeans

STORAGE_KINDS = ("fp32", "fp16", "int8", "residual-1", "residual-2", "residual-4")
RESIDUAL_BITS = (1, 2, 4)  # a whole number of buckets per byte
# colbert-ai's sample for k-means: 16 * sqrt(typical doclen * documents) documents (_sample_pids).
COLBERT_TYPICAL_DOCLEN = 120
# Similarities per step of the nearest-centroid search (rows x centroids): 16M float32 = 64 MiB.
_ASSIGN_ELEMS = 1 << 24


class Int8Codec:
    """Symmetric int8 per token: scale = max |x| / 127, code = round(x / scale); decompress = code * scale.
    Rounding to the nearest code bounds each coordinate's error by scale / 2."""

    name = "int8"

    def __init__(self):
        self.tables: dict[str, np.ndarray] = {}  # nothing fitted, nothing stored once

    def settings(self) -> dict[str, Any]:
        return {"kind": "int8", "scale": "per token, float32"}

    def sample_size(self, n_tokens: int, n_docs: int | None = None) -> int:
        return 0  # nothing to fit

    def fit(self, sample: np.ndarray, n_embeddings: int | None = None) -> Int8Codec:
        return self

    def row_layout(self, dim: int) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """Per-token arrays: name -> (dtype, shape of one row)."""
        return {"codes": (np.dtype(np.int8), (dim,)), "scales": (np.dtype(np.float32), ())}

    def compress(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        x = np.asarray(vectors, dtype=np.float32)
        scales = (np.abs(x).max(axis=1) / np.float32(127)).astype(np.float32)
        safe = np.where(scales > 0, scales, np.float32(1))  # an all-zero vector codes to zeros
        codes = np.clip(np.rint(x / safe[:, None]), -127, 127).astype(np.int8)
        return {"codes": codes, "scales": scales}

    def decompress(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        return parts["codes"].astype(np.float32) * parts["scales"][:, None]

    def nbytes(self, n_tokens: int, dim: int) -> int:
        return n_tokens * (dim + 4)


class ResidualCodec:
    """ColBERTv2 residual compression at ``nbits`` bits per dimension (see the module docstring)."""

    def __init__(self, nbits: int, n_centroids: int | None = None, seed: int = 0, kmeans_iters: int = 4,
                 points_per_centroid: int = 32):
        if nbits not in RESIDUAL_BITS:
            raise ValueError(f"nbits must be 1, 2 or 4 (a whole number of buckets per byte), got {nbits}")
        if n_centroids is not None and n_centroids < 1:
            raise ValueError(f"n_centroids must be >= 1, got {n_centroids}")
        self.nbits, self.n_centroids, self.seed = nbits, n_centroids, seed
        self.kmeans_iters, self.points_per_centroid = kmeans_iters, points_per_centroid
        self.name = f"residual-{nbits}"
        self.tables: dict[str, np.ndarray] = {}

    def settings(self) -> dict[str, Any]:
        return {"kind": "residual", "nbits": self.nbits, "n_centroids": self.n_centroids, "seed": self.seed,
                "kmeans_iters": self.kmeans_iters, "points_per_centroid": self.points_per_centroid,
                # How the centroids are computed (stores built by the earlier torch loop differ).
                "kmeans": "faiss", "sample": "colbert-ai documents"}

    # -- fitting ---------------------------------------------------------------------------

    @staticmethod
    def default_centroids(n_embeddings: int) -> int:
        """colbert-ai's number of partitions: 2 ** floor(log2(16 * sqrt(n_embeddings)))."""
        return int(2 ** math.floor(math.log2(16 * math.sqrt(max(1, n_embeddings)))))

    def _planned_centroids(self, n_embeddings: int) -> int:
        return self.n_centroids or self.default_centroids(n_embeddings)

    @staticmethod
    def _heldout_size(n: int) -> int:
        return int(min(0.05 * n, 50_000))

    def sample_size(self, n_tokens: int, n_docs: int | None = None) -> int:
        """How many token vectors ``fit`` wants: colbert-ai's sample (the tokens of
        ``16 * sqrt(120 * n_docs)`` documents, here their share of all tokens), at most
        ``points_per_centroid`` per centroid for k-means plus the held-out 5%."""
        docs = min(n_docs, 1 + int(16 * math.sqrt(COLBERT_TYPICAL_DOCLEN * n_docs))) if n_docs else 1
        sampled = -(-n_tokens * docs // n_docs) if n_docs else n_tokens  # their tokens, rounded up
        train = self._planned_centroids(n_tokens) * self.points_per_centroid
        return min(n_tokens, sampled, math.ceil(train / 0.95) + 1)

    def fit(self, sample: np.ndarray, n_embeddings: int | None = None,
            centroids: np.ndarray | None = None) -> ResidualCodec:
        """Centroids and buckets from ``sample`` (rows: unit token vectors); ``n_embeddings`` (the
        corpus's token count, default the sample's) sets the number of centroids. ``centroids``
        from a codec whose settings differ only in ``nbits``, fitted on the same sample, skip
        k-means: they are exactly what it would compute (the seed draws the same held-out set first)."""
        x = np.asarray(sample, dtype=np.float32)
        n, dim = x.shape
        if (dim * self.nbits) % 8:
            raise ValueError(f"dim * nbits must be a multiple of 8, got dim={dim}, nbits={self.nbits}")
        rng = np.random.default_rng(self.seed)
        x = x[rng.permutation(n)]
        n_heldout = max(1, self._heldout_size(n))
        heldout, train = x[:n_heldout], x[n_heldout:]
        k = self._planned_centroids(n_embeddings or n)
        train = train[: k * self.points_per_centroid]
        if len(train) < k:  # too few vectors for that many centroids: the largest power of two that fits
            if len(train) < 1:
                raise ValueError(f"residual compression needs at least 2 sample vectors, got {n}")
            k = 2 ** int(math.floor(math.log2(len(train))))
        if centroids is None:
            centroids = kmeans(train, k, self.kmeans_iters, self.seed, self.points_per_centroid)
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
            centroids = centroids.astype(np.float16)  # as stored; compress and decompress use these values
        elif centroids.shape != (k, dim) or centroids.dtype != np.float16:
            raise ValueError(f"shared centroids must be float16 {(k, dim)}, got {centroids.dtype} {centroids.shape}")
        self.tables = {"centroids": centroids}
        self._centroids32 = centroids.astype(np.float32)
        residuals = heldout - centroids.astype(np.float32)[self._nearest(heldout)]
        levels = 2 ** self.nbits
        quantiles = np.arange(levels) / levels
        flat = residuals.ravel()
        self.tables["bucket_cutoffs"] = np.quantile(flat, quantiles[1:]).astype(np.float32)
        self.tables["bucket_weights"] = np.quantile(flat, quantiles + 0.5 / levels).astype(np.float32)
        self._prepare()
        return self

    def load_tables(self, tables: dict[str, np.ndarray]) -> ResidualCodec:
        self.tables = {name: np.asarray(tables[name]) for name in ("centroids", "bucket_cutoffs", "bucket_weights")}
        self._prepare()
        return self

    def _prepare(self) -> None:
        self._centroids32 = self.tables["centroids"].astype(np.float32)
        # Decoding table: byte value -> the 8 / nbits bucket weights it packs (high bits first),
        # colbert-ai's decompression_lookup_table with the weights already looked up.
        per_byte = 8 // self.nbits
        shifts = np.arange(per_byte - 1, -1, -1) * self.nbits
        buckets = (np.arange(256)[:, None] >> shifts) & (2 ** self.nbits - 1)
        self._byte_weights = self.tables["bucket_weights"][buckets]  # (256, per_byte) float32

    # -- compress / decompress -------------------------------------------------------------

    def _require_fit(self) -> None:
        if not self.tables:
            raise RuntimeError("ResidualCodec: fit() or load_tables() first")

    def _id_dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if len(self.tables["centroids"]) <= 2**16 else np.uint32)

    def row_layout(self, dim: int) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        self._require_fit()
        return {"centroid_ids": (self._id_dtype(), ()), "residuals": (np.dtype(np.uint8), (dim * self.nbits // 8,))}

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        """Centroid ids of ``vectors`` (the costly half of ``compress``: a matmul against every centroid)."""
        self._require_fit()
        return self._nearest(np.asarray(vectors, dtype=np.float32)).astype(self._id_dtype())

    def _nearest(self, x: np.ndarray) -> np.ndarray:
        """Index of the centroid of largest dot product (centroids are unit vectors)."""
        import torch  # lazy, like the retrievers: `harness list` stays fast

        out = np.empty(len(x), dtype=np.int64)
        centroids = torch.from_numpy(self._centroids32)
        step = max(1, _ASSIGN_ELEMS // len(centroids))
        with torch.inference_mode():
            for r0 in range(0, len(x), step):
                block = torch.from_numpy(np.ascontiguousarray(x[r0:r0 + step], dtype=np.float32))
                out[r0:r0 + len(block)] = (block @ centroids.t()).argmax(dim=1).numpy()
        return out

    def compress(self, vectors: np.ndarray, centroid_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Centroid ids (``assign``, unless given) and packed residual buckets of ``vectors``."""
        self._require_fit()
        x = np.asarray(vectors, dtype=np.float32)
        ids = (self.assign(x) if centroid_ids is None else np.asarray(centroid_ids)).astype(np.intp)
        residuals = x - self._centroids32[ids]
        buckets = np.searchsorted(self.tables["bucket_cutoffs"], residuals, side="left").astype(np.uint8)
        per_byte = 8 // self.nbits
        grouped = buckets.reshape(len(x), -1, per_byte)
        packed = np.zeros(grouped.shape[:2], dtype=np.uint8)
        for j in range(per_byte):  # first coordinate in the high bits
            packed |= grouped[:, :, j] << np.uint8((per_byte - 1 - j) * self.nbits)
        return {"centroid_ids": ids.astype(self._id_dtype()), "residuals": packed}

    def decompress(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        self._require_fit()
        ids, packed = np.asarray(parts["centroid_ids"]), np.asarray(parts["residuals"])
        out = self._centroids32[ids.astype(np.intp)]
        out += self._byte_weights[packed].reshape(len(packed), -1)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))
        return out

    def nbytes(self, n_tokens: int, dim: int) -> int:
        """Per token: centroid id + dim * nbits / 8 bytes; once: centroids (float16), cutoffs and
        weights (float32)."""
        self._require_fit()
        k = len(self.tables["centroids"])
        levels = 2 ** self.nbits
        return (n_tokens * (self._id_dtype().itemsize + dim * self.nbits // 8)
                + k * dim * 2 + (levels - 1) * 4 + levels * 4)


def codec_for(storage: str, seed: int = 0, n_centroids: int | None = None) -> Int8Codec | ResidualCodec | None:
    """The codec of a storage kind; None for fp32 and fp16 (the token store itself)."""
    if storage not in STORAGE_KINDS:
        raise ValueError(f"unknown storage {storage!r}; expected one of {', '.join(STORAGE_KINDS)}")
    if storage in ("fp32", "fp16"):
        return None
    if storage == "int8":
        return Int8Codec()
    return ResidualCodec(int(storage.split("-")[1]), n_centroids=n_centroids, seed=seed)
