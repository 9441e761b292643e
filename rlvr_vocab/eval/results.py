"""Benchmark results of a run: one file per (benchmark, weights, settings), and their summary.

    <run_dir>/eval/<benchmark>/<weights>-<settings_key>.json   one evaluation (weights: initial, checkpoint-N, final)
    <run_dir>/evals.json                                       the summary: benchmark -> step -> measures

A result holds the aggregate measures of rlvr_vocab.eval.protocol and `problems`, one record per problem; the summary
holds the aggregates only, of the newest protocol a benchmark was evaluated with (a curve never mixes protocols).

A result is written by whichever job evaluated (a chained evaluation job, `rlvr-vocab eval`, or training's own
held-out evaluation never: that stays in run.json's `eval`). The summary is rebuilt from the result files under
`.evals.lock`, so concurrent evaluation jobs never lose each other's results; it sits at the top of the run dir so
that writing it moves the run dir's mtime, which is what the registry's index watches. The training job copies
the summary into run.json (`benchmarks`) whenever it saves its manifest, and an evaluation job that finds no
training job holding the run dir does so itself.
"""

import json
from pathlib import Path
from typing import Any

from rlvr_vocab.eval.protocol import MEASURE_PREFIXES, MEASURES
from rlvr_vocab.run.fsio import atomic_write_text, locked, note_change
from rlvr_vocab.run.layout import RunPaths

# The weights label of the model the policy was loaded from, recorded at step 0.
INITIAL = "initial"
SUMMARY_NAME = "evals.json"
_LOCK_NAME = ".evals.lock"


def result_path(paths: RunPaths, benchmark: str, weights: str, settings_key: str) -> Path:
    return paths.eval / benchmark / f"{weights}-{settings_key}.json"


def read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "benchmark" in data else None


def has_result(paths: RunPaths, benchmark: str, weights: str, settings_key: str) -> bool:
    return read_result(result_path(paths, benchmark, weights, settings_key)) is not None


def write_result(paths: RunPaths, result: dict[str, Any]) -> Path:
    """Record one evaluation (`benchmark`, `weights`, `step`, `settings_key`, `settings`, `protocol`, the measures,
    `problems`) and refresh the summary."""
    path = result_path(paths, result["benchmark"], result["weights"], result["settings_key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=1, sort_keys=True) + "\n")
    refresh_summary(paths)
    return path


def all_results(paths: RunPaths) -> list[dict[str, Any]]:
    if not paths.eval.is_dir():
        return []
    found = (read_result(p) for p in sorted(paths.eval.glob("*/*.json")))
    return [r for r in found if r is not None]


def _protocol_of(result: dict[str, Any]) -> int:
    """The protocol a result was measured with (results before the protocol was versioned: 1)."""
    return result.get("protocol", 1)


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """benchmark -> str(step) -> the measures of its newest result at that step (the initial weights at step 0 and
    the final model's step included, marked `weights: initial` and `weights: final`), among the results of the newest
    protocol the benchmark has."""
    newest: dict[str, int] = {}
    for r in results:
        newest[r["benchmark"]] = max(newest.get(r["benchmark"], 0), _protocol_of(r))
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for r in sorted(results, key=lambda r: r.get("time") or ""):
        if _protocol_of(r) != newest[r["benchmark"]]:
            continue
        measures = {k: v for k, v in r.items() if k in MEASURES or k.startswith(MEASURE_PREFIXES)}
        summary.setdefault(r["benchmark"], {})[str(r["step"])] = {
            **measures, "step": r["step"], "weights": r["weights"], "settings_key": r["settings_key"]}
    return summary


def refresh_summary(paths: RunPaths) -> dict[str, Any]:
    with locked(paths.run_dir / _LOCK_NAME):
        summary = summarize(all_results(paths))
        atomic_write_text(paths.run_dir / SUMMARY_NAME, json.dumps(summary, indent=1, sort_keys=True) + "\n")
        note_change(paths.run_dir)
    return summary


def read_summary(paths: RunPaths) -> dict[str, Any]:
    try:
        data = json.loads((paths.run_dir / SUMMARY_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def final_and_best(summary: dict[str, dict[str, Any]], benchmark: str, final_step: int | None = None
                   ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A benchmark's result at the final model (or the last step evaluated) and at its best step (by accuracy); the
    initial weights are neither, as GRPO has not touched them."""
    steps = {s: v for s, v in (summary.get(benchmark) or {}).items() if v.get("weights") != INITIAL}
    if not steps:
        return None, None
    ordered = sorted(steps.items(), key=lambda kv: int(kv[0]))
    finals = [v for _, v in ordered if v.get("weights") == "final"]
    final = finals[-1] if finals else (steps.get(str(final_step)) if final_step is not None else ordered[-1][1])
    best = max((v for _, v in ordered), key=lambda v: v.get("accuracy") or 0.0)
    return final, best


def benchmarks_of(paths: RunPaths, manifest: dict[str, Any] | None) -> dict[str, Any]:
    """A run's benchmark summary: the newer of run.json's copy and evals.json (evaluations may finish after the
    training job last wrote its manifest)."""
    return read_summary(paths) or (manifest or {}).get("benchmarks") or {}
