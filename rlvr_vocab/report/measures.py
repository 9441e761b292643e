"""What the comparison measures of a run: each benchmark's headline measure (avg@n, else greedy accuracy) at the final
model and at its best checkpoint, held-out accuracy and training reward; and the run's seed and config.yaml."""

from typing import Any

from rlvr_vocab.eval import results
from rlvr_vocab.report.curves import headline
from rlvr_vocab.report.plotting import run_overrides

# Columns of a run's benchmark results: the headline measure at the final model and at the best evaluated step.
FINAL, BEST, BEST_STEP = " final", " best", " best_step"
# Metrics besides the benchmarks', named as `rlvr-vocab compare` names its columns.
HELD_OUT, REWARD = "acc_final", "reward"
METRIC_TITLES = {HELD_OUT: "held-out accuracy (final)", REWARD: "training reward (last logged)"}


def benchmark_names(runs) -> list[str]:
    """The benchmarks any of these runs has results for."""
    return sorted({b for r in runs for b in results.benchmarks_of(r.paths, r.m)})


def headline_measures(runs, benchmarks: list[str]) -> dict[str, str]:
    """Benchmark -> the measure the comparison reads: avg@n where every result of these runs has it, else greedy
    accuracy (results of the old protocol), so that no benchmark mixes the two."""
    summaries = [results.benchmarks_of(r.paths, r.m) for r in runs]
    return {b: headline(e for s in summaries for e in (s.get(b) or {}).values()) for b in benchmarks}


def benchmark_values(view, measures: dict[str, str]) -> dict[str, Any]:
    """Per benchmark (-> its headline measure): `<b> final` and `<b> best` and `<b> best_step`; None where the run
    has none.

    "final" is the final model (or the evaluation at max_steps): a run still training has no final value. "best" is
    the step with the highest value of the measure, the initial weights excluded.
    """
    summary = results.benchmarks_of(view.paths, view.m)
    out: dict[str, Any] = {}
    for b, measure in measures.items():
        final, _ = results.final_and_best(summary, b, view.m.get("max_steps"))
        steps = [v for v in (summary.get(b) or {}).values() if v.get("weights") != results.INITIAL
                 and v.get(measure) is not None]
        best = max(sorted(steps, key=lambda v: v["step"]), key=lambda v: v[measure], default=None)
        out[b + FINAL] = (final or {}).get(measure)
        out[b + BEST] = (best or {}).get(measure)
        out[b + BEST_STEP] = (best or {}).get("step")
    return out


def is_benchmark_column(column: str) -> bool:
    """A benchmark's accuracy (`<b> final`, `<b> best`), not its best step."""
    return column.endswith((FINAL, BEST))


def run_metrics(view, measures: dict[str, str]) -> dict[str, float | None]:
    """Every metric the comparison averages: benchmarks (-> headline measure) at final and best, held-out accuracy,
    reward."""
    values = benchmark_values(view, measures)
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
