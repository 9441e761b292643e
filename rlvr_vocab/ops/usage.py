"""Resource accounting: what each run used and lost, and totals by experiment, sweep or user (`rlvr-vocab usage`,
`show`, `compare`).

A run's SLURM figures add up every run of every SLURM job of it (its attempts' jobs and its submissions', a job that
failed before the run started included; a requeued job runs again under its id, and sacct -D lists each run), from
the registry's one sacct call or, for jobs SLURM is done with, the registry's index:

- `elapsed_s`: the sum of the job runs' Elapsed (a job still running: so far). A run without SLURM jobs (local):
  the sum of its attempts' spans in run.json.
- `wait_s`: queue wait, the sum over the job runs of Start - Submit (Slurm resets Submit when it requeues a job, so
  each wait after a requeue counts); a job still pending: now - Submit.
- `cpu_h`: the sum of AllocCPUS x Elapsed, in hours.
- `gpu_h`: the sum of the allocated GPUs (`gres/gpu=N` of AllocTRES) x Elapsed, in hours; 0 where jobs get no GPU.
- `max_rss`: the most resident memory any step of any job run used (sacct's MaxRSS of the steps), in bytes; None
  where the cluster gathers none (JobAcctGatherType=jobacct_gather/none, or no step ended yet).
- `slurm_runs`: the job runs that started.

From run.json (and metrics.jsonl), whatever ran the run:

- `attempts`: the run's attempts (each start of the training job in its run dir).
- `steps_redone`: over the attempts that trained (resumed from a checkpoint, or logged a step), the sum of
  (previous such attempt's last reached step - this attempt's `resumed_from_step`, 0 when it started from scratch)
  where positive. An attempt's last reached step is its `last_step` if it recorded one, else the highest step it
  logged to metrics.jsonl (lines written between its start and the next attempt's).
- `lost_s`: for each of those, the wall time the previous attempt went on after logging the step the next one
  resumed from (its last metrics line at or before that step; its start if none), up to its end: the time whose
  work was redone. Attempts that trained nothing are not counted here (their time is in `elapsed_s`).

Evaluation jobs a run submitted (eval_jobs) are not counted.
"""

import json
import os
import time
from typing import Any

from rlvr_vocab.run.manifest import parse_iso

GROUPINGS = ("exp", "sweep", "user")
# Figures that add up over runs (max_rss takes the most).
SUMMED = ("attempts", "slurm_runs", "elapsed_s", "wait_s", "cpu_h", "gpu_h", "steps_redone", "lost_s")


def run_usage(view, now: float | None = None) -> dict[str, Any]:
    """The figures of one run (a RunView; its `job_runs` set by `Registry.runs(usage=True)`)."""
    now = time.time() if now is None else now
    jobs = view.slurm_jobs
    known = [job for job in jobs if view.job_runs.get(job)]
    runs = [run for job in known for run in view.job_runs[job]]
    figures: dict[str, Any] = {"elapsed_s": None, "wait_s": None, "cpu_h": None, "gpu_h": None, "max_rss": None,
                               "slurm_runs": None}
    if runs:
        rss = [r.max_rss for r in runs if r.max_rss is not None]
        figures.update(
            elapsed_s=sum(r.elapsed_s for r in runs), wait_s=sum(_wait(r, now) for r in runs),
            cpu_h=sum(r.cpus * r.elapsed_s for r in runs) / 3600, gpu_h=sum(r.gpus * r.elapsed_s for r in runs) / 3600,
            max_rss=max(rss) if rss else None, slurm_runs=sum(r.start is not None for r in runs))
    elif not jobs:
        figures["elapsed_s"] = view.elapsed_s()
    redone, lost = restarts(view.attempts, view.paths.metrics) if len(view.attempts) > 1 else (0, 0.0)
    return {"run_id": view.run_id, "exp_name": view.exp_name, "run_name": view.run_name, "sweep_id": view.sweep_id,
            "state": view.state.value, "run_dir": view.run_dir_text, **figures, "attempts": len(view.attempts),
            "steps_redone": redone, "lost_s": lost, "slurm_jobs": jobs,
            "slurm_jobs_unknown": [job for job in jobs if job not in known]}


def _wait(run, now: float) -> float:
    if run.submit is None:
        return 0.0
    if run.start is not None:
        return max(0.0, run.start - run.submit)
    return max(0.0, now - run.submit) if run.state == "PENDING" else 0.0


def restarts(attempts: list[dict], metrics_path) -> tuple[int, float]:
    """(steps redone, seconds lost) over a run's attempts: see the module's docstring."""
    if len(attempts) < 2:
        return 0, 0.0
    starts = [parse_iso(a.get("started")) for a in attempts]
    ends = [parse_iso(a.get("ended")) or (starts[i + 1] if i + 1 < len(starts) else None)
            for i, a in enumerate(attempts)]
    logged = _logged(attempts, starts, metrics_path)
    redone, lost = 0, 0.0
    previous = None  # (index, last reached step) of the latest attempt that trained
    for i, attempt in enumerate(attempts):
        resumed = attempt.get("resumed_from_step")
        reached = attempt.get("last_step")
        if reached is None and logged[i]:
            reached = max(step for _, step in logged[i])
        if resumed is None and reached is None:
            continue  # trained nothing (failed at start-up, refused by the retry budget)
        start_step = resumed or 0
        if previous is not None and previous[1] > start_step:
            p = previous[0]
            redone += previous[1] - start_step
            since = max((t for t, step in logged[p] if step <= start_step), default=starts[p])
            if since is not None and ends[p] is not None:
                lost += max(0.0, ends[p] - since)
        previous = (i, max(reached if reached is not None else start_step, start_step))
    return redone, lost


def _logged(attempts: list[dict], starts: list[float | None], metrics_path) -> list[list[tuple[float, int]]]:
    """Each attempt's (time, step) lines of metrics.jsonl: those written from its start to the next one's."""
    out: list[list[tuple[float, int]]] = [[] for _ in attempts]
    try:
        with open(metrics_path) as f:
            lines = f.readlines()
    except OSError:
        return out
    for line in lines:
        try:
            record = json.loads(line)
            t, step = float(record["time"]), int(record["step"])
        except (ValueError, KeyError, TypeError):
            continue
        i = sum(1 for s in starts if s is not None and s <= t) - 1
        if i >= 0:
            out[min(i, len(out) - 1)].append((t, step))
    return out


def owner(run_dir: str) -> str:
    """The user who owns the run dir (who submitted or ran it)."""
    try:
        uid = os.stat(run_dir).st_uid
    except OSError:
        return "?"
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_key(usage: dict[str, Any], by: str) -> str:
    if by == "exp":
        return usage["exp_name"]
    if by == "sweep":
        return usage["sweep_id"] or "-"
    return usage.get("user") or owner(usage["run_dir"])


def total(usages: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures summed over runs (None where no run has one), the most memory any used, and how many runs."""
    out: dict[str, Any] = {"runs": len(usages)}
    for key in SUMMED:
        known = [u[key] for u in usages if u[key] is not None]
        out[key] = sum(known) if known else None
    rss = [u["max_rss"] for u in usages if u["max_rss"] is not None]
    out["max_rss"] = max(rss) if rss else None
    out["unaccounted_runs"] = sum(1 for u in usages if u["cpu_h"] is None)
    return out


def grouped(usages: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """One total per experiment, sweep or user (`by`), in order of its name."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for usage in usages:
        if by == "user":
            usage["user"] = group_key(usage, by)
        groups.setdefault(group_key(usage, by), []).append(usage)
    return [{by: key, **total(groups[key])} for key in sorted(groups)]
