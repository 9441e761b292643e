"""Sweep submission: 1,000 points to the local Slurm through our `slurm_cpu` launcher against plain
hydra-submitit-launcher (`submitit_slurm`) on a trivial Hydra app.

Ours returns once the sweep is submitted: one job array, or one per MaxArraySize tasks where the cluster caps
arrays below the sweep's size. The plain launcher then blocks in `job.results()` until every job ends, so its
figure is its time to submit: spawn to the end of its one `sbatch` call (it polls sacct right after, then waits for
the jobs; it is stopped there). Where its one array exceeds MaxArraySize, Slurm refuses that call and it exits: the
figure is still spawn to the end of its `sbatch`, by when all its own work is done.
Jobs are submitted held (`--hold`) so none runs and disturbs the timing, and all are cancelled after.
`sbatch` and `sacct` run through logging shims, which count the calls and time the submission.
"""

import math
import subprocess
import sys
import time
from pathlib import Path

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
from rlvr_vocab.slurm import client as slurm_client

N_POINTS = 1000
RETURN_TARGET_S = 15.0
HOLD = "+hydra.launcher.additional_parameters.hold=true"


def submissions(calls: list[ShimCall]) -> list[ShimCall]:
    """The sbatch calls that submitted something (not `--test-only` checks)."""
    return [c for c in calls if c.name == "sbatch" and "--test-only" not in c.args.split()]


def job_ids(calls: list[ShimCall]) -> list[str]:
    """From sbatch's `Submitted batch job N` lines."""
    return [c.first_line.split()[-1] for c in submissions(calls) if c.first_line.startswith("Submitted batch job")]


def arrays_for(n_points: int, max_array_size: int | None) -> int:
    """How many job arrays a sweep of n points takes where arrays hold at most max_array_size tasks."""
    return math.ceil(n_points / max_array_size) if max_array_size else 1


def run(ctx: Context) -> list[Figure]:
    ensure_slurm()
    limit = slurm_client.max_array_size()
    arrays = arrays_for(N_POINTS, limit)
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
            # It pickles every job before its one sbatch call: about 0.1 s a point.
            wait_for(lambda: submissions(read_calls(log)) or proc.poll() is not None, 1800, "the plain sbatch call")
            # Its first poll shows it is past its submission (until then it may still be writing job files); a
            # refused submission ends it instead.
            wait_for(lambda: any(c.name == "sacct" for c in read_calls(log)) or proc.poll() is not None, 120,
                     "the plain launcher's first sacct poll")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            calls = read_calls(log)
            scancel(job_ids(calls))
        if not submissions(calls):
            raise BenchError(f"the plain launcher submitted nothing (exit {proc.returncode}); see {out.name}")
        sbatch = submissions(calls)[-1]
        first_poll = next((c.start - spawned for c in calls if c.name == "sacct"), None)
        submitted = sbatch.end - spawned
        # sbatch's error goes to stderr, past the shim, into the launcher's log.
        error = next((ln.strip() for ln in Path(out.name).read_text().splitlines() if "sbatch: error" in ln),
                     f"exit {sbatch.rc}")
        refused = error.split("sbatch: error: ")[-1] if sbatch.rc else None
        found["plain"].append({"calls": calls, "submitted": submitted, "first_poll": first_poll, "refused": refused})
        what = f"refused: {refused}" if refused else f"first poll at {first_poll:.2f} s"
        logger.info(f"plain: sbatch ended after {submitted:.2f} s, {what}")
        return submitted

    t = interleave(ctx.repeats, {"plain": plain, "ours": ours})
    ours_sbatch = [len(submissions(r["calls"])) for r in found["ours"]]
    plain_sbatch = [len(submissions(r["calls"])) for r in found["plain"]]
    checks = [sum(c.name == "sbatch" for c in r["calls"]) - n for r, n in zip(found["ours"], ours_sbatch, strict=True)]
    ratio = median_ratio(t["ours"], t["plain"])
    ours_submitted = median([r["submitted"] for r in found["ours"]])
    polls = [r["first_poll"] for r in found["plain"] if r["first_poll"] is not None]
    refused = next((r["refused"] for r in found["plain"] if r["refused"]), None)
    after = (f"Slurm refused the plain launcher's one array of {N_POINTS:,} tasks ({refused}; MaxArraySize {limit}): "
             "its time is to that sbatch call, by when all its own work is done" if refused else
             f"the plain launcher's first sacct poll came at {median(polls):.2f} s, then it waits for the jobs")
    per_array = "one job array" if arrays == 1 else f"one job array per MaxArraySize={limit} tasks"
    return [
        Figure(f"sweep of {N_POINTS:,}: our time to return vs plain time to submit", median(t["ours"]), "s",
               target=f"< {RETURN_TARGET_S:g} s and ratio <= 1",
               met=median(t["ours"]) < RETURN_TARGET_S and ratio <= 1, baseline=median(t["plain"]),
               baseline_name="submitit_slurm, spawn to end of sbatch", ratio=ratio, samples=ctx.repeats,
               note=f"ours ended its last sbatch at {ours_submitted:.2f} s; {after}"),
        Figure(f"sweep of {N_POINTS:,}: sbatch submissions", max(ours_sbatch), "calls",
               target=f"{arrays} ({per_array})", met=all(n == arrays for n in ours_sbatch),
               baseline=max(plain_sbatch), baseline_name="submitit_slurm", samples=ctx.repeats,
               note=f"plus {max(checks)} `sbatch --test-only` (Slurm's pre-flight check of the array) in ours"
                    + (f"; the plain launcher's one sbatch was refused (its array exceeds MaxArraySize {limit})"
                       if refused else "")),
    ]
