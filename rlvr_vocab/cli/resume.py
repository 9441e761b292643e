"""`rlvr-vocab resume`: resubmit runs from their latest complete checkpoint, in the same run dir.

The run keeps its W&B id (kept in its manifest); extra Hydra overrides (more steps, more time)
are appended. Runs whose job is pending or running are refused: two jobs must never write one
run dir. A changed model or world size is refused by the job's validation unless --force.
"""

import subprocess
import sys

from rlvr_vocab.cli.common import find_run, registry, select
from rlvr_vocab.errors import ConfigError
from rlvr_vocab.registry import LIVE

UNSUCCESSFUL = {"FAILED", "TIMEOUT", "PREEMPTED", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY", "LOST"}


def add_parser(sub) -> None:
    p = sub.add_parser("resume", help="resubmit runs from their latest checkpoint")
    p.add_argument("run", nargs="?", help="run id, name or unique prefix")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. training.max_steps=2000")
    p.add_argument("--sweep", help="every unfinished run of this sweep")
    p.add_argument("--failed", action="store_true", help="only runs that failed, timed out, were cancelled or lost")
    p.add_argument("--force", action="store_true", help="resume even if the model or world size changed")
    p.add_argument("--launcher", help="Hydra launcher profile (default: the one it was submitted with)")
    p.set_defaults(handler=run)


def run(args) -> int:
    runs = registry(args).runs()
    if args.run and not (args.sweep or args.failed):
        targets = [find_run(runs, args.run)]
    elif args.sweep or args.failed:
        if args.run:  # with --sweep/--failed the positional is an override
            args.overrides.insert(0, args.run)
        targets = [r for r in select(runs, sweep=args.sweep) if r.state != "COMPLETED"]
        if args.failed:
            targets = [r for r in targets if r.state in UNSUCCESSFUL]
    else:
        raise ConfigError("resume", "needs a run, --sweep S or --failed")
    live = [r for r in targets if r.state in LIVE]
    if len(targets) == 1 and live:
        r = live[0]
        raise ConfigError(f"run {r.run_name}", f"is {r.state} as SLURM job {r.job_id}",
                          f"two jobs must not write one run dir: wait, or `rlvr-vocab cancel {r.run_name}` first")
    for r in live:
        print(f"skip {r.run_name}: {r.state} as SLURM job {r.job_id}")
    targets = [r for r in targets if r.state not in LIVE]
    if not targets:
        print("nothing to resume")
        return 0
    codes = []
    for target in targets:
        cmd = command(target, args.overrides, args.force, args.launcher)
        print(f"resume {target.exp_name}/{target.run_name} ({target.state}): {' '.join(cmd[3:])}", flush=True)
        codes.append(subprocess.run(cmd).returncode)
    return max(codes)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def command(view, extra: list[str], force: bool, launcher: str | None) -> list[str]:
    submission = view.submissions[-1] if view.submissions else {}
    base = list(view.m.get("overrides") or submission.get("overrides") or [])
    wanted = [*extra, *(["force_resume=true"] if force else [])]
    if not any(_key(o) == "run_name" for o in base + wanted):
        wanted.append(f"run_name='{view.run_name}'")
    replaced = {_key(o) for o in wanted}
    overrides = [o for o in base if _key(o) not in replaced] + wanted
    # The original launcher settings (partition, account, time...), but not one-off submission states.
    hydra = [o for o in submission.get("hydra_overrides", []) if not o.startswith("hydra.mode") and ".hold=" not in o]
    if launcher:
        hydra = [o for o in hydra if not o.startswith("hydra/launcher=")] + [f"hydra/launcher={launcher}"]
    mode = ["--multirun"] if hydra or launcher else []
    return [sys.executable, "-m", "rlvr_vocab.train", *mode, *hydra, *overrides]
