"""`rlvr-vocab compare --sweep S [--vs S2]`: the sweep's settings side by side, swept values and final metrics as
columns, each benchmark's headline measure (avg@n, else greedy accuracy) at the final model and at the best
checkpoint, and the resources each run used
(attempts, elapsed hours, CPU- and GPU-hours: rlvr_vocab.ops.usage; a setting's row sums its runs').

When the runs vary `seed`, each row is a setting (its swept values but seed) with the mean over its seeds and the
standard deviation of reward and final accuracy, and for each benchmark column its mean, std, n and 95% bootstrap
interval; `--runs` shows one row per run instead. `--vs S2` compares two arms: first the answer, the lines the report
leads with (per benchmark B - A paired by seed and problem with its interval, P(B > A), the difference detectable at
this many seeds, or below 3 seeds those needed to detect `--effect`; and overall), then per benchmark each arm's mean
over seeds and the difference S2 - S paired by seed. The tables are made by rlvr_vocab.report (sweep_table,
comparison, answer, terminal).

A search id given to `--sweep` or `--vs` of a comparison of two arms stands for its best trial's runs (all its
seeds); alone, `--sweep SEARCH` compares all its trials' runs, as a sweep's.
"""

import argparse
import csv
import json
import sys

from rlvr_vocab.cli.common import console as make_console
from rlvr_vocab.cli.common import registry, with_best_trials
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.registry.filters import select
from rlvr_vocab.report.comparison import compare_sweeps, csv_rows
from rlvr_vocab.report.summaries import DEFAULT_EFFECT
from rlvr_vocab.report.sweep_table import sweep_table
from rlvr_vocab.report.terminal import Printout, sweep_printout, vs_printout


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare the runs of a sweep (mean over seeds per setting), or two sweeps")
    p.add_argument("--sweep", required=True, help="a sweep id, or a search id (with --vs: its best trial)")
    p.add_argument("--runs", action="store_true", help="one row per run, even when the sweep varies seed")
    p.add_argument("--vs", metavar="S2", help="compare with this sweep (or search: its best trial) per benchmark: "
                   "S2 - S paired by seed")
    p.add_argument("--effect", type=effect_arg, default=DEFAULT_EFFECT,
                   help=f"with --vs: the difference to say how many seeds would detect (default {DEFAULT_EFFECT})")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def effect_arg(text: str) -> float:
    """--effect: a difference of the headline measure, between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a difference between 0 and 1 (e.g. 0.02: 2 points)")
    return value


def run(args) -> int:
    if args.vs:
        if args.runs:
            raise ConfigError("compare", "--runs and --vs do not go together", "compare runs of one sweep with --runs")
        reg = registry(args)
        runs, notes = with_best_trials(reg.runs(), reg.root, [args.sweep, args.vs])
        return _run_vs(args, runs, notes)
    # Only the sweep's runs are resolved against SLURM, and their jobs' resources asked for (those not in the index).
    runs = registry(args).runs(usage=True, pick=lambda views: [v for v in views if v.sweep_id == args.sweep])
    table = sweep_table(select(runs, sweep=args.sweep), per_run=args.runs)
    if args.json:
        print(json.dumps(table.rows, indent=1))
    elif args.csv:
        _write_csv(table.rows)
    else:
        _print(sweep_printout(args.sweep, table))
    return 0


def _run_vs(args, runs: list, notes: list[str]) -> int:
    comparison = compare_sweeps(runs, args.sweep, args.vs, args.effect)
    if args.json:
        print(json.dumps(comparison.result, indent=1))
    elif args.csv:
        _write_csv(csv_rows(comparison.result["rows"]))
    else:
        for line in notes:  # which trial stands for a search (JSON and CSV stay machine-readable)
            print(line)
        _print(vs_printout(comparison))
    return 0


def _write_csv(table: list[dict]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=list(table[0]) if table else ["run"])
    writer.writeheader()
    writer.writerows(table)


def _print(printout: Printout) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", title=printout.title)
    for column in printout.columns:
        table.add_column(column)
    for row in printout.rows:
        table.add_row(*row)
    console = make_console()
    # The answer first, as plain text: no rich markup in sweep names or intervals, one line however wide.
    for line in printout.lead:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(table)
    # Plain text: no rich markup in sweep names or intervals, and one line per sentence however wide.
    for line in printout.notes:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for line in printout.rich_notes:
        console.print(line)
