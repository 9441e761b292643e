"""Sweep submission: 100 points to the local Slurm through our `slurm_cpu` launcher against plain
hydra-submitit-launcher (`submitit_slurm`) on a trivial Hydra app.

Ours returns once the array is submitted. The plain launcher then blocks in `job.results()` until
every job ends, so its figure is its time to submit: spawn to the end of its `sbatch` call (it polls
sacct right after, then waits for the jobs).
Jobs are submitted held (`--hold`) so none runs and disturbs the timing, and all are cancelled after.
`sbatch` and `sacct` run through logging shims, which count the calls and time the submission.
"""

import subprocess
import sys
import time

from loguru import logger

from rlvr_vocab.bench.common import (
    SHIM_LOG_ENV,
    BenchError,
    Context,
    Figure,
    ShimCall,
    ensure_slurm,
    interleave,
    make_shims,
    median,
    median_ratio,
    read_calls,
    run_checked,
    scancel,
    wait_for,
)

N_POINTS = 100
RETURN_TARGET_S = 10.0
HOLD = "+hydra.launcher.additional_parameters.hold=true"


def submissions(calls: list[ShimCall]) -> list[ShimCall]:
    """The sbatch calls that submitted something (not `--test-only` checks)."""
    return [c for c in calls if c.name == "sbatch" and "--test-only" not in c.args.split()]


def job_ids(calls: list[ShimCall]) -> list[str]:
    """From sbatch's `Submitted batch job N` lines."""
    return [c.first_line.split()[-1] for c in submissions(calls) if c.first_line.startswith("Submitted batch job")]


def run(ctx: Context) -> list[Figure]:
    ensure_slurm()
    path = make_shims(ctx.scratch("shims"), ["sbatch", "sacct"])
    found: dict[str, list[dict]] = {"ours": [], "plain": []}

    def ours() -> float:
        i = len(found["ours"])
        root, log = ctx.scratch(f"ours{i}"), ctx.workdir / f"ours{i}.shim.log"
        env = {**ctx.env, "PATH": path, SHIM_LOG_ENV: str(log), "RLVR_EXPERIMENTS_ROOT": str(root)}
        cmd = [sys.executable, "-m", "rlvr_vocab.train", "--multirun", "hydra/launcher=slurm_cpu", "experiment=demo",
               "eval.enabled=false", f"seed=range(0,{N_POINTS})", HOLD]
        spawned = time.time()
        try:
            run_checked(cmd, env, log=ctx.workdir / f"ours{i}.log", timeout=600)
            returned = time.time() - spawned
        finally:
            calls = read_calls(log)
            scancel(job_ids(calls))
        found["ours"].append({"calls": calls, "submitted": submissions(calls)[-1].end - spawned})
        logger.info(f"ours: returned after {returned:.2f} s, {len(submissions(calls))} sbatch submissions")
        return returned

    def plain() -> float:
        i = len(found["plain"])
        log = ctx.workdir / f"plain{i}.shim.log"
        env = {**ctx.env, "PATH": path, SHIM_LOG_ENV: str(log)}
        cmd = [sys.executable, "-m", "rlvr_vocab.bench.trivial_app", "--multirun", "hydra/launcher=submitit_slurm",
               f"x=range(0,{N_POINTS})", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=4", HOLD,
               f"hydra.sweep.dir={ctx.scratch(f'plain{i}')}"]
        spawned = time.time()
        with (ctx.workdir / f"plain{i}.log").open("w") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
        try:
            wait_for(lambda: submissions(read_calls(log)) or proc.poll() is not None, 300, "the plain sbatch call")
            # Its first poll shows it is past its submission (until then it may still be writing job files).
            wait_for(lambda: any(c.name == "sacct" for c in read_calls(log)) or proc.poll() is not None, 120,
                     "the plain launcher's first sacct poll")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            calls = read_calls(log)
            scancel(job_ids(calls))
        if not submissions(calls):
            raise BenchError(f"the plain launcher submitted nothing (exit {proc.returncode}); see {out.name}")
        first_poll = next(c.start for c in calls if c.name == "sacct") - spawned
        submitted = submissions(calls)[-1].end - spawned
        found["plain"].append({"calls": calls, "submitted": submitted, "first_poll": first_poll})
        logger.info(f"plain: submitted after {submitted:.2f} s (first poll at {first_poll:.2f} s)")
        return submitted

    t = interleave(ctx.repeats, {"plain": plain, "ours": ours})
    ours_sbatch = [len(submissions(r["calls"])) for r in found["ours"]]
    plain_sbatch = [len(submissions(r["calls"])) for r in found["plain"]]
    checks = [sum(c.name == "sbatch" for c in r["calls"]) - n for r, n in zip(found["ours"], ours_sbatch, strict=True)]
    ratio = median_ratio(t["ours"], t["plain"])
    ours_submitted = median([r["submitted"] for r in found["ours"]])
    return [
        Figure(f"sweep of {N_POINTS}: our time to return vs plain time to submit", median(t["ours"]), "s",
               target=f"< {RETURN_TARGET_S:g} s and ratio <= 1",
               met=median(t["ours"]) < RETURN_TARGET_S and ratio <= 1, baseline=median(t["plain"]),
               baseline_name="submitit_slurm, spawn to end of sbatch", ratio=ratio, samples=ctx.repeats,
               note=f"ours ended its sbatch at {ours_submitted:.2f} s; the plain launcher's first sacct poll came "
                    f"at {median([r['first_poll'] for r in found['plain']]):.2f} s, then it waits for the jobs"),
        Figure(f"sweep of {N_POINTS}: sbatch submissions", max(ours_sbatch), "calls", target="1 (one job array)",
               met=all(n == 1 for n in ours_sbatch), baseline=max(plain_sbatch), baseline_name="submitit_slurm",
               samples=ctx.repeats,
               note=f"plus {max(checks)} `sbatch --test-only` (Slurm's pre-flight check of the array) in ours"),
    ]

