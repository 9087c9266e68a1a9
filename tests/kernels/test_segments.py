"""Per-document maxima over consecutive rows (``segments.segment_max``)."""

import numpy as np

from harness.kernels.segments import segment_max


def test_each_segments_max_is_numpys_over_the_same_rows():
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 30, 200)
    lengths[[0, 7, 199]] = [1, 500, 1]  # lone rows at both ends, one long segment
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    sim = rng.standard_normal((int(bounds[-1]), 37)).astype(np.float32)
    sim[bounds[5]:bounds[6]] = -np.inf  # a segment of -inf stays -inf
    out = segment_max(sim, bounds[:-1], bounds[1:])
    assert out.dtype == np.float32 and out.shape == (200, 37)
    np.testing.assert_array_equal(out, np.maximum.reduceat(sim, bounds[:-1], axis=0))


def test_segments_may_start_anywhere_and_skip_rows():
    sim = np.arange(40, dtype=np.float32).reshape(10, 4)[::-1].copy()  # rows in descending order
    out = segment_max(sim, np.array([2, 5, 9]), np.array([4, 6, 10]))
    np.testing.assert_array_equal(out, sim[[2, 5, 9]])
    assert segment_max(sim, np.zeros(0, np.int64), np.zeros(0, np.int64)).shape == (0, 4)
