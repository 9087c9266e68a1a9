"""Residual compression's k-means: the hand-written torch loop it replaced against faiss.Kmeans.

    .venv/bin/python bench/kmeans.py [--scale 0.25] [--dim 128]   # writes bench/results/kmeans.json

Synthetic unit vectors around 2,000 directions (token vectors of one model cluster like this),
``scale`` x SciFact's 1,307,434 document token vectors (MiniLM, doc_maxlen 300), and colbert-ai's
number of centroids for that many (16,384 at scale 1, 8,192 at 0.25). Each method runs 4 Lloyd
iterations on the same training sample of 32 points per centroid (the codec's default); faiss also
at colbert-ai's 256 per centroid (all the sample's vectors, at SciFact's size). ``s`` is the k-means
alone (one run each, in this order, same process), ``objective`` the mean squared distance of the
training points to their nearest centroid, which must not grow when the method changes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, write_json  # noqa: E402
from harness.index.compression import ResidualCodec  # noqa: E402
from harness.index.faiss_lib import kmeans  # noqa: E402

SCIFACT_TOKENS = 1_307_434
_ASSIGN_ELEMS = 1 << 24


def torch_loop(points: np.ndarray, k: int, iters: int, rng: np.random.Generator) -> np.ndarray:
    """The loop the codec used before faiss (harness/index/compression.py until this change)."""
    centroids = points[np.sort(rng.choice(len(points), k, replace=False))].astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    assign = torch.empty(len(points), dtype=torch.int64)
    step = max(1, _ASSIGN_ELEMS // k)
    with torch.inference_mode():
        for _ in range(iters):
            c = torch.from_numpy(centroids)
            neg_half_sq = -0.5 * (c * c).sum(dim=1)
            for r0 in range(0, len(points), step):
                block = x[r0:r0 + step]
                assign[r0:r0 + len(block)] = torch.addmm(neg_half_sq, block, c.t()).argmax(dim=1)
            sums = torch.zeros((k, x.shape[1]), dtype=torch.float32).index_add_(0, assign, x)
            counts = torch.bincount(assign, minlength=k)
            filled = counts > 0
            centroids[filled.numpy()] = (sums[filled] / counts[filled, None]).numpy()
    return centroids


def objective(points: np.ndarray, centroids: np.ndarray) -> float:
    x, c = torch.from_numpy(points), torch.from_numpy(centroids)
    best = torch.empty(len(x))
    step = max(1, _ASSIGN_ELEMS // len(c))
    with torch.inference_mode():
        for r0 in range(0, len(x), step):
            block = x[r0:r0 + step]
            best[r0:r0 + len(block)] = torch.cdist(block, c).min(dim=1).values ** 2
    return float(best.mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    n = int(SCIFACT_TOKENS * args.scale)
    k = ResidualCodec.default_centroids(n)
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((2000, args.dim)).astype(np.float32)
    x = centers[rng.integers(0, 2000, n)] + 0.6 * rng.standard_normal((n, args.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    train32 = x[:k * 32]
    rows = []
    for method, ppc in (("torch loop (before)", 32), ("faiss.Kmeans", 32), ("faiss.Kmeans", 256)):
        train = train32 if ppc == 32 else x[:k * ppc]
        t = time.perf_counter()
        c = torch_loop(train, k, 4, np.random.default_rng(0)) if method.startswith("torch") else kmeans(train, k, 4, 0, ppc)
        seconds = time.perf_counter() - t
        rows.append({"method": method, "points/centroid": ppc, "train points": len(train), "centroids": k,
                     "s": seconds, "objective": objective(train32, c)})
    base = rows[0]["s"]
    for r in rows:
        r["vs before"] = r["s"] / base
    print(f"{n:,} vectors x {args.dim}, {k:,} centroids, 4 iterations")
    print_table(rows, ["method", "points/centroid", "train points", "centroids", "s", "vs before", "objective"])
    print(write_json("kmeans", {"machine": machine(), "tokens": n, "dim": args.dim, "rows": rows}))


if __name__ == "__main__":
    main()
