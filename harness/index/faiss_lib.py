"""faiss, imported only by the code that uses it (residual k-means, FAISS end-to-end retrieval):
the harness runs without it, and a missing faiss is one message naming the extra that brings it."""

from __future__ import annotations

from harness.errors import MissingDependencyError


def require_faiss(purpose: str):
    """The faiss module, or MissingDependencyError naming ``purpose`` and the extra."""
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError(
            f"{purpose} needs faiss, which is not installed. Install the approximate extra with "
            "`pip install 'late-interaction-harness[approximate]'` (faiss-cpu; on a GPU machine faiss-gpu "
            "from conda also works), or use storage fp16, fp32 or int8 and `index: exact`, which need "
            "no faiss.") from None
    return faiss


def kmeans(points, k: int, iters: int, seed: int, points_per_centroid: int):
    """faiss k-means (L2, ``iters`` Lloyd iterations, seeded): (k, dim) float32 centroids. faiss
    samples at most ``points_per_centroid`` points per centroid (colbert-ai leaves faiss's 256),
    splits a large cluster into an empty one, and runs on GPU 0 when its build has GPUs.

    faiss hooks no progress callback, so the iterations run one ``train`` call each, the next
    starting from the last one's centroids: each call draws the same seeded sample and the split of
    empty clusters is seeded per iteration, so the centroids are bit for bit those of one call of
    ``iters`` iterations (tests/index/test_faiss_lib.py), and each iteration is a step of the bar."""
    import numpy as np

    from harness import progress

    faiss = require_faiss("residual compression's k-means (storage residual-<bits>)")
    x = np.ascontiguousarray(points, dtype=np.float32)
    centroids = None
    for _ in progress.counted(range(iters), f"k-means ({k:,} centroids)", iters, "iterations"):
        km = faiss.Kmeans(x.shape[1], k, niter=1, seed=seed, max_points_per_centroid=points_per_centroid,
                          min_points_per_centroid=1, gpu=faiss.get_num_gpus() > 0, verbose=False)
        km.train(x, init_centroids=centroids)
        centroids = np.array(km.centroids, dtype=np.float32).reshape(k, x.shape[1])
    return centroids
