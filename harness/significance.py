"""Paired significance over queries: a bootstrap confidence interval, a randomization test, Holm.

Every function takes two aligned arrays of one metric's per-query scores (baseline, candidate);
the query is the unit of resampling, as is usual in IR evaluation (Sakai 2006; Smucker, Allan and
Carterette 2007). Everything is seeded, so the same scores always give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A resampled mean that equals a threshold up to float rounding counts as equal, so a candidate
# that is exactly `tolerance` worse on every query is not a drop "beyond" the tolerance.
_EPS = 1e-12
# Bootstrap resamples are drawn in blocks of about this many query indices (bounded memory).
_BLOCK = 2_000_000


@dataclass(frozen=True)
class Bootstrap:
    """The paired bootstrap of ``mean(candidate - baseline)``: the observed delta, its
    percentile confidence interval, and the resampled deltas behind both."""

    delta: float
    low: float
    high: float
    confidence: float
    seed: int
    distribution: np.ndarray

    def p_below(self, threshold: float) -> float:
        """One-sided p-value for H1 ``delta < threshold`` against H0 ``delta >= threshold``: the
        share of resampled deltas at or above the threshold, counting the observed data as one
        more resample so that p is never 0. It is below alpha exactly when the one-sided
        (1 - alpha) upper confidence bound of the delta lies below the threshold."""
        at_or_above = int(np.count_nonzero(self.distribution >= threshold - _EPS))
        return (at_or_above + 1) / (self.distribution.size + 1)


def _paired(baseline, candidate) -> np.ndarray:
    a, b = np.asarray(baseline, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired scores need two non-empty 1-d arrays of equal length, got {a.shape} and {b.shape}")
    return b - a


def paired_bootstrap(baseline, candidate, resamples: int = 10_000, seed: int = 0,
                     confidence: float = 0.95) -> Bootstrap:
    """Resample queries with replacement ``resamples`` times; the interval is the percentile one."""
    diff = _paired(baseline, candidate)
    n = diff.size
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    rows = max(1, _BLOCK // n)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        means[start:stop] = diff[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Bootstrap(float(diff.mean()), float(low), float(high), confidence, seed, means)


def randomization_test(baseline, candidate, permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided paired randomization test (Fisher's; Smucker, Allan and Carterette 2007) of H0
    "the two systems are exchangeable on every query": each query's pair of scores is swapped at
    random, i.e. the sign of its difference flipped, and p is the share of assignments whose mean
    difference is at least as far from 0 as the observed one. All 2^n assignments are enumerated
    when that is at most ``permutations`` (an exact test); otherwise ``permutations`` random ones
    are drawn and the observed assignment counts as one more, so p is never 0.

    Not ranx's ``fisher_randomization_test``: it draws from numba's per-thread generators, and
    returns a different p-value on every call with the same seed. Not scipy's ``permutation_test``:
    the same test, some 30 times slower on 300 queries."""
    diff = _paired(baseline, candidate)
    n = diff.size
    observed = abs(diff.mean()) - _EPS
    if n <= 30 and 2**n <= permutations:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        return float(np.count_nonzero(np.abs(signs @ diff) / n >= observed) / 2**n)
    rng = np.random.default_rng(seed)
    extreme = 0
    rows = max(1, _BLOCK // n)
    for start in range(0, permutations, rows):
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(min(rows, permutations - start), n))
        extreme += int(np.count_nonzero(np.abs(signs @ diff) / n >= observed))
    return (extreme + 1) / (permutations + 1)


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (Holm 1979): sort ascending, multiply the i-th smallest
    (from 0) by m - i, make the sequence non-decreasing, cap at 1. Rejecting where the adjusted p
    is at most alpha controls the family-wise error rate at alpha."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = adjusted_sorted
    return adjusted
