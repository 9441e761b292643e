"""`rlvr-vocab cancel`: scancel a run's (or a sweep's) jobs; the registry then shows CANCELLED."""

from rlvr_vocab.cli.common import find_run, registry
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.states import LIVE
from rlvr_vocab.registry.filters import select
from rlvr_vocab.slurm import client as slurm_client


def add_parser(sub) -> None:
    p = sub.add_parser("cancel", help="cancel a run's or a sweep's SLURM jobs")
    p.add_argument("run", nargs="?")
    p.add_argument("--sweep")
    p.set_defaults(handler=run)


def run(args) -> int:
    runs = registry(args).runs()
    if args.run:
        targets = [find_run(runs, args.run)]
    elif args.sweep:
        targets = select(runs, sweep=args.sweep)
    else:
        raise ConfigError("cancel", "needs a run or --sweep S")
    live = [r for r in targets if r.state in LIVE and r.job_id]
    if not live:
        print("nothing to cancel: no pending or running job")
        return 0
    # One scancel for all: a cancelled job is not requeued, and its job records CANCELLED on SIGTERM.
    try:
        slurm_client.cancel([r.job_id for r in live])
    except slurm_client.SlurmError as e:
        raise ConfigError("scancel", str(e)) from None
    for r in live:
        print(f"cancelled {r.exp_name}/{r.run_name} (SLURM job {r.job_id})")
    return 0
