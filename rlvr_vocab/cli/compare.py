"""`rlvr-vocab compare --sweep S`: one row per run, swept values and final metrics as columns."""

import csv
import json
import sys

from rlvr_vocab.cli.common import console as make_console
from rlvr_vocab.cli.common import fmt_number, registry, select

IGNORED = {"run_name", "sweep_id", "hydra.launcher.wait"}


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare the runs of a sweep")
    p.add_argument("--sweep", required=True)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def _overrides(view) -> dict[str, str]:
    raw = view.m.get("overrides") or (view.submissions[-1].get("overrides") if view.submissions else []) or []
    pairs = (o.split("=", 1) for o in raw if "=" in o)
    return {k.lstrip("+~"): v.strip("'\"") for k, v in pairs if k.lstrip("+~") not in IGNORED}


def rows(runs) -> tuple[list[str], list[dict]]:
    values = [_overrides(r) for r in runs]
    keys = sorted({k for v in values for k in v if len({x.get(k) for x in values}) > 1})
    table = []
    for view, ov in zip(runs, values, strict=True):
        m, ev = view.m, view.m.get("eval") or {}
        table.append({
            "run": view.run_name, **{k: ov.get(k) for k in keys}, "state": view.state,
            "step": m.get("last_step"), "reward": (m.get("metrics") or {}).get("reward"),
            "acc_initial": (ev.get("initial") or {}).get("accuracy"),
            "acc_final": (ev.get("final") or {}).get("accuracy"),
        })
    table.sort(key=lambda row: [_sortable(row[k]) for k in keys] + [row["run"]])
    return keys, table


def _sortable(value):
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def run(args) -> int:
    runs = select(registry(args).runs(), sweep=args.sweep)
    keys, table = rows(runs)
    if args.json:
        print(json.dumps(table, indent=1))
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(table[0]) if table else ["run"])
        writer.writeheader()
        writer.writerows(table)
    else:
        from rich.table import Table

        out = Table(box=None, header_style="bold", title=f"sweep {args.sweep}")
        for column in table[0] if table else ["run"]:
            out.add_column(column)
        for row in table:
            out.add_row(*[fmt_number(v) for v in row.values()])
        make_console().print(out)
    return 0
