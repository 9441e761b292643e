"""What the comparison measures of a run: each benchmark's accuracy at the final model and at its best checkpoint,
held-out accuracy and training reward; and the run's seed and config.yaml."""

from typing import Any

from rlvr_vocab.eval import results
from rlvr_vocab.report.plotting import run_overrides

# Columns of a run's benchmark results: accuracy (pass@1) at the final model and at the best evaluated step.
FINAL, BEST, BEST_STEP = " final", " best", " best_step"
# Metrics besides the benchmarks', named as `rlvr-vocab compare` names its columns.
HELD_OUT, REWARD = "acc_final", "reward"
METRIC_TITLES = {HELD_OUT: "held-out accuracy (final)", REWARD: "training reward (last logged)"}


def benchmark_names(runs) -> list[str]:
    """The benchmarks any of these runs has results for."""
    return sorted({b for r in runs for b in results.benchmarks_of(r.paths, r.m)})


def benchmark_values(view, benchmarks: list[str]) -> dict[str, Any]:
    """Per benchmark: `<b> final` and `<b> best` (accuracy) and `<b> best_step`; None where the run has none.

    "final" is the final model (or the evaluation at max_steps): a run still training has no final value.
    """
    summary = results.benchmarks_of(view.paths, view.m)
    out: dict[str, Any] = {}
    for b in benchmarks:
        final, best = results.final_and_best(summary, b, view.m.get("max_steps"))
        out[b + FINAL] = (final or {}).get("accuracy")
        out[b + BEST] = (best or {}).get("accuracy")
        out[b + BEST_STEP] = (best or {}).get("step")
    return out


def is_benchmark_column(column: str) -> bool:
    """A benchmark's accuracy (`<b> final`, `<b> best`), not its best step."""
    return column.endswith((FINAL, BEST))


def run_metrics(view, benchmarks: list[str]) -> dict[str, float | None]:
    """Every metric the comparison averages: benchmarks at final and best, held-out accuracy, reward."""
    values = benchmark_values(view, benchmarks)
    final_eval = (view.m.get("eval") or {}).get("final") or {}
    return {**{k: v for k, v in values.items() if not k.endswith(BEST_STEP)},
            HELD_OUT: final_eval.get("accuracy"), REWARD: (view.m.get("metrics") or {}).get("reward")}


def metric_title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric.replace(FINAL, " (final model)").replace(BEST, " (best checkpoint)"))


def run_seed(view) -> str | None:
    """The run's seed: its override, else its config.yaml's (a run left at the default seed)."""
    seed = run_overrides(view).get("seed")
    if seed is None:
        seed = run_config(view).get("seed")
    return None if seed is None else str(seed)


def run_config(view) -> dict[str, Any]:
    """The run's config.yaml flattened to dotted keys ({} when it has none yet)."""
    import yaml

    from rlvr_vocab.run.identity import flatten

    try:
        data = yaml.safe_load(view.paths.config.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return flatten(data) if isinstance(data, dict) else {}
