"""CLI latency: `rlvr-vocab status` (the table) and `status --json` over 1,000, 10,000 and 100,000 synthetic runs.

Baselines: `python -c pass` (the interpreter's own start-up) and one `sacct` call for the same jobs
(SLURM's own latency, which status pays once). Growth: the cost above `status --json` on an empty root
at each size against the size before. `sacct` runs through a logging shim on PATH, so every status call
is checked to make at most one sacct call. The synthetic runs were created months ago by jobs SLURM has no record
of: the first `status` (timed apart, "cold") builds the index, asks sacct about the 15% not finished by their own
account, and settles them (its time and the index's size per run are figures too); the timed ones are what a user
of an old, large registry sees on every refresh after that.
A "live" registry of 100,000 runs has those 15% written a minute before the bench: SLURM's word on them is not final,
and every refresh resolves them against its one sacct call.
"""

import json
import math
import os
import shutil
import sys
import time
from datetime import datetime, timezone
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
from rlvr_vocab.run.layout import RootPaths

SIZES = (1_000, 10_000, 100_000)
TARGET_S = {1_000: 0.3, 10_000: 0.5, 100_000: 2.0}
# The first status over a root no index knows yet (it builds the index), where it has a target.
FIRST_TARGET_S = {10_000: 2.0}
# The index's size: a brief of each run, never its files.
INDEX_TARGET_BYTES_PER_RUN = 2048
# The table shows the 50 newest runs and counts the rest; --json lists every run.
COMMANDS = {"status": [], "status --json": ["--json"]}
LIVE = "live"  # the registry of 100,000 runs whose 15% unfinished ones were written a minute ago
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


def synthetic_run(i: int, recent: str | None = None) -> tuple[str, str, dict | None, list[dict]]:
    """Run i of a registry: (exp, run name, manifest or None, submissions) as the job and the launcher write them.

    Per 20 runs: 1 running, 1 pending (submitted, no manifest yet), 1 failed, 17 completed; every run
    was submitted as a task of its sweep's job array (ids SLURM has no record of). `recent`: when the
    unfinished ones were submitted and last written (else in January, with the others).
    """
    sweep, task = divmod(i, RUNS_PER_SWEEP)
    exp, name = f"exp{sweep // 10}", f"lr=1e-06,seed={task},sweep={sweep}"
    array = f"{FIRST_ARRAY_ID + sweep}_{task}"
    created = f"2026-01-01T00:{sweep % 60:02d}:{task % 60:02d}+00:00"
    kind = ("RUNNING", "pending", "FAILED")[i % 20] if i % 20 < 3 else "COMPLETED"
    if recent is not None and kind != "COMPLETED":
        created = recent
    outputs = f"/experiments/_sweeps/{exp}-s{sweep}/.submitit/{array}/{array}_0_log"
    submissions = [{"job_id": array, "submitted": created, "sweep_id": f"{exp}-s{sweep}", "launcher": "slurm",
                    "overrides": ["training.learning_rate=1e-6", f"seed={task}"],
                    "hydra_overrides": ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                    "stdout": f"{outputs}.out", "stderr": f"{outputs}.err"}]
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


def write_synthetic_registry(root: Path, n_runs: int, recent: str | None = None) -> None:
    """n_runs run dirs under root, each with its submissions.json and (unless pending) run.json (`recent`: see
    `synthetic_run`).

    Plain writes of compact JSON (the C encoder; `indent=` takes the pure-Python one, 5x slower): 100,000 runs take
    seconds, not minutes.
    """
    for exp in {synthetic_run(i)[0] for i in range(0, n_runs, RUNS_PER_SWEEP)}:
        os.makedirs(root / exp)
    for i in range(n_runs):
        exp, name, manifest, submissions = synthetic_run(i, recent)
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


def _label(key: int | str) -> str:
    return "100,000 runs, 15% of them live" if key == LIVE else f"{key:,} runs"


def run(ctx: Context) -> list[Figure]:
    path = make_shims(ctx.scratch("shims"), ["sacct"])
    sizes = {**{n: n for n in SIZES}, LIVE: SIZES[-1]}  # registry -> its number of runs
    roots = {key: ctx.scratch(f"registry-{key}") for key in (0, *sizes)}
    recent = datetime.fromtimestamp(time.time() - 60, timezone.utc).isoformat(timespec="seconds")
    for key, n in sizes.items():
        write_synthetic_registry(roots[key], n, recent if key == LIVE else None)
    logs = {key: ctx.workdir / f"sacct-{key}.log" for key in roots}
    envs = {key: {**ctx.env, "PATH": path, "RLVR_EXPERIMENTS_ROOT": str(roots[key]), SHIM_LOG_ENV: str(logs[key])}
            for key in roots}

    cold = {key: time_command(status_command("--json"), envs[key]) for key in sizes}  # builds the SQLite index
    sacct_argv = {}
    for key in sizes:
        calls = read_calls(logs[key])
        if len(calls) != 1:
            raise BenchError(f"the first status over {_label(key)} made {len(calls)} sacct calls")
        sacct_argv[key] = ["sacct", *calls[0].args.split(" ")]  # no argument of registry's sacct call has a space
    sacct_log = ctx.workdir / "sacct-baseline.log"
    calls_per_status = {key: [] for key in roots}

    def status_once(key: int | str, args: list[str]) -> float:
        before = len(read_calls(logs[key]))
        seconds = time_command(status_command(*args), envs[key])
        calls_per_status[key].append(len(read_calls(logs[key])) - before)
        return seconds

    def sacct_once(key: int | str) -> float:
        return time_command(sacct_argv[key], {**envs[key], SHIM_LOG_ENV: str(sacct_log)})

    # Cheap: more samples than the training runs, for tighter medians.
    repeats = ctx.repeats * 5
    measures = {"pass": lambda: time_command([sys.executable, "-c", "pass"], ctx.env),
                "empty": lambda: status_once(0, ["--json"])}
    for key in sizes:
        measures[f"sacct{key}"] = lambda key=key: sacct_once(key)
        for command, args in COMMANDS.items():
            measures[f"{command}{key}"] = lambda key=key, args=args: status_once(key, args)
    t = interleave(repeats, measures)
    # Consistency check that the empty root's status asks nothing of SLURM.
    if any(calls_per_status[0]):
        raise BenchError("status over an empty root called sacct")

    figures = []
    for key, n in sizes.items():
        for command in COMMANDS:
            ours = t[f"{command}{key}"]
            figures += [
                Figure(f"{command}, {_label(key)}, vs python -c pass", median(ours), "s",
                       target=f"< {TARGET_S[n]:g} s", met=median(ours) < TARGET_S[n], baseline=median(t["pass"]),
                       baseline_name="python -c pass", ratio=median_ratio(ours, t["pass"]), samples=repeats),
                Figure(f"{command}, {_label(key)}, vs one sacct call", median(ours), "s",
                       target=f"< {TARGET_S[n]:g} s", met=median(ours) < TARGET_S[n],
                       baseline=median(t[f"sacct{key}"]), baseline_name="sacct for the same jobs",
                       ratio=median_ratio(ours, t[f"sacct{key}"]), samples=repeats,
                       note=f"{len(sacct_argv[key][-1].split(','))} job ids in the first status's sacct call"),
            ]
        first = FIRST_TARGET_S.get(n)
        per_run = RootPaths(roots[key]).index.stat().st_size / n
        figures += [
            Figure(f"first status --json (builds the index), {_label(key)}", cold[key], "s",
                   target=f"< {first:g} s" if first else "", met=cold[key] < first if first else None),
            Figure(f"index size per run, {_label(key)}", per_run, "B", target=f"< {INDEX_TARGET_BYTES_PER_RUN} B",
                   met=per_run < INDEX_TARGET_BYTES_PER_RUN),
        ]
        # Live runs are asked about on every refresh; the others once, then served from the index.
        expected = {1} if key == LIVE else {0}
        figures.append(Figure(
            f"sacct calls per status, {_label(key)}", max(calls_per_status[key]), "calls",
            target="1 each" if key == LIVE else "1 (the first), then 0",
            met=set(calls_per_status[key]) == expected, samples=len(calls_per_status[key]),
            note=f"counted by a PATH shim in every status call (table and --json): "
                 f"{sorted(set(calls_per_status[key]))}"))
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
