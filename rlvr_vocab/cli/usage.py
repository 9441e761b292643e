"""`rlvr-vocab usage [--sweep S] [--since DATE] [--by exp|sweep|user] [--json]`: the resources runs used, totalled
per experiment, sweep or user: wall time, queue wait, CPU- and GPU-hours, peak memory, attempts, and what restarts
cost (steps redone, time lost). What each figure is: rlvr_vocab.ops.usage.

One sacct call, for the jobs still running and those whose accounting the registry's index does not hold yet.
"""

import json
import time
from datetime import datetime

from rlvr_vocab.cli.common import fmt_bytes, fmt_duration, parse_since, registry
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.ops import usage as accounting
from rlvr_vocab.run.manifest import parse_iso

_COLUMNS = ("runs", "attempts", "elapsed", "queue wait", "CPU-h", "GPU-h", "max RSS", "steps redone", "time lost")


def add_parser(sub) -> None:
    p = sub.add_parser("usage", help="resources used: CPU/GPU-hours, wall time, queue wait, memory, restarts")
    p.add_argument("--sweep", help="only this sweep")
    p.add_argument("--since", metavar="DATE", help="only runs created since DATE: an ISO date or time (local "
                   "unless it gives an offset), or a span back from now (30m, 12h, 2d, 1w)")
    p.add_argument("--by", default="exp", metavar="exp|sweep|user",
                   help="total per experiment (the default), sweep, or user (the run dir's owner)")
    p.add_argument("--json", action="store_true", help="machine-readable output: the totals and every run's figures")
    p.set_defaults(handler=run)


def parse_by(text: str) -> str:
    if text not in accounting.GROUPINGS:
        raise ConfigError(f"--by '{text}'", "is not a grouping", f"give one of {', '.join(accounting.GROUPINGS)}")
    return text


def run(args) -> int:
    by = parse_by(args.by)
    since = parse_since(args.since) if args.since is not None else None

    def pick(views: list) -> list:
        if args.sweep and not any(v.sweep_id == args.sweep for v in views):
            raise ConfigError(f"sweep '{args.sweep}'", "has no runs", "see `rlvr-vocab status` for sweep ids")
        return [v for v in views if (args.sweep is None or v.sweep_id == args.sweep)
                and (since is None or (parse_iso(v.created) or 0) >= since)]

    reg = registry(args)
    views = reg.runs(full=False, usage=True, pick=pick)
    now = time.time()
    usages = [accounting.run_usage(view, now) for view in views]
    groups = accounting.grouped(usages, by)
    totals = accounting.total(usages)
    if args.json:
        print(json.dumps({"by": by, "sweep": args.sweep,
                          "since": datetime.fromtimestamp(since).astimezone().isoformat() if since else None,
                          "groups": groups, "total": totals, "runs": usages, "slurm_error": reg.slurm_error},
                         indent=1))
        return 0
    if not usages:
        print("no runs")
        return 0
    cells = [[g[by], *_cells(g)] for g in groups] + [["total", *_cells(totals)]]
    header = [by, *_COLUMNS]
    widths = [max(map(len, column)) for column in zip(header, *cells, strict=True)]
    for row in [header, *cells]:
        print("  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]))
    unaccounted = [u for u in usages if u["cpu_h"] is None]
    if unaccounted:
        local = sum(1 for u in unaccounted if not u["slurm_jobs"])
        said = f"; {reg.slurm_error}" if reg.slurm_error else ""
        print(f"{len(unaccounted)} run{'s' * (len(unaccounted) != 1)} without Slurm accounting ({local} local: "
              f"elapsed from run.json; the others' jobs are unknown to sacct{said})")
    return 0


def _cells(figures: dict) -> list[str]:
    return [str(figures["runs"]), str(figures["attempts"] or 0), _duration(figures["elapsed_s"]),
            _duration(figures["wait_s"]), fmt_hours(figures["cpu_h"]), fmt_hours(figures["gpu_h"]),
            fmt_bytes(figures["max_rss"]), str(figures["steps_redone"] or 0), _duration(figures["lost_s"])]


def _duration(seconds: float | None) -> str:
    """`-` for unknown, `0m00s` for none."""
    return "-" if seconds is None else fmt_duration(seconds) if seconds else "0m00s"


def fmt_hours(hours: float | None) -> str:
    if hours is None:
        return "-"
    return f"{hours:,.0f}" if hours >= 100 else f"{hours:.1f}" if hours >= 10 else f"{hours:.3f}"


def describe(usage: dict) -> str:
    """One line of a run's figures, for `show`."""
    attempts, jobs = usage["attempts"], usage["slurm_runs"]
    parts = [f"elapsed {_duration(usage['elapsed_s'])}", f"queue wait {_duration(usage['wait_s'])}",
             f"{fmt_hours(usage['cpu_h'])} CPU-h", f"{fmt_hours(usage['gpu_h'])} GPU-h",
             f"max RSS {fmt_bytes(usage['max_rss'])}", f"{attempts} attempt{'s' * (attempts != 1)}"]
    if jobs is not None:
        parts.append(f"{jobs} Slurm run{'s' * (jobs != 1)}")
    lost = f", {_duration(usage['lost_s'])} lost" if usage["lost_s"] else ""
    parts.append(f"{usage['steps_redone']} step{'s' * (usage['steps_redone'] != 1)} redone{lost}")
    text = ", ".join(parts)
    if usage["slurm_jobs_unknown"]:
        text += f"; no Slurm accounting of job {', '.join(usage['slurm_jobs_unknown'])}"
    return text
