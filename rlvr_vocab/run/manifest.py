"""The run manifest `run.json`: the run's source of truth, written only by its own job, atomically."""

import json
import os
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rlvr_vocab.secrets import redact

MANIFEST_NAME = "run.json"
SCHEMA_VERSION = 1

# Run states written by the job. The registry adds SLURM's view (PENDING, REQUEUED, ...).
RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
REQUEUED, TIMEOUT, PREEMPTED, CANCELLED = "requeued", "timeout", "preempted", "cancelled"
# Attempt end states only Slurm can tell (the job is killed before it can record them).
NODE_FAIL, OUT_OF_MEMORY, LOST = "node_fail", "out_of_memory", "lost"
FINAL_STATES = frozenset({COMPLETED, FAILED, TIMEOUT, CANCELLED})
# Slurm's end of a job run that overrides what the job recorded: what the job saw (an exception
# from W&B's killed service, a SIGTERM) was only the consequence.
_SLURM_ENDS = {"PREEMPTED": PREEMPTED, "NODE_FAIL": NODE_FAIL, "BOOT_FAIL": NODE_FAIL, "OUT_OF_MEMORY": OUT_OF_MEMORY,
               "TIMEOUT": TIMEOUT, "DEADLINE": TIMEOUT}
# Other ends, used only when the job recorded none (it was killed outright).
_SLURM_OTHER_ENDS = {"FAILED": FAILED, "CANCELLED": CANCELLED, "COMPLETED": COMPLETED, "REQUEUED": REQUEUED}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same directory, fsync, rename: readers see old or new, never half."""
    import tempfile  # here: readers (the CLI) never need it

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def git_state() -> tuple[str | None, bool | None]:
    """Commit and dirty flag of the code being run (the package's checkout), if it is a git checkout."""
    src = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None, None
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
        return commit.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def slurm_identity() -> dict[str, Any]:
    """Where this attempt runs in SLURM terms (empty outside SLURM)."""
    env = os.environ
    if "SLURM_JOB_ID" not in env:
        return {}
    array_job, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    return {
        **_slurm_output_paths(env["SLURM_JOB_ID"]),
        "slurm_job_id": env["SLURM_JOB_ID"],
        "slurm_array_id": f"{array_job}_{task}" if array_job and task else None,
        "slurm_restart_count": int(env.get("SLURM_RESTART_COUNT", 0)),
        "slurm_partition": env.get("SLURM_JOB_PARTITION"),
        "slurm_cluster": env.get("SLURM_CLUSTER_NAME"),
    }


def slurm_runs(job_id: str) -> list[tuple[float | None, str, str]] | None:
    """Every run of a SLURM job (requeues included) as (start time, state, exit code), oldest first; None if unknown."""
    try:
        out = subprocess.run(["sacct", "-n", "-P", "-X", "-D", "-j", job_id, "-o", "Start,State,ExitCode"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode:
        return None
    runs = []
    for line in out.stdout.splitlines():
        start, state, exit_code = (line.split("|") + ["", "", ""])[:3]
        runs.append((_timestamp(start), sacct_state(state), exit_code))
    return runs


def sacct_state(text: str) -> str:
    """A job state as sacct prints it: "CANCELLED by 0" and "CANCELLED+" (truncated) both mean CANCELLED."""
    return text.split()[0].rstrip("+") if text.strip() else ""


def _timestamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()  # naive (sacct): local time
    except ValueError:
        return None


def _slurm_output_paths(job_id: str) -> dict[str, str]:
    """Where SLURM writes this job's stdout/stderr (for `rlvr-vocab logs`), from one scontrol call."""
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    fields = dict(part.split("=", 1) for part in out.stdout.split() if "=" in part)
    return {key: fields[name] for key, name in (("stdout", "StdOut"), ("stderr", "StdErr")) if name in fields}


def settle_attempt(attempt: dict[str, Any]) -> None:
    """Correct the end of an earlier attempt with Slurm's own account of it.

    A job killed outright (SIGKILL, a node going down) records no end, and one stopped by Slurm
    records what it saw (a SIGTERM, an exception from a killed helper process) rather than why.
    """
    job = attempt.get("slurm_array_id") or attempt.get("slurm_job_id")
    recorded, started = attempt.get("end_state"), _timestamp(attempt.get("started") or "")
    runs = slurm_runs(job) if job and recorded not in (COMPLETED, REQUEUED) else None
    # This attempt's run of the job: the last one that had started when it did.
    mine = [r for r in runs or [] if r[0] is not None and started is not None and r[0] <= started + 1]
    state, exit_code = (mine[-1][1], mine[-1][2]) if mine else (None, None)
    if state in _SLURM_ENDS and _SLURM_ENDS[state] != recorded:
        end = _SLURM_ENDS[state]
    elif recorded is None:
        end = _SLURM_OTHER_ENDS.get(state, LOST)
    else:
        return
    said = f"Slurm: {state} (exit code {exit_code})" if state else "no Slurm record of its end"
    had = f"; the job recorded {recorded}: {attempt.get('reason')}" if recorded else "; the job recorded no end"
    attempt.update(end_state=end, reason=said + had, ended=attempt.get("ended") or now_iso())


class Manifest:
    """In-memory manifest of one run; every `save()` replaces run.json atomically."""

    def __init__(self, run_dir: Path, data: dict[str, Any], read_only: bool = False):
        self.run_dir = Path(run_dir)
        self.data = data
        # Ranks other than 0 of a multi-process job keep a copy but never write it.
        self.read_only = read_only

    @classmethod
    def load_or_create(cls, run_dir: Path, exp_name: str, run_name: str, read_only: bool = False) -> "Manifest":
        data = read_manifest(run_dir)
        if data is None:
            created = now_iso()
            data = {
                "schema_version": SCHEMA_VERSION,
                "run_id": os.urandom(6).hex(),
                "exp_name": exp_name,
                "run_name": run_name,
                "sweep_id": None,
                "status": RUNNING,
                "error": None,
                "created": created,
                "updated": created,
                "run_dir": str(Path(run_dir).resolve()),
                "overrides": [],
                "git_commit": None,
                "git_dirty": None,
                "host": None,
                "wandb_id": None,
                "wandb_url": None,
                "last_step": 0,
                "max_steps": None,
                "checkpoints": [],
                "skipped_checkpoints": [],
                "metrics": {},
                "eval": {},
                "attempts": [],
            }
        return cls(run_dir, data, read_only)

    def start_attempt(self, **fields: Any) -> dict[str, Any]:
        if self.read_only:
            return {}
        if self.data["attempts"]:
            settle_attempt(self.data["attempts"][-1])
        commit, dirty = git_state()
        attempt = {
            "n": len(self.data["attempts"]) + 1,
            "started": now_iso(),
            "ended": None,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            **slurm_identity(),
            "end_state": None,
            "reason": None,
            **fields,
        }
        self.data["attempts"].append(attempt)
        self.data.update(status=RUNNING, error=None, host=attempt["host"], git_commit=commit, git_dirty=dirty)
        self.save()
        return attempt

    def end_attempt(self, state: str, reason: str | None = None) -> None:
        if self.read_only:
            return
        attempt = self.data["attempts"][-1]
        attempt.update(ended=now_iso(), end_state=state, reason=reason)
        self.data.update(status=state, error=reason if state == FAILED else None)
        self.save()

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def save(self) -> None:
        if self.read_only:
            return
        self.data["updated"] = now_iso()
        text = redact(json.dumps(self.data, indent=2, default=str))
        atomic_write_text(self.run_dir / MANIFEST_NAME, text + "\n")
