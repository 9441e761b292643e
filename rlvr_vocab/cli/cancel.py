"""`rlvr-vocab cancel`: scancel a run's (or a sweep's) jobs; the registry then shows CANCELLED. A search's sweep also
takes its worker jobs: the trials' runs name only workers that have started a trial."""

from rlvr_vocab.cli.common import experiments_root, find_run, registry
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.states import LIVE
from rlvr_vocab.launch.search_submission import worker_jobs
from rlvr_vocab.registry.filters import select
from rlvr_vocab.slurm import client as slurm_client


def add_parser(sub) -> None:
    p = sub.add_parser("cancel", help="cancel a run's or a sweep's (a search's workers too) SLURM jobs")
    p.add_argument("run", nargs="?")
    p.add_argument("--sweep")
    p.set_defaults(handler=run)


def run(args) -> int:
    runs = registry(args).runs()
    workers: list[str] = []
    if args.run:
        targets = [find_run(runs, args.run)]
    elif args.sweep:
        submitted = worker_jobs(experiments_root(args.root), args.sweep)
        # A search whose workers all wait in the queue has no run yet: not a sweep id mistyped.
        targets = [r for r in runs if r.sweep_id == args.sweep] if submitted else select(runs, sweep=args.sweep)
        workers = _live_workers([job for jobs in submitted for job in jobs])
    else:
        raise ConfigError("cancel", "needs a run or --sweep S")
    live = [r for r in targets if r.state in LIVE and r.job_id]
    if not live and not workers:
        print("nothing to cancel: no pending or running job")
        return 0
    # One scancel for all: a cancelled job is not requeued, and its job records CANCELLED on SIGTERM. A trial's run
    # is its worker's job: named once.
    try:
        slurm_client.cancel(list(dict.fromkeys([*(r.job_id for r in live), *workers])))
    except slurm_client.SlurmError as e:
        raise ConfigError("scancel", str(e)) from None
    for r in live:
        print(f"cancelled {r.exp_name}/{r.run_name} (SLURM job {r.job_id})")
    if workers:
        print(f"cancelled {len(workers)} worker job{'s' if len(workers) != 1 else ''} of search {args.sweep} "
              f"(SLURM job{'s' if len(workers) != 1 else ''} {', '.join(workers)})")
    return 0


def _live_workers(jobs: list[str]) -> list[str]:
    """Those of a search's worker jobs still in Slurm's queue: scancel refuses jobs long gone."""
    if not jobs:
        return []
    try:
        queued = slurm_client.queue_states(jobs)
    except slurm_client.SlurmError as e:
        raise ConfigError("squeue", str(e)) from None
    return [job for job in jobs if queued.get(job) in slurm_client.LIVE_STATES]
