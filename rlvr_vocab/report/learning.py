"""Does B learn faster, not only end higher? Per benchmark, over each run's evaluated checkpoints (step 0 included when
evaluated), of its headline measure: the area under the curve, divided by the steps it spans (the mean value over
training), and the first evaluated step that reaches A's final value; each over seeds with its 95% interval."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlvr_vocab.report.arms import Arm, pairings
from rlvr_vocab.report.curves import load_curves, measure_curve
from rlvr_vocab.report.measures import FINAL
from rlvr_vocab.report.summaries import paired, summary


@dataclass(frozen=True)
class Speed:
    benchmark: str
    label: str
    measure: str
    span: tuple[int, int] | None  # the steps every run of both arms covers: the area is over them
    area: dict[str, dict[str, Any] | None]  # arm -> summary over seeds (stats.summarize)
    area_diff: dict[str, Any] | None  # B - A paired by seed
    threshold: float | None  # A's mean final value
    reached: dict[str, dict[str, Any] | None]  # arm -> summary of the first step reaching it, over the seeds that did
    reached_by: dict[str, tuple[int, int]]  # arm -> (seeds that reached it, seeds with a curve)


def learning_speed(a: Arm, b: Arm) -> list[Speed]:
    """One Speed per pairing of settings and benchmark either arm has."""
    loaded = {arm.name: [load_curves(r.run_dir)["benchmarks"] for r in arm.runs] for arm in (a, b)}
    out = []
    for pairing in pairings(a, b):
        for benchmark, measure in sorted(a.measures.items() | b.measures.items()):
            curves = {arm.name: {arm.seeds[i]: measure_curve(loaded[arm.name][i].get(benchmark, {}), measure)
                                 for i in indices if arm.seeds[i] is not None}
                      for arm, indices in ((a, pairing.a), (b, pairing.b))}
            curves = {arm: {seed: c for seed, c in by_seed.items() if c} for arm, by_seed in curves.items()}
            if not any(curves.values()):
                continue
            finals = [v for v in a.by_seed(pairing.a, benchmark + FINAL).values() if v is not None]
            out.append(_speed(benchmark, pairing.label, measure, curves,
                              float(np.mean(finals)) if finals else None))
    return out


def _speed(benchmark: str, label: str, measure: str, curves: dict[str, dict[str, dict[int, float]]],
           threshold: float | None) -> Speed:
    every = [c for by_seed in curves.values() for c in by_seed.values()]
    low, high = max(min(c) for c in every), min(max(c) for c in every)
    span = (low, high) if high > low else None
    areas = {arm: {seed: area(c, *span) for seed, c in by_seed.items()} if span else {}
             for arm, by_seed in curves.items()}
    firsts = {arm: [first_reaching(c, threshold) for c in by_seed.values()] if threshold is not None else []
              for arm, by_seed in curves.items()}
    names = list(curves)
    return Speed(benchmark, label, measure, span, {arm: summary(list(areas[arm].values())) for arm in names},
                 paired(*(areas[arm] for arm in names)) if span else None, threshold,
                 {arm: summary([s for s in firsts[arm] if s is not None]) for arm in names},
                 {arm: (sum(s is not None for s in firsts[arm]), len(curves[arm])) for arm in names})


def area(curve: dict[int, float], low: int, high: int) -> float:
    """The area under the curve from step `low` to `high` (linear between evaluated steps) over high - low: the
    curve's mean value over those steps."""
    steps = np.array(sorted(curve), dtype=float)
    values = np.array([curve[s] for s in sorted(curve)])
    xs = np.concatenate([[low], steps[(steps > low) & (steps < high)], [high]])
    return float(np.trapezoid(np.interp(xs, steps, values), xs) / (high - low))


def first_reaching(curve: dict[int, float], threshold: float) -> int | None:
    """The first evaluated step whose value reaches `threshold` (None: never)."""
    # A hair below: the threshold is a mean of values like these, and a run at exactly that value has reached it.
    return next((step for step in sorted(curve) if curve[step] >= threshold - 1e-12), None)
