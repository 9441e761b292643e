"""A run's curves from its run dir: training reward, held-out accuracy and each benchmark's measures against step;
and a benchmark's headline measure: avg@n (the papers' pass@1) where every result has it, else greedy accuracy."""

import json
from collections.abc import Iterable
from pathlib import Path

from rlvr_vocab.eval import results
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import UnreadableManifest, read_manifest

AVG, GREEDY = "avg@n", "accuracy"
MEASURE_TITLES = {AVG: "avg@n (sampled pass@1)", GREEDY: "greedy accuracy"}
# What the report draws and tabulates of a benchmark's generations besides correctness, per arm.
USAGE = ("mean_length", "mean_think_length", "reasoning_share_in_think", "reasoning_share_outside_think")
USAGE_TITLES = {"mean_length": "mean length (tokens)", "mean_think_length": "think length (tokens)",
                "reasoning_share_in_think": "reasoning-token share in think",
                "reasoning_share_outside_think": "reasoning-token share outside think"}


def headline(entries: Iterable[dict]) -> str:
    """avg@n when every result given has it, else greedy accuracy (results of the old protocol have no avg@n)."""
    entries = list(entries)
    return AVG if entries and all(is_number(e.get(AVG)) for e in entries) else GREEDY


def load_curves(run_dir: Path) -> dict:
    """{"reward": {step: value}, "accuracy": {step: value}, "benchmarks": {name: {step: {measure: value}}}}, steps
    ascending; after a resume the last line wins."""
    paths = RunPaths(run_dir)
    try:
        manifest = read_manifest(paths.run_dir) or {}
    except UnreadableManifest:  # listed as UNREADABLE by `status`; no curve to draw
        manifest = {}
    summary = results.benchmarks_of(paths, manifest)
    benchmarks = {name: _benchmark_curves(steps) for name, steps in sorted(summary.items())}
    return {"reward": _reward_curve(paths.metrics), "accuracy": _accuracy_curve(manifest), "benchmarks": benchmarks}


def _reward_curve(path: Path) -> dict[int, float]:
    curve: dict[int, float] = {}
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return curve
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short by a crash mid-write
            continue
        if isinstance(record, dict) and is_number(record.get("reward")) and is_number(record.get("step")):
            curve[int(record["step"])] = float(record["reward"])
    return dict(sorted(curve.items()))


def _accuracy_curve(manifest: dict) -> dict[int, float]:
    ev = manifest.get("eval") or {}
    # Before training, any periodic evaluations, after training: later entries win for the same step.
    points = [(ev.get("initial"), 0), *((h, None) for h in ev.get("history") or []),
              (ev.get("final"), manifest.get("last_step"))]
    curve: dict[int, float] = {}
    for entry, default_step in points:
        if not isinstance(entry, dict) or not is_number(entry.get("accuracy")):
            continue
        step = entry.get("step", default_step)
        if is_number(step):
            curve[int(step)] = float(entry["accuracy"])
    return dict(sorted(curve.items()))


def _benchmark_curves(steps: dict) -> dict[int, dict[str, float]]:
    """Step -> the numeric measures of a benchmark's summary at that step (the initial weights at step 0)."""
    curves: dict[int, dict[str, float]] = {}
    for entry in (v for v in steps.values() if isinstance(v, dict) and is_number(v.get("step"))):
        curves[int(entry["step"])] = {m: float(v) for m, v in entry.items() if m != "step" and is_number(v)}
    return dict(sorted(curves.items()))


def measure_curve(steps: dict[int, dict[str, float]], measure: str) -> dict[int, float]:
    """One measure of a benchmark curve (`load_curves`' step -> measures) against step."""
    return {step: values[measure] for step, values in steps.items() if measure in values}


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
