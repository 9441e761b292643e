"""Statistics of a paired comparison of two arms (A: baseline, B: with the reasoning vocabulary).

Both arms are trained with the same seeds and evaluated on the same problems, so each benchmark gives two arrays
of per-problem scores (the fraction correct of n samples) of shape (seeds, problems). Here, with no I/O:

- `paired_bootstrap`: mean(B) - mean(A) on one benchmark with a bootstrap over seeds and/or problems;
- `aggregate`, `probability_of_improvement`: across benchmarks, rliable's mean, IQM and P(B > A) with stratified
  bootstrap intervals (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice");
- `detectable_difference`, `seeds_needed`: the power of a paired t-test over seeds, from a pilot's seed differences.

scipy.stats.bootstrap is not used: it has no crossed resampling (seeds and problems at once, shared by both arms),
and one resampler here keeps the three bootstraps alike.
"""

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

LEVELS = ("seeds", "problems")
SMALL_N_NOTE = "n < 3 seeds: interval not meaningful"
# Bootstrap resamples drawn per batch: bounds memory at about 8 MB of float64 whatever n_boot and the data size.
_BATCH_CELLS = 1_000_000


@dataclass(frozen=True)
class PairedDifference:
    """mean(B) - mean(A) and its interval; `levels` are those actually resampled, `note` says what to distrust."""

    difference: float
    low: float | None
    high: float | None
    confidence: float
    levels: tuple[str, ...]
    n_seeds: int
    n_problems: int
    note: str | None


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its bootstrap interval (None where there is nothing to resample)."""

    value: float
    low: float | None
    high: float | None
    confidence: float


@dataclass(frozen=True)
class Aggregate:
    """One arm's mean and interquartile mean (IQM) over all run x benchmark scores."""

    mean: Estimate
    iqm: Estimate
    n_runs: int
    n_benchmarks: int


def paired_bootstrap(a, b, *, levels: tuple[str, ...] = LEVELS, n_boot: int = 2000, confidence: float = 0.95,
                     rng: np.random.Generator) -> PairedDifference:
    """mean(B) - mean(A) over (seeds, problems) arrays `a`, `b`, with a crossed paired bootstrap interval.

    Each resample draws seeds and problems with replacement, the same indices for both arms (paired) and the same
    problems for every seed (crossed: every seed saw every problem): Owen's (2007) pigeonhole bootstrap. With both
    levels the interval is for the difference over new seeds and new problems like these; with ("seeds",) for the
    difference on this benchmark; with ("problems",) for these trained models. A level with fewer than 2 units is
    not resampled and the note says so. The pigeonhole bootstrap counts per-cell noise (binomial sampling) about
    three times, so with both levels and noisy cells (small n and P) the interval is conservative.

    The interval is a percentile interval expanded for small samples (Hesterberg 2015): each tail cut at
    Phi(-sqrt(k/(k-1)) * t_{k-1, 1-alpha/2}) instead of alpha/2, with k - 1 the Welch-Satterthwaite degrees of
    freedom of the resampled levels (S - 1 for seeds alone), since a plain percentile interval over 5 seeds covers
    about 85% of the time, not 95%.
    Even expanded, a bootstrap over S seeds stays within the seeds' range, which misses the truth about 2^(1-S) of
    the time (25% at 3 seeds, 6% at 5).
    """
    a, b = _scores(a, "a"), _scores(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must be paired (same seeds, same problems), got shapes {a.shape} and {b.shape}")
    if not levels or set(levels) - set(LEVELS):
        raise ValueError(f"levels must be a non-empty subset of {LEVELS}, got {levels!r}")
    _check_boot(n_boot, confidence)
    diff = b - a
    n_seeds, n_problems = diff.shape
    counts = {"seeds": n_seeds, "problems": n_problems}
    resampled = tuple(level for level in LEVELS if level in levels and counts[level] >= 2)
    dropped = [f"{level} (only {counts[level]})" for level in LEVELS if level in levels and level not in resampled]
    notes = [f"not resampled: {', '.join(dropped)}"] if dropped else []
    if "seeds" in resampled and n_seeds < 3:
        notes.append(SMALL_N_NOTE)
    note = "; ".join(notes) or None
    estimate = float(diff.mean())
    if not resampled:
        return PairedDifference(estimate, None, None, confidence, (), n_seeds, n_problems, note)

    # Resampling indices = weighting each seed and problem by how often it was drawn (multinomial counts); the
    # resampled grand mean is then w_seeds @ diff @ w_problems / (S * P), no (n_boot, S, P) array needed.
    def draw(size: int) -> np.ndarray:
        seed_counts = _counts(rng, n_seeds, size) if "seeds" in resampled else np.ones((size, n_seeds))
        problem_counts = _counts(rng, n_problems, size) if "problems" in resampled else np.ones((size, n_problems))
        return ((seed_counts @ diff) * problem_counts).sum(axis=1) / diff.size

    replicates = _batched(draw, n_boot, n_seeds + n_problems)
    tail = _expanded_tail(confidence, _satterthwaite_df(diff, resampled))
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return PairedDifference(estimate, float(low), float(high), confidence, resampled, n_seeds, n_problems, note)


def aggregate(scores_by_benchmark, *, n_boot: int = 2000, confidence: float = 0.95,
              rng: np.random.Generator) -> Aggregate:
    """The mean and IQM of one arm's (runs, benchmarks) scores, with stratified bootstrap percentile intervals.

    The IQM is the mean of the middle 50% of all run x benchmark scores (scipy.stats.trim_mean(x, 0.25)): robust to
    an outlier run, yet using half the data, unlike the median. Each benchmark is a stratum: runs are resampled with
    replacement independently within each benchmark, as rliable does (plain percentile intervals, like rliable's).
    """
    scores = _scores(scores_by_benchmark, "scores_by_benchmark")
    _check_boot(n_boot, confidence)
    n_runs, n_benchmarks = scores.shape
    value_mean, value_iqm = float(scores.mean()), float(stats.trim_mean(scores, 0.25, axis=None))
    if n_runs < 2:
        return Aggregate(Estimate(value_mean, None, None, confidence), Estimate(value_iqm, None, None, confidence),
                         n_runs, n_benchmarks)

    def draw(size: int) -> np.ndarray:
        flat = _stratified(scores, size, rng).reshape(size, -1)
        return np.stack([flat.mean(axis=1), stats.trim_mean(flat, 0.25, axis=1)], axis=1)

    replicates = _batched(draw, n_boot, scores.size)
    (mean_low, iqm_low), (mean_high, iqm_high) = np.quantile(replicates, _tails(confidence), axis=0)
    return Aggregate(Estimate(value_mean, float(mean_low), float(mean_high), confidence),
                     Estimate(value_iqm, float(iqm_low), float(iqm_high), confidence), n_runs, n_benchmarks)


def probability_of_improvement(a, b, *, n_boot: int = 2000, confidence: float = 0.95,
                               rng: np.random.Generator) -> Estimate:
    """P(B > A): the chance that a run of B beats a run of A on a benchmark, averaged over benchmarks.

    `a` (runs of A, benchmarks) and `b` (runs of B, same benchmarks); per benchmark, the Mann-Whitney U of B over
    A divided by the number of pairs (a tie counts 1/2). The interval is rliable's: a percentile interval of a
    stratified bootstrap resampling each arm's runs independently within each benchmark (the pairing by seed is
    not used, as the U statistic compares every run of B with every run of A).
    """
    a, b = _scores(a, "a"), _scores(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same benchmarks (columns), got shapes {a.shape} and {b.shape}")
    _check_boot(n_boot, confidence)
    value = float(_improvement(a[None], b[None])[0])
    if min(len(a), len(b)) < 2:
        return Estimate(value, None, None, confidence)

    def draw(size: int) -> np.ndarray:
        return _improvement(_stratified(a, size, rng), _stratified(b, size, rng))

    low, high = np.quantile(_batched(draw, n_boot, a.size + b.size), _tails(confidence))
    return Estimate(value, float(low), float(high), confidence)


def detectable_difference(seed_diffs, n_seeds: int, power: float = 0.8, alpha: float = 0.05) -> float | None:
    """The smallest true difference a two-sided paired t-test at `alpha` detects with `power` over `n_seeds` seeds.

    `seed_diffs` are a pilot's per-seed differences (B - A, each averaged over problems); their sample std is
    taken as the true one (itself uncertain: from 3 seeds it can be off by a factor of 2). The power is exact
    for normal seed differences: the t statistic follows a noncentral t (scipy.stats.nct), solved for the effect
    with scipy.optimize.brentq. None with fewer than 2 pilot seeds (no variance estimate; from 2 it is rough).
    """
    sd = _pilot_sd(seed_diffs)
    if sd is None:
        return None
    _check_power(power, alpha)
    if n_seeds < 2:
        raise ValueError(f"a paired t-test needs n_seeds >= 2, got {n_seeds}")
    upper = sd
    while _power(upper, sd, n_seeds, alpha) < power:  # power grows with the effect: bracket the root
        upper *= 2
    return float(optimize.brentq(lambda effect: _power(effect, sd, n_seeds, alpha) - power, 0.0, upper))


def seeds_needed(seed_diffs, effect: float, power: float = 0.8, alpha: float = 0.05,
                 max_seeds: int = 1000) -> int | None:
    """The smallest number of seeds (>= 2) with which a paired t-test detects `effect` with `power` (as
    `detectable_difference`). None with fewer than 2 pilot seeds; ValueError if even `max_seeds` seeds fall short.
    """
    sd = _pilot_sd(seed_diffs)
    if sd is None:
        return None
    _check_power(power, alpha)
    candidates = np.arange(2, max_seeds + 1)
    enough = _power(abs(effect), sd, candidates, alpha) >= power
    if not enough.any():
        raise ValueError(f"an effect of {effect:g} needs more than {max_seeds} seeds (seed-difference std {sd:g})")
    return int(candidates[np.argmax(enough)])


def _power(effect: float, sd: float, n_seeds, alpha: float):
    """Two-sided power of the paired t-test (both rejection tails) at true mean difference `effect`."""
    df = n_seeds - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    noncentrality = effect * np.sqrt(n_seeds) / sd
    # P(T < -c | nc) written as P(T > c | -nc): scipy's nct.cdf gives NaN there for some large nc (seen on 1.17).
    return stats.nct.sf(critical, df, noncentrality) + stats.nct.sf(critical, df, -noncentrality)


def _improvement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(B > A) per resample from stacks (resamples, runs, benchmarks): U / (m n), averaged over benchmarks."""
    u = stats.mannwhitneyu(b, a, axis=1, method="asymptotic").statistic
    return u.mean(axis=1) / (a.shape[1] * b.shape[1])


def _stratified(scores: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` resamples of the runs, drawn independently within each benchmark column: (size, runs, benchmarks)."""
    n_runs, n_benchmarks = scores.shape
    rows = rng.integers(0, n_runs, size=(size, n_runs, n_benchmarks))
    return scores[rows, np.arange(n_benchmarks)]


def _counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """How often each of n units is drawn in each of `size` resamples of n with replacement."""
    return rng.multinomial(n, np.full(n, 1 / n), size=size).astype(float)


def _batched(draw, n_boot: int, cells_per_replicate: int) -> np.ndarray:
    per_batch = max(1, _BATCH_CELLS // cells_per_replicate)
    return np.concatenate([draw(min(per_batch, n_boot - start)) for start in range(0, n_boot, per_batch)])


def _satterthwaite_df(diff: np.ndarray, resampled: tuple[str, ...]) -> float:
    """Welch-Satterthwaite degrees of freedom of the grand mean's variance over the resampled levels."""
    parts = []  # (variance of the grand mean from this level, its degrees of freedom)
    if "seeds" in resampled:
        parts.append((diff.mean(axis=1).var(ddof=1) / diff.shape[0], diff.shape[0] - 1))
    if "problems" in resampled:
        parts.append((diff.mean(axis=0).var(ddof=1) / diff.shape[1], diff.shape[1] - 1))
    total = sum(variance for variance, _ in parts)
    if total == 0:  # no spread: the interval is a point whatever the percentiles
        return min(df for _, df in parts)
    return total**2 / sum(variance**2 / df for variance, df in parts)


def _expanded_tail(confidence: float, df: float) -> float:
    return float(stats.norm.cdf(-np.sqrt((df + 1) / df) * stats.t.ppf(1 - (1 - confidence) / 2, df)))


def _tails(confidence: float) -> list[float]:
    return [(1 - confidence) / 2, 1 - (1 - confidence) / 2]


def _scores(values, name: str) -> np.ndarray:
    data = np.asarray(values, dtype=float)
    if data.ndim != 2 or 0 in data.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"{name} must be finite")
    return data


def _pilot_sd(seed_diffs) -> float | None:
    diffs = np.asarray(seed_diffs, dtype=float)
    if diffs.ndim != 1 or not np.isfinite(diffs).all():
        raise ValueError(f"seed_diffs must be a 1-D array of finite numbers, got {seed_diffs!r}")
    if len(diffs) < 2:
        return None
    sd = float(diffs.std(ddof=1))
    if sd == 0:
        raise ValueError("the pilot's seed differences are all equal: no variance to plan with")
    return sd


def _check_boot(n_boot: int, confidence: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _check_power(power: float, alpha: float) -> None:
    if not 0 < alpha < power < 1:
        raise ValueError(f"need 0 < alpha < power < 1, got alpha={alpha}, power={power}")
