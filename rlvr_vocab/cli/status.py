"""`rlvr-vocab status`: the most recent runs' states, progress and links, and how many runs are in each state.

Filters run in the registry's index, and only the rows shown are rendered (rendering 10,000 rows with rich took
8 s). One sacct call per refresh, for the matched runs whose state SLURM may still change; the registry notifies
the deaths it finds that their jobs could not report.
"""

import argparse
import json
import os
import sys
import time

from rlvr_vocab.cli.common import fmt_bytes, fmt_duration, parse_since, parse_state, registry, root_origin
from rlvr_vocab.registry import RunFilter
from rlvr_vocab.registry.filters import StatusRows
from rlvr_vocab.report.terminal import fmt_number

# --watch refreshes no faster than this: sacct polling in loops loads the controller.
WATCH_INTERVAL_S = 30
# Rows the table shows unless --limit or --all says otherwise (--json lists every run unless --limit says).
TABLE_LIMIT = 50
_COLUMNS = ("run", "experiment", "state", "job", "step", "reward", "checkpoint", "elapsed", "W&B")
# ANSI colours of states on a terminal: green, cyan, red, yellow, magenta, blue.
_STATE_COLOURS = {"COMPLETED": "32", "RUNNING": "36", "FAILED": "31", "LOST": "31", "UNKNOWN": "33", "STALLED": "35",
                  "PRUNED": "34"}


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive whole number")
    return int(text)


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="table of runs and their states")
    p.add_argument("--exp", help="only this experiment")
    p.add_argument("--sweep", help="only this sweep")
    p.add_argument("--state", help="only runs in this state (e.g. FAILED; PRUNED: a search's trials stopped early)")
    p.add_argument("--since", metavar="DATE", help="only runs created since DATE: an ISO date or time (local "
                   "unless it gives an offset), or a span back from now (30m, 12h, 2d, 1w)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--limit", type=positive_int, metavar="N",
                       help=f"only the N most recent runs (the table's default: {TABLE_LIMIT}; --json: every run)")
    shown.add_argument("--all", action="store_true", help="every run in the table")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--wide", action="store_true", help="more columns: the run dir's disk use")
    p.add_argument("--watch", action="store_true", help=f"refresh every {WATCH_INTERVAL_S} s")
    p.set_defaults(handler=run)


def run(args) -> int:
    state = parse_state(args.state)
    while True:
        # A span back from now moves with every refresh.
        match = RunFilter(args.exp, args.sweep, state, parse_since(args.since) if args.since is not None else None)
        reg = registry(args)
        if args.json:
            print("[", ",".join(reg.status(match, newest=args.limit).rows), "]", sep="")
        else:
            newest = None if args.all else args.limit or TABLE_LIMIT
            # Where it looked, when an empty table is no filter's doing.
            filtered = any(value is not None for value in match) and reg.root.is_dir()
            render(reg.status(match, by_created=True, newest=newest), wide=args.wide,
                   where=None if filtered else f"{reg.root.resolve()} ({root_origin(args)})")
        if not args.watch:
            return 0
        time.sleep(WATCH_INTERVAL_S)
        print("\033[2J\033[H", end="")


def render(page: StatusRows, wide: bool = False, where: str | None = None) -> None:
    """The rows as a table, oldest first (the newest stay in view above the prompt), then the counts per state
    (`where`: the root read, named when there are no runs).

    Plain aligned text, the states coloured on a terminal: importing rich and laying out its table cost `status`
    more than reading 1,000 runs does.
    """
    rows = [json.loads(text) for text in page.rows]
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    lines = []
    if rows:
        columns = (*_COLUMNS, "disk") if wide else _COLUMNS
        cells = [[r["run_name"], r["exp_name"], f"{r['state']}{' (stale)' if r['stale'] else ''}", r["job_id"] or "-",
                  f"{r['last_step'] or 0}/{r['max_steps'] or '?'}", fmt_number(r["reward"]),
                  r["last_checkpoint"] or "-", fmt_duration(r["elapsed_s"]), r["wandb_url"] or r["wandb_id"] or "-",
                  *([fmt_bytes(r.get("disk_bytes"))] if wide else [])]
                 for r in rows]
        widths = [max(map(len, column)) for column in zip(columns, *cells, strict=True)]
        header = _line(columns, widths)
        lines.append(f"\033[1m{header}\033[0m" if colour else header)
        lines += [_line(row, widths, _STATE_COLOURS.get(r["state"]) if colour else None)
                  for r, row in zip(rows, cells, strict=True)]
        lines += [f"  {r['run_name']}: {r['note']}" for r in rows if r["note"]]
    lines.append(footer(page.counts, len(rows), where))
    print("\n".join(lines))


def _line(cells: list[str] | tuple[str, ...], widths: list[int], state_colour: str | None = None) -> str:
    """Cells padded to their column's width, two spaces apart; the state's in its ANSI colour, if given."""
    padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
    if state_colour:
        padded[2] = f"\033[{state_colour}m{padded[2]}\033[0m"
    return "  ".join(padded).rstrip()


def footer(counts: dict[str, int], shown: int, where: str | None = None) -> str:
    """`10000 runs: 9500 COMPLETED, 300 FAILED; showing the 50 most recent, newest last; --all for every run`."""
    total = sum(counts.values())
    if not total:
        return f"no runs under {where}" if where else "no runs"
    by_state = ", ".join(f"{n} {state}" for state, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    text = f"{total} run{'s' if total > 1 else ''}: {by_state}"
    if shown < total:
        return f"{text}; showing the {shown} most recent, newest last; --all for every run"
    return f"{text}; newest last" if total > 1 else text
