"""Run statistics: known values, bootstrap intervals that behave, and pairing by seed."""

import math

import pytest

from rlvr_vocab.eval.stats import SMALL_N_NOTE, paired_difference, summarize


def test_summary_known_values():
    s = summarize([0.2, 0.4, 0.6, 0.8])
    assert s["n"] == 4 and s["mean"] == pytest.approx(0.5)
    assert s["std"] == pytest.approx(math.sqrt(((0.3**2) * 2 + (0.1**2) * 2) / 3))  # sample std, ddof=1
    assert s["note"] is None


def test_interval_contains_the_mean_and_stays_within_the_data():
    values = [0.31, 0.42, 0.38, 0.55, 0.47, 0.36]
    s = summarize(values)
    assert min(values) <= s["ci_low"] < s["mean"] < s["ci_high"] <= max(values)


def test_interval_narrows_with_more_runs():
    few = summarize([0.3, 0.5, 0.4, 0.6])
    many = summarize([0.3, 0.5, 0.4, 0.6] * 25)  # same spread, 25 times the runs
    assert many["ci_high"] - many["ci_low"] < (few["ci_high"] - few["ci_low"]) / 3
    assert many["mean"] == pytest.approx(few["mean"])


def test_interval_is_reproducible_with_the_seed():
    values = [0.13, 0.91, 0.42, 0.77, 0.25, 0.58, 0.66, 0.31]
    assert summarize(values, n_boot=500, seed=3) == summarize(values, n_boot=500, seed=3)
    three, four = summarize(values, n_boot=500, seed=3), summarize(values, n_boot=500, seed=4)
    assert (three["ci_low"], three["ci_high"]) != (four["ci_low"], four["ci_high"])  # other resamples


def test_small_samples_are_flagged():
    one = summarize([0.7])
    assert one["std"] is None and one["ci_low"] == one["ci_high"] == 0.7 and one["note"] == SMALL_N_NOTE
    assert summarize([0.7, 0.8])["note"] == SMALL_N_NOTE
    assert summarize([0.7, 0.8, 0.9])["note"] is None


def test_summary_refuses_what_has_no_mean():
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([0.5, float("nan")])


def test_identical_arms_differ_by_exactly_zero():
    arm = {0: 0.41, 1: 0.52, 2: 0.47, 3: 0.39}
    d = paired_difference(arm, dict(arm))
    assert d["mean_diff"] == 0 and d["std"] == 0 and d["ci_low"] == d["ci_high"] == 0
    assert d["n"] == 4 and d["seeds"] == [0, 1, 2, 3]


def test_difference_is_b_minus_a_paired_by_seed():
    a = {0: 0.40, 1: 0.50, 2: 0.30}
    b = {2: 0.36, 0: 0.45, 1: 0.53}  # order does not matter, the seed does
    d = paired_difference(a, b)
    assert d["mean_diff"] == pytest.approx((0.05 + 0.03 + 0.06) / 3)
    assert 0.03 - 1e-12 <= d["ci_low"] <= d["mean_diff"] <= d["ci_high"] <= 0.06 + 1e-12


def test_pairing_cancels_the_seed_effect_the_arms_share():
    a = {0: 0.20, 1: 0.50, 2: 0.80, 3: 0.35}
    b = {seed: value + 0.02 for seed, value in a.items()}  # b better by 0.02 on every seed
    d = paired_difference(a, b)
    unpaired_a, unpaired_b = summarize(list(a.values())), summarize(list(b.values()))
    assert unpaired_a["ci_high"] > unpaired_b["ci_low"]  # the arms' own intervals overlap...
    assert d["ci_low"] == pytest.approx(0.02) and d["ci_high"] == pytest.approx(0.02)  # ...the difference does not


def test_unpaired_seeds_are_left_out_and_reported():
    d = paired_difference({0: 0.5, 1: 0.6, 2: 0.7, 5: 0.1}, {0: 0.6, 1: 0.6, 2: 0.8, 7: 0.9})
    assert d["seeds"] == [0, 1, 2] and d["a_only"] == [5] and d["b_only"] == [7]
    assert d["n"] == 3 and d["mean_diff"] == pytest.approx(0.2 / 3)


def test_paired_difference_flags_small_n_and_needs_a_shared_seed():
    assert paired_difference({0: 0.5, 1: 0.6}, {0: 0.6, 1: 0.65})["note"] == SMALL_N_NOTE
    with pytest.raises(ValueError, match="no seed in both arms"):
        paired_difference({0: 0.5}, {1: 0.6})
