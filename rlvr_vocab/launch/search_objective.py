"""A trial's objective, read from what its run recorded: the held-out evaluations in run.json (`eval`: initial,
history, final) or a benchmark's results (evals.json, written by the chained evaluation jobs).

The same curve gives the intermediate values the pruner sees during training and the value the study is told.
"""

from pathlib import Path
from typing import Any

from rlvr_vocab.config.search import AT_AUC, AT_FINAL
from rlvr_vocab.eval.results import INITIAL, benchmarks_of
from rlvr_vocab.report.curves import headline, is_number
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import UnreadableManifest, read_manifest
from rlvr_vocab.validation.search import Metric, parse_metric, step_of


def curve(metric: Metric, manifest: dict[str, Any], benchmarks: dict[str, Any]) -> dict[int, float]:
    """The metric against step, the initial weights at step 0 and the final model at its step, ascending."""
    points: dict[int, float] = {}
    if metric.source == "heldout":
        ev = manifest.get("eval") or {}
        for entry in [ev.get("initial"), *(ev.get("history") or []), ev.get("final")]:
            if isinstance(entry, dict) and is_number(entry.get(metric.measure)) and is_number(entry.get("step")):
                points[int(entry["step"])] = float(entry[metric.measure])
    else:
        entries = [e for e in (benchmarks.get(metric.benchmark) or {}).values() if isinstance(e, dict)]
        measure = metric.measure or headline(e for e in entries if e.get("weights") != INITIAL)
        for entry in entries:
            if is_number(entry.get(measure)) and is_number(entry.get("step")):
                points[int(entry["step"])] = float(entry[measure])
    return dict(sorted(points.items()))


def _area(points: dict[int, float], upto: int) -> float | None:
    """The curve's mean over steps 0..upto (trapezoids), None without a point at 0 and at `upto`."""
    steps = [s for s in points if s <= upto]
    if upto <= 0 or 0 not in points or upto not in points:
        return None
    area = sum((b - a) * (points[a] + points[b]) / 2 for a, b in zip(steps, steps[1:], strict=False))
    return area / upto


def intermediate(points: dict[int, float], at: str) -> dict[int, float]:
    """What the pruner sees at each evaluated step after the start: the value there, or for `auc` the area so far."""
    if str(at) == AT_AUC:
        running = {s: _area(points, s) for s in points if s > 0}
        return {s: v for s, v in running.items() if v is not None}
    return {s: v for s, v in points.items() if s > 0}


def final_value(points: dict[int, float], at: str, last_step: int | None, max_steps: int) -> float | None:
    """The objective once the run completed (None: not recorded yet, e.g. a benchmark job still running)."""
    if last_step is None or last_step < max_steps:
        return None
    if str(at) == AT_AUC:
        return _area(points, last_step)
    step = step_of(at) if str(at) != AT_FINAL else last_step
    return points.get(step)


def run_objective(run_dir: Path, objective: dict[str, Any], max_steps: int) -> float | None:
    """A completed run's objective (`search.objective`) from its run dir."""
    paths = RunPaths(run_dir)
    try:
        manifest = read_manifest(paths.run_dir) or {}
    except UnreadableManifest:
        return None
    points = curve(parse_metric(objective["metric"]), manifest, benchmarks_of(paths, manifest))
    return final_value(points, objective["at"], manifest.get("last_step"), max_steps)
