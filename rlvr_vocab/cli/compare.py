"""`rlvr-vocab compare --sweep S`: the sweep's settings side by side, swept values and final metrics as columns.

When the runs vary `seed`, each row is a setting (its swept values but seed) with the mean over its seeds and the
standard deviation of reward and final accuracy; `--runs` shows one row per run instead.
"""

import csv
import json
import sys

from rlvr_vocab.cli.common import console as make_console
from rlvr_vocab.cli.common import fmt_number, registry, select
from rlvr_vocab.plotting import run_overrides, sort_key, swept_keys

# eval.final metrics shown besides accuracy (pass@k keys are found by their prefix).
EVAL_COLUMNS = ("format_rate", "mean_length")
# Per-run columns that describe the run rather than measure it: not averaged over seeds.
RUN_COLUMNS = ("run", "state", "step")
# Metrics whose spread over seeds gets a column of its own.
WITH_STD = ("reward", "acc_final")


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare the runs of a sweep (mean over seeds per setting)")
    p.add_argument("--sweep", required=True)
    p.add_argument("--runs", action="store_true", help="one row per run, even when the sweep varies seed")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def rows(runs) -> tuple[list[str], list[dict]]:
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
        })
    table.sort(key=lambda row: [sort_key(row[k]) for k in keys] + [row["run"]])
    return keys, table


def _eval_columns(runs) -> list[str]:
    """The eval.final metrics any run has: pass@k in order of k, then EVAL_COLUMNS."""
    found = {k for r in runs for k in ((r.m.get("eval") or {}).get("final") or {})}
    passk = sorted((k for k in found if k.startswith("pass@")), key=lambda k: sort_key(k[len("pass@"):]))
    return passk + [c for c in EVAL_COLUMNS if c in found]


def _gain(initial, final) -> float | None:
    return final - initial if initial is not None and final is not None else None


def aggregate(keys: list[str], table: list[dict]) -> list[dict]:
    """One row per setting (swept values but seed): `n` runs, each metric's mean, and the std of WITH_STD."""
    import statistics  # here: the CLI's other commands never need it

    setting = [k for k in keys if k != "seed"]
    metrics = [c for c in (table[0] if table else {}) if c not in keys and c not in RUN_COLUMNS]
    groups: dict[tuple, list[dict]] = {}
    for row in table:
        groups.setdefault(tuple(row[k] for k in setting), []).append(row)
    out = []
    for values in sorted(groups, key=lambda v: [sort_key(x) for x in v]):
        group = groups[values]
        row = {**dict(zip(setting, values, strict=True)), "n": len(group)}
        for metric in metrics:
            numbers = [r[metric] for r in group if r[metric] is not None]
            row[metric] = statistics.fmean(numbers) if numbers else None
            if metric in WITH_STD:
                # Sample std over seeds; undefined for a single run.
                row[f"{metric}_std"] = statistics.stdev(numbers) if len(numbers) > 1 else None
        out.append(row)
    return out


def run(args) -> int:
    runs = select(registry(args).runs(), sweep=args.sweep)
    keys, table = rows(runs)
    by_setting = "seed" in keys and not args.runs
    if by_setting:
        table = aggregate(keys, table)
    if args.json:
        print(json.dumps(table, indent=1))
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(table[0]) if table else ["run"])
        writer.writeheader()
        writer.writerows(table)
    else:
        from rich.table import Table

        title = f"sweep {args.sweep}"
        if by_setting:
            title += ": mean over seeds per setting (--runs: one row per run)"
        out = Table(box=None, header_style="bold", title=title)
        for column in table[0] if table else ["run"]:
            out.add_column(column)
        for row in table:
            out.add_row(*[fmt_number(v) for v in row.values()])
        make_console().print(out)
    return 0
