"""`compare`'s table of one sweep: a row per run (its swept values and final metrics, each benchmark's headline
measure at the final model and the best checkpoint, the resources it used), or per setting (swept values but seed)
with the mean over its seeds and, for each benchmark column, its summary over seeds."""

from typing import NamedTuple

from rlvr_vocab.ops.usage import run_usage
from rlvr_vocab.report.measures import (
    BEST_STEP,
    benchmark_names,
    benchmark_values,
    headline_measures,
    is_benchmark_column,
)
from rlvr_vocab.report.plotting import run_overrides, sort_key, swept_keys
from rlvr_vocab.report.summaries import SMALL_N, SUMMARY_FIELDS, summary

# eval.final metrics shown besides accuracy (pass@k keys are found by their prefix).
EVAL_COLUMNS = ("format_rate", "mean_length")
# Per-run columns that describe the run rather than measure it: not averaged over seeds.
RUN_COLUMNS = ("run", "state", "step")
# Resources a run used (rlvr_vocab.ops.usage): a setting's row sums them over its runs.
USAGE_COLUMNS = ("attempts", "elapsed_h", "cpu_h", "gpu_h")
# Metrics whose spread over seeds gets a column of its own.
WITH_STD = ("reward", "acc_final")


class SweepTable(NamedTuple):
    rows: list[dict]
    by_setting: bool  # a row per setting (mean over seeds), else a row per run
    measures: dict[str, str]  # benchmark -> the measure its columns hold (avg@n or greedy accuracy)


def sweep_table(runs: list, per_run: bool = False) -> SweepTable:
    """A row per setting when the runs vary `seed` (unless `per_run`), else a row per run."""
    measures = headline_measures(runs, benchmark_names(runs))
    keys, table = rows(runs, measures)
    by_setting = "seed" in keys and not per_run
    return SweepTable(aggregate(keys, table) if by_setting else table, by_setting, measures)


def rows(runs, measures: dict[str, str]) -> tuple[list[str], list[dict]]:
    """The swept keys (seed last) and one row per run, sorted by the swept values."""
    values = [run_overrides(r) for r in runs]
    keys = swept_keys(values)
    extra = _eval_columns(runs)
    table = []
    for view, ov in zip(runs, values, strict=True):
        m, ev = view.m, view.m.get("eval") or {}
        initial, final = (ev.get("initial") or {}).get("accuracy"), ev.get("final") or {}
        table.append({
            "run": view.run_name, **{k: ov.get(k) for k in keys}, "state": view.state,
            "step": m.get("last_step"), "reward": (m.get("metrics") or {}).get("reward"),
            "acc_initial": initial, "acc_final": final.get("accuracy"),
            "acc_gain": _gain(initial, final.get("accuracy")),
            **{c: final.get(c) for c in extra},
            **benchmark_values(view, measures),
            **_usage_columns(view),
        })
    table.sort(key=lambda row: [sort_key(row[k]) for k in keys] + [row["run"]])
    return keys, table


def _usage_columns(view) -> dict:
    usage = run_usage(view)
    elapsed = usage["elapsed_s"]
    return {"attempts": usage["attempts"], "elapsed_h": elapsed / 3600 if elapsed is not None else None,
            "cpu_h": usage["cpu_h"], "gpu_h": usage["gpu_h"]}


def _eval_columns(runs) -> list[str]:
    """The eval.final metrics any run has: pass@k in order of k, then EVAL_COLUMNS."""
    found = {k for r in runs for k in ((r.m.get("eval") or {}).get("final") or {})}
    passk = sorted((k for k in found if k.startswith("pass@")), key=lambda k: sort_key(k[len("pass@"):]))
    return passk + [c for c in EVAL_COLUMNS if c in found]


def _gain(initial, final) -> float | None:
    return final - initial if initial is not None and final is not None else None


def aggregate(keys: list[str], table: list[dict]) -> list[dict]:
    """One row per setting (swept values but seed): `n` runs, each metric's mean, the std of WITH_STD, each
    benchmark column's summary over seeds (`<column>_std`, `_n`, `_ci_low`, `_ci_high`), and a `note` when n < 3."""
    import statistics  # here: the CLI's other commands never need it

    from rlvr_vocab.eval.stats import SMALL_N_NOTE

    setting = [k for k in keys if k != "seed"]
    metrics = [c for c in (table[0] if table else {}) if c not in keys and c not in RUN_COLUMNS
               and not c.endswith(BEST_STEP)]  # a best step is each run's own: not averaged
    groups: dict[tuple, list[dict]] = {}
    for row in table:
        groups.setdefault(tuple(row[k] for k in setting), []).append(row)
    out = []
    for values in sorted(groups, key=lambda v: [sort_key(x) for x in v]):
        group = groups[values]
        row = {**dict(zip(setting, values, strict=True)), "n": len(group)}
        smallest = len(group)
        for metric in metrics:
            numbers = [r[metric] for r in group if r[metric] is not None]
            if is_benchmark_column(metric):
                over_seeds = summary(numbers) or {"mean": None, "n": 0}
                row[metric] = over_seeds["mean"]
                row.update({f"{metric}_{f}": over_seeds.get(f) for f in SUMMARY_FIELDS})
                smallest = min(smallest, over_seeds["n"] or smallest)
                continue
            if metric in USAGE_COLUMNS:
                row[metric] = sum(numbers) if numbers else None
                continue
            row[metric] = statistics.fmean(numbers) if numbers else None
            if metric in WITH_STD:
                # Sample std over seeds; undefined for a single run.
                row[f"{metric}_std"] = statistics.stdev(numbers) if len(numbers) > 1 else None
        row["note"] = SMALL_N_NOTE if smallest < SMALL_N else None
        out.append(row)
    return out
