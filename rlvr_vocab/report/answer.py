"""Does B beat A? Per benchmark at the final model: B - A paired by seed and by problem with the two-level bootstrap
interval (seeds, then problems), P(B > A) over seeds and the difference detectable at this many seeds; overall across
benchmarks: the mean and IQM of B - A with stratified intervals and P(B > A); and the seeds a difference of `effect`
needs (rlvr_vocab.eval.paired). Every bootstrap draws from a fixed rng seed: the same runs give the same answer."""

from dataclasses import dataclass, replace

import numpy as np

from rlvr_vocab.eval.paired import (
    Aggregate,
    Estimate,
    PairedDifference,
    aggregate,
    detectable_difference,
    paired_bootstrap,
    probability_of_improvement,
    seeds_needed,
)
from rlvr_vocab.report.arms import Arm, pairings
from rlvr_vocab.report.measures import FINAL
from rlvr_vocab.report.problems import PairedScores, pair_scores
from rlvr_vocab.report.summaries import DEFAULT_EFFECT, SMALL_N

N_BOOT = 2000
CONFIDENCE = 0.95
# Seeds needed beyond this are said as "more than".
MAX_SEEDS = 1000
RNG_SEED = 0


@dataclass(frozen=True)
class Planning:
    """What `n_seeds` seeds can tell: the smallest difference found with 80% power at this n, and the seeds needed
    for a difference of `effect`; `why` says why either is missing."""

    n_seeds: int
    detectable: float | None
    effect: float
    seeds_needed: int | None
    why: str | None


@dataclass(frozen=True)
class BenchmarkAnswer:
    benchmark: str
    label: str  # the settings paired ("all runs" when only the seed is swept)
    measure: str  # avg@n, else greedy accuracy
    seeds: list[str]
    n_problems: int | None  # None: no per-problem records, seeds resampled only
    a_mean: float
    b_mean: float
    difference: PairedDifference
    improvement: Estimate  # P(B > A) over seeds
    planning: Planning
    verdict: str
    notes: list[str]
    a_seed_scores: list[float]
    b_seed_scores: list[float]


@dataclass(frozen=True)
class OverallAnswer:
    label: str
    benchmarks: list[str]
    seeds: list[str]  # those paired on every benchmark
    mean: Estimate  # of B - A over seeds x benchmarks
    iqm: Estimate
    improvement: Estimate
    a: Aggregate
    b: Aggregate
    planning: Planning
    verdict: str


@dataclass(frozen=True)
class Answer:
    benchmarks: list[BenchmarkAnswer]
    overall: list[OverallAnswer]  # one per pairing of settings
    missing: list[str]  # what could not be compared, as sentences
    effect: float


def answer(a: Arm, b: Arm, effect: float = DEFAULT_EFFECT) -> Answer:
    """The answer of B against A, per pairing of settings, benchmark by benchmark and overall."""
    found, overall, missing = [], [], []
    for pairing in pairings(a, b):
        runs = [{arm.seeds[i]: arm.runs[i] for i in indices if arm.seeds[i] is not None}
                for arm, indices in ((a, pairing.a), (b, pairing.b))]
        per_benchmark = []
        for benchmark, measure in sorted(a.measures.items() | b.measures.items()):
            values = (a.by_seed(pairing.a, benchmark + FINAL), b.by_seed(pairing.b, benchmark + FINAL))
            scores = pair_scores(*runs, benchmark, measure, values)
            if scores is None:
                missing.append(f"{where(benchmark, pairing.label)}: no seed has results in both arms")
                continue
            per_benchmark.append(_benchmark_answer(benchmark, pairing.label, measure, scores, effect))
        found += per_benchmark
        seeds = [s for s in per_benchmark[0].seeds if all(s in x.seeds for x in per_benchmark)] \
            if per_benchmark else []
        if seeds:
            overall.append(_overall_answer(pairing.label, per_benchmark, seeds, effect))
        elif per_benchmark:
            missing.append(f"{where('overall', pairing.label)}: no seed is paired on every benchmark")
    return Answer(found, overall, missing, effect)


def where(what: str, label: str) -> str:
    """A benchmark (or "overall") and the settings paired, unless only the seed is swept."""
    return what if label == "all runs" else f"{what}, {label}"


def _benchmark_answer(benchmark: str, label: str, measure: str, scores: PairedScores,
                      effect: float) -> BenchmarkAnswer:
    rng = np.random.default_rng(RNG_SEED)
    n_seeds, n_problems = scores.a.shape
    if scores.per_problem:
        levels, notes = ("seeds", "problems"), []
        if scores.dropped:
            shown = ", ".join(map(str, scores.dropped[:10])) + (", ..." if len(scores.dropped) > 10 else "")
            one = len(scores.dropped) == 1
            notes.append(f"{len(scores.dropped)} problem{'' if one else 's'} not in every run of both arms dropped "
                         f"from both (ind{'ex' if one else 'ices'} {shown}); per-metric tables keep each run's own "
                         "value")
    else:
        levels, notes = ("seeds",), ["some results have no per-problem records (older results): each run's own "
                                     "value, paired by seed, seeds resampled only"]
    if n_seeds >= SMALL_N:
        difference = paired_bootstrap(scores.a, scores.b, levels=levels, n_boot=N_BOOT, confidence=CONFIDENCE,
                                      rng=rng)
    else:
        difference = PairedDifference(float((scores.b - scores.a).mean()), None, None, CONFIDENCE, (), n_seeds,
                                      n_problems, f"n < {SMALL_N} seeds: no interval")
    a_seed, b_seed = scores.a.mean(axis=1), scores.b.mean(axis=1)
    improvement = _small_n(probability_of_improvement(a_seed[:, None], b_seed[:, None], n_boot=N_BOOT, rng=rng),
                           n_seeds)
    return BenchmarkAnswer(benchmark, label, measure, scores.seeds, n_problems if scores.per_problem else None,
                           float(a_seed.mean()), float(b_seed.mean()), difference, improvement,
                           _planning(b_seed - a_seed, effect), _verdict(difference.low, difference.high, n_seeds),
                           notes, a_seed.tolist(), b_seed.tolist())


def _overall_answer(label: str, answers: list[BenchmarkAnswer], seeds: list[str], effect: float) -> OverallAnswer:
    """Across benchmarks, over the `seeds` paired on every one: each seed's score per benchmark (its mean over the
    benchmark's paired problems), B - A as (seeds, benchmarks), each benchmark a stratum."""
    rng = np.random.default_rng(RNG_SEED)
    a, b = (np.array([[getattr(x, f"{arm}_seed_scores")[x.seeds.index(s)] for x in answers] for s in seeds])
            for arm in ("a", "b"))
    diff = aggregate(b - a, n_boot=N_BOOT, rng=rng)
    mean, iqm = (_small_n(e, len(seeds)) for e in (diff.mean, diff.iqm))
    improvement = _small_n(probability_of_improvement(a, b, n_boot=N_BOOT, rng=rng), len(seeds))
    arms = [replace(x, mean=_small_n(x.mean, len(seeds)), iqm=_small_n(x.iqm, len(seeds)))
            for x in (aggregate(scores, n_boot=N_BOOT, rng=rng) for scores in (a, b))]
    return OverallAnswer(label, [x.benchmark for x in answers], seeds, mean, iqm, improvement, *arms,
                         _planning((b - a).mean(axis=1), effect), _verdict(mean.low, mean.high, len(seeds)))


def _small_n(estimate: Estimate, n_seeds: int) -> Estimate:
    # Below SMALL_N seeds an interval is not shown at all rather than shown and distrusted.
    return estimate if n_seeds >= SMALL_N else replace(estimate, low=None, high=None)


def _verdict(low: float | None, high: float | None, n_seeds: int) -> str:
    if n_seeds < SMALL_N or low is None or high is None:
        return f"n < {SMALL_N} seeds"
    return "B better" if low > 0 else "A better" if high < 0 else "no difference shown"


def _planning(seed_diffs: np.ndarray, effect: float) -> Planning:
    """detectable_difference and seeds_needed of the per-seed differences, and why either is missing."""
    n = len(seed_diffs)
    if n < 2:
        return Planning(n, None, effect, None, "unknown until 2 seeds show how much seeds differ")
    if np.ptp(seed_diffs) == 0:
        return Planning(n, None, effect, None, "unknown: B - A is the same on every seed, no spread to plan with")
    detectable = detectable_difference(seed_diffs, n)
    try:
        needed, why = seeds_needed(seed_diffs, effect, max_seeds=MAX_SEEDS), None
    except ValueError:  # more seeds than anyone would run
        needed, why = None, f"more than {MAX_SEEDS}"
    return Planning(n, detectable, effect, needed, why)
