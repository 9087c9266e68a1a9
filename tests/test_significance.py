"""Paired bootstrap, randomization test and Holm-Bonferroni on synthetic paired scores."""

import numpy as np
import pytest

from harness.significance import holm, paired_bootstrap, randomization_test


def shifted(n: int, shift: float, noise: float, seed: int):
    rng = np.random.default_rng(seed)
    baseline = rng.uniform(0.2, 0.8, size=n)
    return baseline, baseline + shift + rng.normal(0.0, noise, size=n)


def test_bootstrap_interval_covers_a_known_shift():
    baseline, candidate = shifted(400, -0.03, 0.05, seed=1)
    boot = paired_bootstrap(baseline, candidate, resamples=10_000, seed=0)
    assert boot.delta == pytest.approx(np.mean(candidate - baseline), abs=1e-15)
    assert boot.low < -0.03 < boot.high
    # The standard error of a mean of 400 N(0, 0.05) differences is 0.0025: a 95% interval is ~0.0098 wide.
    assert boot.high - boot.low == pytest.approx(2 * 1.96 * 0.05 / np.sqrt(400), rel=0.15)
    assert boot.distribution.shape == (10_000,)


def test_bootstrap_intervals_have_their_nominal_coverage():
    """Over 200 synthetic test collections with a true shift of +0.02, about 95% of the intervals
    contain it (a binomial 95% band for 200 draws is 0.92-0.98)."""
    covered = 0
    for i in range(200):
        baseline, candidate = shifted(100, 0.02, 0.1, seed=100 + i)
        boot = paired_bootstrap(baseline, candidate, resamples=2_000, seed=i)
        covered += boot.low <= 0.02 <= boot.high
    assert 0.90 <= covered / 200 <= 0.99


def test_constant_difference_has_a_zero_width_interval():
    boot = paired_bootstrap([0.5, 0.25, 0.75], [0.52, 0.27, 0.77], resamples=1_000)
    assert boot.low == pytest.approx(0.02) and boot.high == pytest.approx(0.02) and boot.delta == pytest.approx(0.02)


def test_one_sided_p_against_a_tolerance():
    baseline, candidate = shifted(300, -0.05, 0.05, seed=2)
    boot = paired_bootstrap(baseline, candidate, resamples=10_000)
    # Every resampled delta is far below -0.005: only the observed data itself counts.
    assert boot.p_below(-0.005) == pytest.approx(1 / 10_001)
    # Against -0.1 (a drop of 0.1 or more), no resample gets there: p is 1.
    assert boot.p_below(-0.1) == 1.0
    # Near the estimate p is near 1/2.
    assert boot.p_below(boot.delta) == pytest.approx(0.5, abs=0.03)
    same = paired_bootstrap(baseline, baseline, resamples=1_000)
    assert same.p_below(0.0) == 1.0 and same.p_below(-0.005) == 1.0


def test_a_drop_of_exactly_the_tolerance_is_not_beyond_it():
    baseline = np.linspace(0.1, 0.9, 50)
    boot = paired_bootstrap(baseline, baseline - 0.005, resamples=1_000)
    assert boot.p_below(-0.005) == 1.0


def test_same_seed_same_numbers_other_seed_other_resamples():
    baseline, candidate = shifted(200, 0.01, 0.1, seed=3)
    a = paired_bootstrap(baseline, candidate, resamples=5_000, seed=7)
    b = paired_bootstrap(baseline, candidate, resamples=5_000, seed=7)
    c = paired_bootstrap(baseline, candidate, resamples=5_000, seed=8)
    assert np.array_equal(a.distribution, b.distribution) and (a.low, a.high) == (b.low, b.high)
    assert not np.array_equal(a.distribution, c.distribution)
    assert randomization_test(baseline, candidate, seed=7) == randomization_test(baseline, candidate, seed=7)


def test_randomization_test_is_exact_on_small_samples():
    # Differences 1, 2, 3: of the 8 sign assignments only +++ and --- reach |mean| >= 2.
    assert randomization_test([0, 0, 0], [1, 2, 3]) == 0.25
    # Differences 1, -1, 2, 0: |mean| 0.5; assignments with |s1 - s2 + 2 s3| >= 2 are 12 of 16.
    assert randomization_test([0, 1, 0, 5], [1, 0, 2, 5]) == 0.75
    assert randomization_test([0.3, 0.4], [0.3, 0.4]) == 1.0


def test_randomization_test_agrees_with_scipy():
    from scipy.stats import permutation_test

    def scipy_p(diff, n_resamples):
        # scipy's two-sided p is twice the smaller one-sided one; equal to |mean| counting for
        # the symmetric null distribution of sign flips (exactly so when enumerated).
        return permutation_test((diff,), lambda d, axis: np.mean(d, axis=axis), permutation_type="samples",
                                vectorized=True, n_resamples=n_resamples, rng=np.random.default_rng(0)).pvalue

    baseline, candidate = shifted(10, 0.03, 0.05, seed=4)
    assert randomization_test(baseline, candidate) == pytest.approx(scipy_p(candidate - baseline, 10_000), abs=1e-12)
    baseline, candidate = shifted(300, 0.004, 0.05, seed=5)
    ours = randomization_test(baseline, candidate, permutations=10_000)
    assert 0.05 < ours < 0.5
    assert ours == pytest.approx(scipy_p(candidate - baseline, 10_000), abs=0.02)  # ~3.5 standard errors
    baseline, candidate = shifted(300, -0.05, 0.05, seed=6)
    assert randomization_test(baseline, candidate, permutations=10_000) == pytest.approx(1 / 10_001)


def test_holm_against_a_hand_computed_example():
    # Sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06, monotone).
    assert holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Capped at 1, and monotone in the sorted order.
    assert holm([0.5, 0.6]).tolist() == [1.0, 1.0]
    assert holm([0.2]).tolist() == [0.2]
    # At alpha 0.05: 0.01, 0.012, 0.04 adjust to 0.03, 0.03 (0.024, made monotone), 0.04: all rejected;
    # 0.01, 0.03, 0.04 adjust to 0.03, 0.06, 0.06: only the first.
    assert (holm([0.01, 0.012, 0.04]) <= 0.05).tolist() == [True, True, True]
    assert (holm([0.01, 0.03, 0.04]) <= 0.05).tolist() == [True, False, False]


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="equal length"):
        paired_bootstrap([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="non-empty"):
        randomization_test([], [])
