"""Paired-comparison statistics: hand-computed values, interval coverage and t-test power checked by simulation."""

import numpy as np
import pytest
from scipy import stats

from rlvr_vocab.eval.paired import (
    SMALL_N_NOTE,
    aggregate,
    detectable_difference,
    paired_bootstrap,
    probability_of_improvement,
    seeds_needed,
)


def simulate_arms(rng, n_seeds, n_problems, n_samples, effect, seed_spread=0.05, effect_spread=0.0):
    """Per-problem scores c/n of arms A and B, and the true difference on this benchmark's problems.

    Success probabilities: a problem's difficulty (shared by both arms, so pairing removes it), each trained
    model's seed effect, B's effect (the same everywhere, or spread over problems), then binomial sampling of n.
    The effect is split +-1/2 between the arms so that the binomial variance hardly depends on it.
    """
    difficulty = rng.uniform(0.25, 0.75, n_problems)
    problem_effect = rng.uniform(-effect_spread, effect_spread, n_problems)
    seed_a = rng.uniform(-seed_spread, seed_spread, (n_seeds, 1))
    seed_b = rng.uniform(-seed_spread, seed_spread, (n_seeds, 1))
    p_a = difficulty + seed_a - (effect + problem_effect) / 2
    p_b = difficulty + seed_b + (effect + problem_effect) / 2
    assert 0 <= p_a.min() and p_b.max() <= 1, "keep the parameters small enough for probabilities"
    scores_a = rng.binomial(n_samples, p_a) / n_samples
    scores_b = rng.binomial(n_samples, p_b) / n_samples
    return scores_a, scores_b, effect + problem_effect.mean()


def coverage(rng, experiments, truth_on_benchmark, levels, **arms):
    """How often the 95% interval of paired_bootstrap covers the truth (the population effect, or with
    `truth_on_benchmark` the effect on each experiment's own problems)."""
    effect = 0.05
    covered = 0
    for _ in range(experiments):
        a, b, on_benchmark = simulate_arms(rng, effect=effect, **arms)
        truth = on_benchmark if truth_on_benchmark else effect
        result = paired_bootstrap(a, b, levels=levels, n_boot=300, rng=rng)
        covered += result.low <= truth <= result.high
    return covered / experiments


def assert_rate(observed, expected, experiments):
    """Within 3 binomial standard errors of `expected`."""
    standard_error = np.sqrt(expected * (1 - expected) / experiments)
    assert abs(observed - expected) <= 3 * standard_error, f"{observed:.3f} vs {expected} +- {3 * standard_error:.3f}"


def test_paired_difference_is_the_difference_of_means():
    a = np.array([[0.0, 0.5, 1.0], [0.25, 0.25, 0.5]])
    b = np.array([[0.5, 0.5, 1.0], [0.5, 0.75, 0.5]])
    result = paired_bootstrap(a, b, rng=np.random.default_rng(0))
    # mean(A) = 2.5 / 6, mean(B) = 3.75 / 6
    assert result.difference == pytest.approx(1.25 / 6)
    assert result.low <= result.difference <= result.high
    assert (result.levels, result.n_seeds, result.n_problems, result.confidence) == (
        ("seeds", "problems"), 2, 3, 0.95)
    assert result.note == SMALL_N_NOTE
    assert paired_bootstrap(a, b, rng=np.random.default_rng(0)) == result  # reproducible with the seed


def test_seed_level_needs_two_seeds():
    rng = np.random.default_rng(1)
    a, b, _ = simulate_arms(rng, n_seeds=1, n_problems=20, n_samples=8, effect=0.05)
    result = paired_bootstrap(a, b, rng=rng)
    assert result.levels == ("problems",) and "seeds (only 1)" in result.note
    assert result.low < result.difference < result.high
    alone = paired_bootstrap(a, b, levels=("seeds",), rng=rng)
    assert alone.levels == () and alone.low is None and alone.high is None


def test_paired_bootstrap_rejects_unpaired_or_unknown_levels():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="paired"):
        paired_bootstrap(np.zeros((3, 4)), np.zeros((3, 5)), rng=rng)
    with pytest.raises(ValueError, match="levels"):
        paired_bootstrap(np.zeros((3, 4)), np.zeros((3, 4)), levels=("runs",), rng=rng)


def test_seed_interval_covers_the_difference_on_the_benchmark():
    # Seeds only: the claim is about this benchmark's problems, so the truth is the effect on them.
    rate = coverage(np.random.default_rng(3), 300, True, ("seeds",),
                    n_seeds=8, n_problems=30, n_samples=8, effect_spread=0.1)
    assert_rate(rate, 0.95, 300)


def test_seed_and_problem_interval_covers_the_population_difference():
    # Both levels: the claim is about new problems too, and the effect varies from problem to problem.
    rate = coverage(np.random.default_rng(4), 300, False, ("seeds", "problems"),
                    n_seeds=6, n_problems=100, n_samples=16, effect_spread=0.1)
    assert_rate(rate, 0.95, 300)


def test_seed_and_problem_interval_is_conservative_when_cells_are_noisy():
    # Few problems, few samples: binomial noise dominates and the crossed bootstrap counts it about three times.
    rate = coverage(np.random.default_rng(5), 300, False, ("seeds", "problems"),
                    n_seeds=5, n_problems=20, n_samples=4, seed_spread=0.02, effect_spread=0.05)
    assert rate >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 300)


def test_iqm_is_the_mean_of_the_middle_half():
    # 8 scores: the IQM drops the 2 lowest and the 2 highest.
    scores = np.array([[0.1, 0.8], [0.5, 0.3], [0.7, 0.2], [0.4, 0.6]])
    result = aggregate(scores, rng=np.random.default_rng(6))
    assert result.iqm.value == pytest.approx((0.3 + 0.4 + 0.5 + 0.6) / 4)
    assert result.mean.value == pytest.approx(0.45)
    assert (result.n_runs, result.n_benchmarks) == (4, 2)
    for estimate in (result.mean, result.iqm):
        assert 0.1 <= estimate.low <= estimate.value <= estimate.high <= 0.8
    outlier = aggregate(np.where(scores == 0.8, 100.0, scores), rng=np.random.default_rng(6))
    assert outlier.iqm.value == pytest.approx(result.iqm.value) and outlier.mean.value > 10


def test_aggregate_has_no_interval_for_one_run():
    result = aggregate(np.array([[0.2, 0.4]]), rng=np.random.default_rng(7))
    assert result.mean.value == pytest.approx(0.3) and result.mean.low is None and result.iqm.high is None


def brute_force_improvement(a, b):
    per_benchmark = []
    for column in range(a.shape[1]):
        wins = sum(1.0 if y > x else 0.5 if y == x else 0.0 for x in a[:, column] for y in b[:, column])
        per_benchmark.append(wins / (len(a) * len(b)))
    return np.mean(per_benchmark)


def test_probability_of_improvement_by_hand_and_by_brute_force():
    # Benchmark 1: B = (2, 3, 4) over A = (1, 2, 3) wins 1.5 + 2.5 + 3 of 9 pairs; benchmark 2: 3 of 9.
    a = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    b = np.array([[2.0, 0.0], [3.0, 0.0], [4.0, 9.0]])
    result = probability_of_improvement(a, b, rng=np.random.default_rng(8))
    assert result.value == pytest.approx((7 / 9 + 3 / 9) / 2)
    assert result.low <= result.value <= result.high

    rng = np.random.default_rng(9)
    a = rng.integers(0, 5, size=(4, 3)) / 4  # few distinct values: many ties
    b = rng.integers(1, 6, size=(6, 3)) / 4
    assert probability_of_improvement(a, b, rng=rng).value == pytest.approx(brute_force_improvement(a, b))


def test_probability_of_improvement_at_the_extremes():
    rng = np.random.default_rng(10)
    a = rng.uniform(0, 0.5, size=(5, 4))
    better = probability_of_improvement(a, a + 1, rng=rng)
    assert (better.value, better.low, better.high) == (1.0, 1.0, 1.0)
    assert probability_of_improvement(a, a, rng=rng).value == pytest.approx(0.5)


def test_detectable_difference_is_detected_at_the_planned_power():
    rng = np.random.default_rng(11)
    # A large pilot, so that its seed-difference std is the true one and only the power calculation is tested.
    pilot_a, pilot_b, _ = simulate_arms(rng, n_seeds=2000, n_problems=30, n_samples=8, effect=0.0)
    effect = detectable_difference((pilot_b - pilot_a).mean(axis=1), n_seeds=6)
    experiments = 400
    detected = 0
    for _ in range(experiments):
        a, b, _ = simulate_arms(rng, n_seeds=6, n_problems=30, n_samples=8, effect=effect)
        detected += stats.ttest_rel(b.mean(axis=1), a.mean(axis=1)).pvalue < 0.05
    assert_rate(detected / experiments, 0.8, experiments)


def test_detectable_difference_approaches_the_normal_formula():
    seed_diffs = np.array([0.01, 0.03, -0.02, 0.04, 0.0])
    sd = seed_diffs.std(ddof=1)
    normal = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / np.sqrt(2000)
    assert detectable_difference(seed_diffs, n_seeds=2000) == pytest.approx(normal, rel=0.01)
    # With 3 seeds the t distribution's heavy tails (2 degrees of freedom) ask for about twice the normal's.
    normal_at_3 = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / np.sqrt(3)
    assert detectable_difference(seed_diffs, n_seeds=3) > 1.5 * normal_at_3


def test_seeds_needed_is_monotone_and_agrees_with_detectable_difference():
    seed_diffs = np.array([0.01, 0.03, -0.02, 0.04, 0.0])
    effects = np.linspace(0.005, 0.1, 12)
    needed = [seeds_needed(seed_diffs, effect) for effect in effects]
    assert needed == sorted(needed, reverse=True) and needed[0] > needed[-1]
    for effect, n in zip(effects, needed, strict=True):
        assert detectable_difference(seed_diffs, n) <= effect
        if n > 2:
            assert detectable_difference(seed_diffs, n - 1) > effect
    assert seeds_needed(seed_diffs, -0.03) == seeds_needed(seed_diffs, 0.03)
    with pytest.raises(ValueError, match="more than 10 seeds"):
        seeds_needed(seed_diffs, 0.001, max_seeds=10)


def test_power_needs_two_pilot_seeds():
    assert detectable_difference([0.01], n_seeds=5) is None
    assert seeds_needed([0.01], effect=0.05) is None
    assert seeds_needed([0.01, 0.02], effect=0.05) is not None  # rough: two seeds' spread
