"""`rlvr-vocab plot --sweep S [--vs S2]` or `plot RUN...`: reward, held-out accuracy and each benchmark's accuracy
against step, one line per setting (with --vs: per arm), a min-max band over seeds."""

from pathlib import Path

from rlvr_vocab.cli.common import find_run, registry, relative, select
from rlvr_vocab.errors import ConfigError
from rlvr_vocab.plotting import group_by_arm, group_by_setting, plot_runs


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="plot reward, held-out and benchmark accuracy vs step (mean and band over seeds)")
    p.add_argument("runs", nargs="*", help="run ids, names, exp/names or unique prefixes (instead of --sweep)")
    p.add_argument("--sweep", help="plot every run of this sweep")
    p.add_argument("--vs", metavar="S2", help="and every run of this sweep: one line per arm")
    p.add_argument("--out", type=Path,
                   help="PNG to write (default: <root>/_plots/<sweep>[-vs-<S2>] or <first run>.png)")
    p.set_defaults(handler=run)


def run(args) -> int:
    if args.vs and not args.sweep:
        raise ConfigError("plot", "--vs needs --sweep", "e.g. `rlvr-vocab plot --sweep S --vs S2`")
    if bool(args.sweep) == bool(args.runs):
        raise ConfigError("plot", "needs either --sweep S or run names, not both", "e.g. `rlvr-vocab plot --sweep S`")
    reg = registry(args)
    # Curves come from the run dirs: SLURM's view of the jobs is not needed.
    every = reg.runs(ask_slurm=False)
    if args.vs:
        arms = {sweep: select(every, sweep=sweep) for sweep in (args.sweep, args.vs)}
        runs_by_group = group_by_arm(arms)
        name, title = f"{args.sweep}-vs-{args.vs}", f"sweep {args.sweep} vs {args.vs}"
    elif args.sweep:
        runs_by_group = group_by_setting(select(every, sweep=args.sweep))
        name, title = args.sweep, f"sweep {args.sweep}"
    else:
        found = {r.run_dir: r for r in (find_run(every, q) for q in args.runs)}  # a run named twice is drawn once
        runs = list(found.values())
        runs_by_group = group_by_setting(runs)
        name, title = runs[0].run_name, _title(runs)
    groups = {label: [r.run_dir for r in group] for label, group in runs_by_group.items()}
    out = plot_runs(groups, args.out or reg.root / "_plots" / f"{name}.png", title)
    print(relative(out))
    return 0


def _title(runs) -> str:
    names = [f"{r.exp_name}/{r.run_name}" for r in runs]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
