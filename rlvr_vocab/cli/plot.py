"""`rlvr-vocab plot --sweep S [--vs S2]` or `plot RUN...`: reward, held-out accuracy and each benchmark's headline
measure (avg@n, else greedy accuracy) against step, one line per setting (with --vs: per arm), a min-max band over
seeds."""

from pathlib import Path

from rlvr_vocab.cli.common import find_run, registry, relative
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.registry.filters import select
from rlvr_vocab.report.plotting import plot_some_runs, plot_sweep


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="plot reward, held-out accuracy and benchmarks vs step (mean and band over seeds)")
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
    if args.sweep:
        runs = select(every, sweep=args.sweep)
        vs_runs = select(every, sweep=args.vs) if args.vs else None
        out = plot_sweep(args.sweep, runs, reg.root, args.out, args.vs, vs_runs)
    else:
        out = plot_some_runs([find_run(every, q) for q in args.runs], reg.root, args.out)
    print(relative(out))
    return 0
