"""CLI latency: `rlvr-vocab status` (the table) and `status --json` over 1,000, 10,000 and 100,000 synthetic runs.

Baselines: `python -c pass` (the interpreter's own start-up) and one `sacct` call for the same jobs
(SLURM's own latency, which status pays once). Growth: the cost above `status --json` on an empty root
at each size against the size before. `sacct` runs through a logging shim on PATH, so every status call
is checked to make exactly one sacct call. The synthetic runs were created months ago by jobs SLURM has no record
of: the first `status` (timed apart, "cold") builds the index and settles them; the timed ones are what a user of an
old, large registry sees on every refresh after that.
"""

import json
import math
import os
import shutil
import sys
from itertools import pairwise
from pathlib import Path

from rlvr_vocab.bench.common import (
    SHIM_LOG_ENV,
    BenchError,
    Context,
    Figure,
    interleave,
    make_shims,
    median,
    median_ratio,
    read_calls,
    time_command,
)

SIZES = (1_000, 10_000, 100_000)
TARGET_S = {1_000: 0.3, 10_000: 0.5, 100_000: 2.0}
# The table shows the 50 newest runs and counts the rest; --json lists every run.
COMMANDS = {"status": [], "status --json": ["--json"]}
RUNS_PER_SWEEP = 100
# Far above the local cluster's job ids: SLURM has no record of these (the runs read as LOST).
FIRST_ARRAY_ID = 9_000_000
# The metrics TRL logs for the demo: real manifests carry all of them (~1.9 KB a manifest written compact).
_METRIC_KEYS = (
    "loss", "grad_norm", "learning_rate", "num_tokens", "completions/mean_length", "completions/min_length",
    "completions/max_length", "completions/clipped_ratio", "completions/mean_terminated_length",
    "completions/min_terminated_length", "completions/max_terminated_length", "rewards/accuracy/mean",
    "rewards/accuracy/std", "rewards/format/mean", "rewards/format/std", "reward", "reward_std",
    "frac_reward_zero_std", "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean",
    "clip_ratio/low_min", "clip_ratio/high_max", "step_time", "epoch",
)


def synthetic_run(i: int) -> tuple[str, str, dict | None, list[dict]]:
    """Run i of a registry: (exp, run name, manifest or None, submissions) as the job and the launcher write them.

    Per 20 runs: 1 running, 1 pending (submitted, no manifest yet), 1 failed, 17 completed; every run
    was submitted as a task of its sweep's job array (ids SLURM has no record of).
    """
    sweep, task = divmod(i, RUNS_PER_SWEEP)
    exp, name = f"exp{sweep // 10}", f"lr=1e-06,seed={task},sweep={sweep}"
    array = f"{FIRST_ARRAY_ID + sweep}_{task}"
    created = f"2026-01-01T00:{sweep % 60:02d}:{task % 60:02d}+00:00"
    outputs = f"/experiments/_sweeps/{exp}-s{sweep}/.submitit/{array}/{array}_0_log"
    submissions = [{"job_id": array, "submitted": created, "sweep_id": f"{exp}-s{sweep}", "launcher": "slurm",
                    "overrides": ["training.learning_rate=1e-6", f"seed={task}"],
                    "hydra_overrides": ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                    "stdout": f"{outputs}.out", "stderr": f"{outputs}.err"}]
    kind = ("RUNNING", "pending", "FAILED")[i % 20] if i % 20 < 3 else "COMPLETED"
    if kind == "pending":
        return exp, name, None, submissions
    step = 500 if kind == "COMPLETED" else 120
    manifest = {
        "schema_version": 2, "run_id": f"{i:012x}", "exp_name": exp, "run_name": name, "sweep_id": f"{exp}-s{sweep}",
        "status": kind, "error": "ValueError: boom" if kind == "FAILED" else None, "created": created,
        "updated": created, "run_dir": f"/experiments/{exp}/{name}", "overrides": submissions[0]["overrides"],
        "identity": f"{sweep:08x}{task:08x}",
        "git_commit": "0" * 40, "git_dirty": False, "host": "node1", "wandb_id": f"{i:012x}", "wandb_url": None,
        "last_step": step, "max_steps": 500,
        "checkpoints": [{"step": s, "path": f"checkpoints/checkpoint-{s}"} for s in (step - 50, step)],
        "last_checkpoint": f"checkpoints/checkpoint-{step}", "skipped_checkpoints": [],
        "metrics": {k: 0.123456789 for k in _METRIC_KEYS},
        "eval": {"initial": {"accuracy": 0.375, "mean_length": 7.5, "step": 0}},
        "attempts": [{"n": 1, "started": created, "ended": None if kind == "RUNNING" else created, "host": "node1",
                      "pid": 1000 + task, "stdout": f"{outputs}.out", "stderr": f"{outputs}.err",
                      "slurm_job_id": str(FIRST_ARRAY_ID + 1000 + i), "slurm_array_id": array,
                      "slurm_restart_count": 0, "slurm_partition": "gpu", "slurm_cluster": "cluster", "world_size": 1,
                      "resumed_from_step": None, "end_state": None if kind == "RUNNING" else kind, "reason": None}],
    }
    return exp, name, manifest, submissions


def write_synthetic_registry(root: Path, n_runs: int) -> None:
    """n_runs run dirs under root, each with its submissions.json and (unless pending) run.json.

    Plain writes of compact JSON (the C encoder; `indent=` takes the pure-Python one, 5x slower): 100,000 runs take
    seconds, not minutes.
    """
    for exp in {synthetic_run(i)[0] for i in range(0, n_runs, RUNS_PER_SWEEP)}:
        os.makedirs(root / exp)
    for i in range(n_runs):
        exp, name, manifest, submissions = synthetic_run(i)
        run_dir = f"{root}/{exp}/{name}"
        os.mkdir(run_dir)
        with open(f"{run_dir}/submissions.json", "w") as f:
            f.write(json.dumps(submissions))
        if manifest is not None:
            with open(f"{run_dir}/run.json", "w") as f:
                f.write(json.dumps(manifest))


def status_command(*args: str) -> list[str]:
    entry = Path(sys.executable).parent / "rlvr-vocab"
    return [str(entry) if entry.exists() else shutil.which("rlvr-vocab") or "rlvr-vocab", "status", *args]


def run(ctx: Context) -> list[Figure]:
    path = make_shims(ctx.scratch("shims"), ["sacct"])
    roots = {n: ctx.scratch(f"registry-{n}") for n in (0, *SIZES)}
    for n in SIZES:
        write_synthetic_registry(roots[n], n)
    logs = {n: ctx.workdir / f"sacct-{n}.log" for n in roots}
    envs = {n: {**ctx.env, "PATH": path, "RLVR_EXPERIMENTS_ROOT": str(roots[n]), SHIM_LOG_ENV: str(logs[n])}
            for n in roots}

    cold = {n: time_command(status_command("--json"), envs[n]) for n in SIZES}  # builds the SQLite index
    sacct_argv = {}
    for n in SIZES:
        calls = read_calls(logs[n])
        if len(calls) != 1:
            raise BenchError(f"status over {n} runs made {len(calls)} sacct calls")
        sacct_argv[n] = ["sacct", *calls[0].args.split(" ")]  # no argument of registry's sacct call has a space
    sacct_log = ctx.workdir / "sacct-baseline.log"
    calls_per_status = {n: [] for n in roots}

    def status_once(n: int, args: list[str]) -> float:
        before = len(read_calls(logs[n]))
        seconds = time_command(status_command(*args), envs[n])
        calls_per_status[n].append(len(read_calls(logs[n])) - before)
        return seconds

    def sacct_once(n: int) -> float:
        return time_command(sacct_argv[n], {**envs[n], SHIM_LOG_ENV: str(sacct_log)})

    # Cheap: more samples than the training runs, for tighter medians.
    repeats = ctx.repeats * 5
    measures = {"pass": lambda: time_command([sys.executable, "-c", "pass"], ctx.env),
                "empty": lambda: status_once(0, ["--json"])}
    for n in SIZES:
        measures[f"sacct{n}"] = lambda n=n: sacct_once(n)
        for command, args in COMMANDS.items():
            measures[f"{command}{n}"] = lambda n=n, args=args: status_once(n, args)
    t = interleave(repeats, measures)
    # Consistency check that the empty root's status asks nothing of SLURM; the others exactly once each.
    if any(calls_per_status[0]):
        raise BenchError("status over an empty root called sacct")

    figures = []
    for n in SIZES:
        for command in COMMANDS:
            ours = t[f"{command}{n}"]
            figures += [
                Figure(f"{command}, {n:,} runs, vs python -c pass", median(ours), "s", target=f"< {TARGET_S[n]:g} s",
                       met=median(ours) < TARGET_S[n], baseline=median(t["pass"]), baseline_name="python -c pass",
                       ratio=median_ratio(ours, t["pass"]), samples=repeats,
                       note=f"first status --json (builds the index): {cold[n]:.3f} s"),
                Figure(f"{command}, {n:,} runs, vs one sacct call", median(ours), "s", target=f"< {TARGET_S[n]:g} s",
                       met=median(ours) < TARGET_S[n], baseline=median(t[f"sacct{n}"]),
                       baseline_name="sacct for the same jobs", ratio=median_ratio(ours, t[f"sacct{n}"]),
                       samples=repeats, note=f"{len(sacct_argv[n][-1].split(','))} job ids in the one sacct call"),
            ]
        figures.append(Figure(
            f"sacct calls per status, {n:,} runs", max(calls_per_status[n]), "calls", target="exactly 1",
            met=all(c == 1 for c in calls_per_status[n]), samples=len(calls_per_status[n]),
            note=f"counted by a PATH shim in every status call (table and --json): {sorted(set(calls_per_status[n]))}"))
    above_empty = {n: [s - e for s, e in zip(t[f"status --json{n}"], t["empty"], strict=True)] for n in SIZES}
    for small, large in pairwise(SIZES):
        growth = median_ratio(above_empty[large], above_empty[small])
        exponent = math.log(growth) / math.log(large / small) if growth > 0 else float("nan")
        figures.append(Figure(
            f"status --json cost above an empty registry, {large:,} vs {small:,} runs", median(above_empty[large]),
            "s", target=f"ratio <= {large // small} (linear)", met=growth <= large / small,
            baseline=median(above_empty[small]), baseline_name=f"{small:,} runs", ratio=growth, samples=repeats,
            note=f"growth exponent {exponent:.2f} (1 = linear); status over an empty root {median(t['empty']):.3f} s",
        ))
    return figures
