"""`rlvr-vocab resume`: continue runs from their latest complete checkpoint, in the same run dir, the way they ran.

A run submitted by a sweep (`--multirun`) is submitted again with its launcher settings; a run of an sbatch wrapper
goes back through `sbatch` with the same wrapper and the resources Slurm gave it; a local run runs here. `--local`
runs any of them here instead. The run keeps its W&B id; extra overrides (more steps, more time) are appended, but
one that changes the experiment is refused with the keys it changes, unless `--force` (this attempt only). A run
whose job is pending or running is refused: two jobs must never write one run dir, however many resumes race.

A search trial's run goes through its search's launcher as a run of its own. One whose trial the search still holds,
and `--sweep` of a search, are refused: submitting the search again resumes them.
"""

from rlvr_vocab.cli.common import find_run, registry
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.states import RunState
from rlvr_vocab.launch.resume import (
    check_identity,
    check_not_a_search,
    leave_to_searches,
    resume_run,
    resume_sweep,
    select_targets,
)
from rlvr_vocab.registry.filters import select


def add_parser(sub) -> None:
    p = sub.add_parser("resume", help="resubmit runs from their latest checkpoint")
    p.add_argument("run", nargs="?", help="run id, name or unique prefix")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. training.max_steps=2000")
    p.add_argument("--sweep", help="every unfinished run of this sweep")
    p.add_argument("--failed", action="store_true", help="only runs that failed, timed out, were cancelled or lost")
    p.add_argument("--force", action="store_true",
                   help="accept a changed config (or world size) for this attempt: force_resume=true")
    p.add_argument("--launcher", help="Hydra launcher profile (default: the one it was submitted with)")
    p.add_argument("--local", action="store_true", help="run it here, in the foreground, whatever launched it")
    p.add_argument("--code", choices=("run", "current"), default="run",
                   help="the code the run ran (its snapshot, the default) or the checkout's current code")
    p.set_defaults(handler=run)


def run(args) -> int:
    reg = registry(args)
    if args.sweep:
        check_not_a_search(reg.root, args.sweep)
    runs = reg.runs()
    single = bool(args.run and not (args.sweep or args.failed))
    if single:
        chosen = [find_run(runs, args.run)]
    elif args.sweep or args.failed:
        if args.run:  # with --sweep/--failed the positional is an override
            args.overrides.insert(0, args.run)
        chosen = [r for r in select(runs, sweep=args.sweep) if r.state != RunState.COMPLETED]
    else:
        raise ConfigError("resume", "needs a run, --sweep S or --failed")
    targets, skipped = select_targets(chosen, args.failed)
    targets, held = leave_to_searches(targets, single)
    for line in skipped + held:
        print(line)
    if not targets:
        print("nothing to resume")
        return 0
    if not args.force:
        for target in targets:
            check_identity(target, args.overrides)
    say = lambda line: print(line, flush=True)  # noqa: E731
    current = args.code == "current"
    if args.sweep and not (args.failed or args.local):
        code = resume_sweep(args.sweep, select(runs, sweep=args.sweep), targets, args.overrides, args.force,
                            args.launcher, say, current)
        if code is not None:
            return code
    return max(resume_run(t, args.overrides, args.force, args.launcher, args.local, say, current) for t in targets)
