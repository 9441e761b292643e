"""`rlvr-vocab status`: every run's state, progress and links, one sacct call per refresh."""

import time

from rlvr_vocab.cli.common import console as make_console
from rlvr_vocab.cli.common import fmt_duration, fmt_number, registry, select

# --watch refreshes no faster than this: sacct polling in loops loads the controller.
WATCH_INTERVAL_S = 30


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="table of runs and their states")
    p.add_argument("--exp", help="only this experiment")
    p.add_argument("--sweep", help="only this sweep")
    p.add_argument("--state", help="only runs in this state (e.g. FAILED)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--watch", action="store_true", help=f"refresh every {WATCH_INTERVAL_S} s")
    p.set_defaults(handler=run)


def run(args) -> int:
    while True:
        if args.json:
            rows = select(registry(args).status_rows(), args.exp, args.sweep, args.state)
            print(f"[{','.join(r.json for r in rows)}]")
        else:
            render(select(registry(args).runs(full=False), args.exp, args.sweep, args.state))
        if not args.watch:
            return 0
        time.sleep(WATCH_INTERVAL_S)
        print("\033[2J\033[H", end="")


def render(runs) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("run", "experiment", "state", "job", "step", "reward", "checkpoint", "elapsed", "W&B"):
        table.add_column(column)
    styles = {"COMPLETED": "green", "RUNNING": "cyan", "FAILED": "red", "LOST": "red", "UNKNOWN": "yellow"}
    for r in runs:
        j = r.to_json()
        state = f"{r.state} (stale)" if r.stale else r.state
        step = f"{j['last_step'] or 0}/{j['max_steps'] or '?'}"
        table.add_row(
            r.run_name, r.exp_name, f"[{styles.get(r.state, 'white')}]{state}[/]", j["job_id"] or "-", step,
            fmt_number(j["reward"]), j["last_checkpoint"] or "-", fmt_duration(j["elapsed_s"]),
            j["wandb_url"] or j["wandb_id"] or "-",
        )
    console = make_console()
    console.print(table)
    notes = [(r, r.note) for r in runs if r.note]
    for r, note in notes:
        # Notes quote errors and paths: their brackets are text, not rich markup.
        console.print(f"  {escape(r.run_name)}: {escape(note)}", highlight=False)
    if not runs:
        console.print("no runs")
