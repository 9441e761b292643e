"""Submission side of a sweep: names, pre-flight validation, and what to skip.

Run names are derived from the swept values, so submitting the same sweep again finds the
same run dirs: completed runs are skipped, pending or running ones are left alone, and the
others are submitted again and resume from their checkpoints.
"""

import hashlib
import json
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from rlvr_vocab.errors import ConfigError
from rlvr_vocab.run.lease import lease_is_live, read_submissions
from rlvr_vocab.run.manifest import COMPLETED, read_manifest

# Short names for common swept keys in run names (lr=3e-06,beta=0.04,seed=1).
ALIASES = {"learning_rate": "lr", "per_device_train_batch_size": "bs", "num_generations": "gens", "size": "rv_size"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+@-]")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _value(override: str) -> str:
    return override.split("=", 1)[1] if "=" in override else ""


def swept_keys(jobs: Sequence[Sequence[str]]) -> list[str]:
    """Keys whose value differs between the sweep's points, in command-line order."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for override in job:
            values.setdefault(_key(override), set()).add(_value(override))
    return [k for k, v in values.items() if len(v) > 1]


def run_name_for(job: Sequence[str], keys: Sequence[str]) -> str:
    parts = []
    for override in job:
        key = _key(override)
        if key in keys:
            short = key.rsplit(".", 1)[-1].rsplit("/", 1)[-1]
            value = _UNSAFE.sub("_", _value(override))
            while ".." in value:  # no parent-directory hops in a directory name
                value = value.replace("..", "_")
            parts.append(f"{ALIASES.get(short, short)}={value}")
    name = ",".join(parts).strip("._-") or "run"
    if len(name) > 100:  # keep it a valid file and W&B name; the hash keeps it unique
        name = f"{name[:90]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def sweep_id_for(exp_name: str, jobs: Sequence[Sequence[str]]) -> str:
    """Stable for the same grid: the same command gives the same sweep (and run dirs)."""
    grid = sorted({o for job in jobs for o in job})
    return f"{exp_name}-{hashlib.sha1(json.dumps(grid).encode()).hexdigest()[:8]}"


@dataclass
class SweepPoint:
    overrides: list[str]
    run_dir: Path
    cfg: DictConfig
    action: str = "submit"  # submit | skip
    note: str = ""
    # The newest complete checkpoint the job will resume from (what validation found).
    resume_from: Path | None = None


@dataclass
class SweepPlan:
    sweep_id: str
    points: list[SweepPoint] = field(default_factory=list)

    @property
    def to_submit(self) -> list[SweepPoint]:
        return [p for p in self.points if p.action == "submit"]

    def summary(self) -> str:
        lines = [f"sweep {self.sweep_id}: {len(self.points)} runs, {len(self.to_submit)} to submit"]
        lines += [f"  {p.action:<6} {p.run_dir.name}  {p.note}".rstrip() for p in self.points]
        return "\n".join(lines)


def plan_sweep(
    jobs: Sequence[Sequence[str]],
    compose: Callable[[list[str]], DictConfig],
    validate: Callable[[DictConfig], object],
    sweep_id: str | None,
) -> SweepPlan:
    """Name, compose and validate every point before anything is submitted; decide what to skip."""
    if not jobs:
        raise ConfigError("sweep", "has no points")
    first = compose(list(jobs[0]))
    keys = swept_keys(jobs)
    sweep_id = sweep_id or first.sweep_id or sweep_id_for(first.exp_name, jobs)
    plan = SweepPlan(sweep_id)
    explicit_name = any(_key(o) == "run_name" for o in jobs[0])
    composed = []
    # Every point composed before any is validated: a sweep's validation waits for TRL's import in
    # another process (rlvr_vocab.library_check), which overlaps this.
    for job in jobs:
        extra = [f"sweep_id={sweep_id}"]
        if not explicit_name:
            # Quoted: the name holds '=' and ',' which Hydra's override grammar would parse.
            extra.append(f"run_name='{run_name_for(job, keys) if keys else _single_name(first)}'")
        overrides = [*job, *extra]
        composed.append((overrides, compose(overrides)))
    for overrides, cfg in composed:
        try:
            checked = validate(cfg)
        except ConfigError as e:
            where = f" (run {cfg.run_name})" if len(jobs) > 1 else ""
            raise ConfigError(e.where, e.problem + where, e.fix) from None
        run_dir = Path(cfg.experiments_root) / cfg.exp_name / cfg.run_name
        plan.points.append(SweepPoint(overrides, run_dir, cfg, resume_from=getattr(checked, "resume_from", None)))
    _mark_skips(plan)
    return plan


def _single_name(cfg: DictConfig) -> str:
    from rlvr_vocab.validate import default_run_name

    return cfg.run_name or default_run_name()


def _mark_skips(plan: SweepPlan) -> None:
    queued = live_jobs([last_submission(p.run_dir).get("job_id") for p in plan.points])
    for point in plan.points:
        manifest = read_manifest(point.run_dir) or {}
        max_steps = point.cfg.training.get("max_steps")
        job = last_submission(point.run_dir).get("job_id")
        if manifest.get("status") == COMPLETED and manifest.get("last_step", 0) >= (max_steps or 0):
            point.action, point.note = "skip", f"completed at step {manifest['last_step']}"
        elif job in queued:
            point.action, point.note = "skip", f"already {queued[job].lower()} as SLURM job {job}"
        elif lease_is_live(point.run_dir):
            point.action, point.note = "skip", "running (its run dir is leased by a live job)"
        elif point.resume_from is not None:
            point.note = f"resumes from {point.resume_from.name}"


def live_jobs(job_ids: Sequence[str | None]) -> dict[str, str]:
    """SLURM state of those jobs still in the queue, from one squeue call (all of my jobs, one task a line)."""
    ids = {j for j in job_ids if j}
    if not ids:
        return {}
    try:
        out = subprocess.run(["squeue", "--me", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states = dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) >= 2)
    return {j: s for j, s in states.items() if j in ids}


def last_submission(run_dir: Path) -> dict:
    records = read_submissions(run_dir)
    return records[-1] if records else {}
