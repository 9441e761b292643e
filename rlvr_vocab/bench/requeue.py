"""Requeue cost: steps redone after a preemption signal, and the time from the signal to the resumed job's first step.

Each repeat submits a fresh demo run (one point, our `slurm_cpu` launcher, logging every step), waits
until it is two steps past its first checkpoint, sends `scancel --signal=USR2` (what SLURM sends on
preemption), and once the job has checkpointed and requeued itself releases it at once with
`scontrol update StartTime=now` (SLURM holds requeued jobs back for a while). Baseline: the same run's
fresh start, from the end of its `sbatch` to its first step. Batches of 16 completions keep steps short,
so the figure is mostly the checkpoint, SLURM's requeue and the job's start-up and resume.
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

from loguru import logger

from rlvr_vocab.bench.common import (
    SHIM_LOG_ENV,
    BenchError,
    Context,
    Figure,
    ensure_slurm,
    make_shims,
    median,
    median_ratio,
    read_calls,
    run_checked,
    scancel,
    wait_for,
)
from rlvr_vocab.bench.sweep import submissions
from rlvr_vocab.bench.training import read_jsonl
from rlvr_vocab.slurm import client as slurm_client

SAVE_STEPS = 5
OVERRIDES = ["--multirun", "hydra/launcher=slurm_cpu", "experiment=demo", "eval.enabled=false",
             "training.max_steps=1000", f"training.save_steps={SAVE_STEPS}", "training.logging_steps=1",
             "training.per_device_train_batch_size=16"]
# Signal this many steps after the first checkpoint: a resume from that checkpoint would redo them.
STEPS_PAST_CHECKPOINT = 2


def _manifest(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def _log_lines(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return read_jsonl(path) if path.exists() else []


def _past_first_checkpoint(run_dir: Path) -> list[dict[str, Any]] | None:
    manifest = _manifest(run_dir)
    if manifest.get("status") in ("FAILED", "CANCELLED"):
        raise BenchError(f"the run ended {manifest['status']} before its first checkpoint: {manifest.get('error')}")
    lines = _log_lines(run_dir)
    return lines if lines and lines[-1]["step"] >= SAVE_STEPS + STEPS_PAST_CHECKPOINT else None


def _released(job: str) -> bool:
    """True once the requeued job is pending again, and then made eligible now. (Updated any earlier, while it
    still runs, the requeue afterwards sets its own start time.)"""
    if slurm_client.queue_states([job]).get(job) != "PENDING":
        return False
    try:
        slurm_client.start_now(job)
    except slurm_client.SlurmError:
        return False
    return True


def _gone(job: str) -> bool:
    return job not in slurm_client.queue_states([job])


def preempt_once(ctx: Context, path: str, i: int) -> dict[str, float]:
    root, shim_log = ctx.scratch(f"run{i}"), ctx.workdir / f"run{i}.shim.log"
    env = {**ctx.env, "PATH": path, SHIM_LOG_ENV: str(shim_log), "RLVR_EXPERIMENTS_ROOT": str(root)}
    run_checked([sys.executable, "-m", "rlvr_vocab.train", *OVERRIDES, "run_name=preempted"], env,
                log=ctx.workdir / f"run{i}.log", timeout=600)
    eligible = submissions(read_calls(shim_log))[-1].end
    run_dir = root / "demo" / "preempted"
    job = json.loads((run_dir / "submissions.json").read_text())[-1]["job_id"]
    try:
        lines = wait_for(lambda: _past_first_checkpoint(run_dir), 900, "the run to pass its first checkpoint")
        fresh = lines[0]["time"] - eligible  # step 1's log line
        signalled = time.time()
        slurm_client.signal_job(job, "USR2")
        wait_for(lambda: _manifest(run_dir).get("status") == "REQUEUED", 300, "the job to checkpoint and requeue")
        requeued = time.time()
        stopped_at = _manifest(run_dir)["last_step"]
        first_attempt_lines = len(_log_lines(run_dir))
        wait_for(lambda: _released(job), 120, "the requeued job to be pending")
        released = time.time()
        new_lines = wait_for(lambda: _log_lines(run_dir)[first_attempt_lines:], 900, "the resumed job's first step")
        resumed_line = new_lines[0]
        resumed_from = _manifest(run_dir)["attempts"][-1]["resumed_from_step"]
    finally:
        scancel([job])
        wait_for(lambda: _gone(job), 120, f"job {job} to leave the queue")
    if resumed_from is None:
        raise BenchError(f"the job requeued but its next attempt did not resume; see {run_dir / 'train.log'}")
    result = {"fresh": fresh, "resumed": resumed_line["time"] - signalled, "redone": stopped_at - resumed_from,
              "stop": requeued - signalled, "release": released - requeued, "restart": resumed_line["time"] - released}
    logger.info("requeue: " + ", ".join(f"{k}={v:.2f}" for k, v in result.items()))
    return result


def run(ctx: Context) -> list[Figure]:
    ensure_slurm()
    path = make_shims(ctx.scratch("shims"), ["sbatch"])
    # Each repeat measures its baseline (the fresh start) and then its subject (the resume), in that order.
    results = [preempt_once(ctx, path, i) for i in range(ctx.repeats)]

    def col(key: str) -> list[float]:
        return [r[key] for r in results]

    return [
        Figure("requeue: steps redone after a preemption signal (worst)", max(col("redone")), "steps",
               target=f"<= {SAVE_STEPS} (the checkpoint interval)", met=max(col("redone")) <= SAVE_STEPS,
               samples=ctx.repeats, note=f"signal {STEPS_PAST_CHECKPOINT}+ steps after the first checkpoint; "
                                         f"redone per repeat: {col('redone')}"),
        Figure("requeue: signal to the resumed job's first step", median(col("resumed")), "s",
               baseline=median(col("fresh")), baseline_name="fresh start, sbatch to first step",
               ratio=median_ratio(col("resumed"), col("fresh")), samples=ctx.repeats,
               note=f"medians: {median(col('stop')):.1f} s to checkpoint and requeue, {median(col('release')):.1f} s "
                    f"until pending again (released at once), {median(col('restart')):.1f} s from release to "
                    "the first resumed step"),
    ]
