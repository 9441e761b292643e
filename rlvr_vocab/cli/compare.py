"""`rlvr-vocab compare --sweep S [--vs S2]`: the sweep's settings side by side, swept values and final metrics as
columns, each benchmark's accuracy at the final model and at the best checkpoint, and the resources each run used
(attempts, elapsed hours, CPU- and GPU-hours: rlvr_vocab.ops.usage; a setting's row sums its runs').

When the runs vary `seed`, each row is a setting (its swept values but seed) with the mean over its seeds and the
standard deviation of reward and final accuracy, and for each benchmark column its mean, std, n and 95% bootstrap
interval; `--runs` shows one row per run instead. `--vs S2` compares two arms per benchmark: each arm's mean over
seeds and the difference S2 - S paired by seed, with its interval, then the answer in plain words, the same sentences
as the report's (rlvr_vocab.report).
"""

import csv
import json
import sys

from rlvr_vocab import report
from rlvr_vocab.cli.common import console as make_console
from rlvr_vocab.cli.common import fmt_number, registry, select
from rlvr_vocab.errors import ConfigError
from rlvr_vocab.ops.usage import run_usage
from rlvr_vocab.plotting import run_overrides, sort_key, swept_keys

# eval.final metrics shown besides accuracy (pass@k keys are found by their prefix).
EVAL_COLUMNS = ("format_rate", "mean_length")
# Per-run columns that describe the run rather than measure it: not averaged over seeds.
RUN_COLUMNS = ("run", "state", "step")
# Resources a run used (rlvr_vocab.ops.usage): a setting's row sums them over its runs.
USAGE_COLUMNS = ("attempts", "elapsed_h", "cpu_h", "gpu_h")
# Metrics whose spread over seeds gets a column of its own.
WITH_STD = ("reward", "acc_final")
# What a benchmark column's summary over seeds adds besides its mean.
SUMMARY_FIELDS = ("std", "n", "ci_low", "ci_high")
# The short column names of the terminal table, said under it (CSV and JSON keep the names as they are).
LEGEND = {
    "n": "seeds averaged",
    "reward": "training reward at the last logged step",
    "acc_initial": "held-out accuracy (greedy) before GRPO",
    "acc_final": "held-out accuracy (greedy) of the final model",
    "acc_gain": "acc_final - acc_initial",
    "format_rate": "share of held-out answers in the expected format",
    "mean_length": "mean length of the held-out completions (tokens)",
}
# Under `compare --vs`'s table: what its metrics' "final model" and "best checkpoint" are.
VS_LEGEND = ("final model: each run's last weights; best checkpoint: each run's best evaluated checkpoint, chosen on "
             "the benchmark itself (optimistic)")


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare the runs of a sweep (mean over seeds per setting), or two sweeps")
    p.add_argument("--sweep", required=True)
    p.add_argument("--runs", action="store_true", help="one row per run, even when the sweep varies seed")
    p.add_argument("--vs", metavar="S2", help="compare with this sweep per benchmark: S2 - S paired by seed")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def rows(runs) -> tuple[list[str], list[dict]]:
    """The swept keys (seed last) and one row per run, sorted by the swept values."""
    values = [run_overrides(r) for r in runs]
    keys = swept_keys(values)
    extra = _eval_columns(runs)
    benchmarks = report.benchmark_names(runs)
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
            **report.benchmark_values(view, benchmarks),
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
               and not c.endswith(report.BEST_STEP)]  # a best step is each run's own: not averaged
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
            if _is_benchmark(metric):
                summary = report.summary(numbers) or {"mean": None, "n": 0}
                row[metric] = summary["mean"]
                row.update({f"{metric}_{f}": summary.get(f) for f in SUMMARY_FIELDS})
                smallest = min(smallest, summary["n"] or smallest)
                continue
            if metric in USAGE_COLUMNS:
                row[metric] = sum(numbers) if numbers else None
                continue
            row[metric] = statistics.fmean(numbers) if numbers else None
            if metric in WITH_STD:
                # Sample std over seeds; undefined for a single run.
                row[f"{metric}_std"] = statistics.stdev(numbers) if len(numbers) > 1 else None
        row["note"] = SMALL_N_NOTE if smallest < report.SMALL_N else None
        out.append(row)
    return out


def _is_benchmark(column: str) -> bool:
    return column.endswith((report.FINAL, report.BEST))


def run(args) -> int:
    if args.vs:
        runs = registry(args).runs()
        if args.runs:
            raise ConfigError("compare", "--runs and --vs do not go together", "compare runs of one sweep with --runs")
        return _run_vs(args, runs)
    # Only the sweep's runs are resolved against SLURM, and their jobs' resources asked for (those not in the index).
    runs = registry(args).runs(usage=True, pick=lambda views: [v for v in views if v.sweep_id == args.sweep])
    runs = select(runs, sweep=args.sweep)
    keys, table = rows(runs)
    by_setting = "seed" in keys and not args.runs
    if by_setting:
        table = aggregate(keys, table)
    if args.json:
        print(json.dumps(table, indent=1))
    elif args.csv:
        _write_csv(table)
    else:
        _print_table(args.sweep, table, by_setting)
    return 0


def _write_csv(table: list[dict]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=list(table[0]) if table else ["run"])
    writer.writeheader()
    writer.writerows(table)


def _print_table(sweep: str, table: list[dict], by_setting: bool) -> None:
    from rich.table import Table

    title = f"sweep {sweep}"
    if by_setting:
        title += ": mean over seeds per setting (--runs: one row per run)"
    columns = _shown_columns(table)
    out = Table(box=None, header_style="bold", title=title)
    for column in columns or ["run"]:
        out.add_column(column)
    for row in table:
        out.add_row(*[_cell(row, c) if by_setting and _is_benchmark(c) else fmt_number(row[c]) for c in columns])
    console = make_console()
    console.print(out)
    legend = [f"{c}: {LEGEND[c]}" for c in LEGEND if c in columns] + \
        ["pass@k: held-out pass@k of the final model"] * any(c.startswith("pass@") for c in columns) + \
        ["_std: sample std over seeds"] * any(c.endswith("_std") for c in columns)
    if legend:
        console.print("columns: " + "; ".join(legend), markup=False, highlight=False, soft_wrap=True)
    if by_setting and any(_is_benchmark(c) for c in columns):
        console.print("benchmark columns: mean ± std over seeds [95% bootstrap interval of the mean] (n when it "
                      "differs from the setting's)")
    if any(row.get("note") for row in table):
        console.print(f"note: some settings have n < {report.SMALL_N} seeds: their intervals are not meaningful")


def _shown_columns(table: list[dict]) -> list[str]:
    """The table's columns but a benchmark summary's parts (shown in its cell) and the note (said below it)."""
    parts = {f"{c}_{f}" for c in (table[0] if table else {}) if _is_benchmark(c) for f in SUMMARY_FIELDS}
    return [c for c in (table[0] if table else {}) if c not in parts and c != "note"]


def _cell(row: dict, column: str) -> str:
    """A benchmark column of a setting: "mean ± std [low, high]" and its n when not every run of the setting has it."""
    if row[column] is None:
        return "-"
    text = f"{row[column]:.3f}"
    if row[f"{column}_std"] is not None:
        text += f" ± {row[f'{column}_std']:.3f}"
    text += f" [{row[f'{column}_ci_low']:.3f}, {row[f'{column}_ci_high']:.3f}]"
    return text + (f" (n={row[f'{column}_n']})" if row[f"{column}_n"] != row["n"] else "")


def _run_vs(args, runs: list) -> int:
    arms = report.load_arms(runs, args.sweep, args.vs)
    result = report.comparison_json(arms)
    if args.json:
        print(json.dumps(result, indent=1))
    elif args.csv:
        _write_csv([_flat(row) for row in result["rows"]])
    else:
        _print_vs(result, *arms)
    return 0


def _flat(row: dict) -> dict:
    """A comparison row as one CSV line: each arm's summary and the difference as columns of their own."""
    flat = {"setting": row["label"], "metric": row["metric"]}
    for arm in ("a", "b"):
        flat.update({f"{arm}_{f}": (row[arm] or {}).get(f) for f in ("mean", *SUMMARY_FIELDS)})
    diff = row["diff"] or {}
    flat.update({f"diff_{f}": diff.get(f) for f in ("mean_diff", *SUMMARY_FIELDS)})
    flat.update({f: " ".join(diff.get(f) or []) for f in ("seeds", "a_only", "b_only")})
    return {**flat, "verdict": row["verdict"], "note": row["note"]}


def _print_vs(result: dict, a, b) -> None:
    from rich.table import Table

    rows = result["rows"]
    several = len({r["label"] for r in rows}) > 1
    out = Table(box=None, header_style="bold", title=f"A = {a.sweep} vs B = {b.sweep}: per metric, each arm's mean "
                f"± std (n) [95% CI] over seeds; B - A paired by seed")
    for column in ["setting"] * several + ["metric", f"A {a.sweep}", f"B {b.sweep}", "B - A [95% CI]",
                                           "paired on seeds", "unpaired seeds", "verdict"]:
        out.add_column(column)
    for r in rows:
        diff, digits = r["diff"], report.decimals(r)
        out.add_row(*[r["label"]] * several, report.metric_title(r["metric"]), _summary_text(r["a"], digits),
                    _summary_text(r["b"], digits), _diff_text(diff, digits), ", ".join(diff["seeds"]) if diff else "-",
                    report.unpaired_text(diff, a.name, b.name) if diff else "-",
                    r["verdict"] + (" *" if r["note"] else ""))
    console = make_console()
    console.print(out)
    said = [VS_LEGEND]
    if any(r["diff"] and (r["diff"]["a_only"] or r["diff"]["b_only"]) for r in rows):
        said.append("B - A is over the paired seeds only, each arm's mean over all its seeds: they need not agree")
    if result["note"]:
        said.append(f"* n < {report.SMALL_N} seeds: interval not meaningful")
    # Plain text: no rich markup in sweep names or intervals, and one line per sentence however wide.
    for line in said:
        console.print(f"note: {line}", markup=False, highlight=False, soft_wrap=True)
    console.print("answer:", markup=False, soft_wrap=True)
    for line in report.answer_lines(rows, a, b):
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def _summary_text(s: dict | None, digits: int) -> str:
    if s is None:
        return "-"
    std = f" ± {report.number(s['std'], digits=digits)}" if s["std"] is not None else ""
    return (f"{report.number(s['mean'], digits=digits)}{std} (n={s['n']}) "
            f"[{report.number(s['ci_low'], digits=digits)}, {report.number(s['ci_high'], digits=digits)}]")


def _diff_text(diff: dict | None, digits: int) -> str:
    if diff is None:
        return "-"
    low, high = (report.number(diff[k], True, digits) for k in ("ci_low", "ci_high"))
    return f"{report.number(diff['mean_diff'], True, digits)} [{low}, {high}]"
