"""Per-document maxima over consecutive rows of a (rows, columns) similarity matrix.

``np.maximum.reduceat`` along axis 0 calls its inner loop once per row (32 values a call for one
query), several times slower than the matmul that made the rows, and ``torch.segment_reduce`` is
not much better; a compiled loop (``jit.compiled``: numba, on first use) reads each row once.
"""

from __future__ import annotations

import numpy as np

from harness.kernels.jit import compiled


@compiled()
def _segment_max(sim, starts, ends, out):
    for d in range(starts.size):
        s, e = starts[d], ends[d]
        for c in range(sim.shape[1]):
            out[d, c] = sim[s, c]
        for r in range(s + 1, e):
            for c in range(sim.shape[1]):
                v = sim[r, c]
                if v > out[d, c]:
                    out[d, c] = v


def segment_max(sim: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(n, columns) float32: row d is the column-wise max of ``sim[starts[d]:ends[d]]`` (each
    segment non-empty). A max is exact, so the result does not depend on how rows are grouped."""
    out = np.empty((starts.size, sim.shape[1]), dtype=sim.dtype)
    if starts.size:
        _segment_max(sim, starts.astype(np.int64, copy=False), ends.astype(np.int64, copy=False), out)
    return out
