"""The run directory: its layout, its config snapshot, and the lease that keeps it single-writer."""

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

from rlvr_vocab.errors import ConfigError
from rlvr_vocab.run.manifest import atomic_write_text
from rlvr_vocab.secrets import redact

LEASE_NAME = ".lease.json"
# Written at submission (the manifest is the job's alone): which SLURM jobs were started for the run.
SUBMISSIONS_NAME = "submissions.json"
# A holder that has not renewed its lease for this long is presumed dead (e.g. its node vanished).
LEASE_TTL_S = 600
HEARTBEAT_S = 60


def write_config_snapshot(run_dir: Path, cfg, overrides: list[str]) -> None:
    """config.yaml (resolved) and overrides.yaml, as this attempt ran them."""
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_yaml(cfg, resolve=True)
    atomic_write_text(run_dir / "config.yaml", redact(resolved))
    atomic_write_text(run_dir / "overrides.yaml", redact(OmegaConf.to_yaml(OmegaConf.create(list(overrides)))))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLease:
    """An exclusive lease on a run dir: two jobs must never write one run dir.

    Held by (host, pid, SLURM job id); renewed by a heartbeat thread. A requeued attempt of the
    same SLURM job, a dead local process, a SLURM job no longer running or an expired heartbeat
    lets a new holder take over.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LEASE_NAME
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": _slurm_job()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
        except FileExistsError:
            holder = self._read()
            why = self._stale_reason(holder)
            if why is None:
                raise ConfigError(
                    str(self.path.parent),
                    f"run is in use by pid {holder.get('pid')} on {holder.get('host')}"
                    + (f" (SLURM job {holder['slurm_job_id']})" if holder.get("slurm_job_id") else ""),
                    "wait for it to end or cancel it (rlvr-vocab cancel); two jobs must not share a run dir",
                ) from None
            from loguru import logger  # here, not at the top: the CLI imports this module and must start fast

            logger.info(f"taking over the run dir's lease: {why}")
        self._write()
        self._thread = threading.Thread(target=self._heartbeat, name="run-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        holder = self._read()
        if holder.get("pid") == self.me["pid"] and holder.get("host") == self.me["host"]:
            self.path.unlink(missing_ok=True)

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def _write(self) -> None:
        atomic_write_text(self.path, json.dumps({**self.me, "heartbeat": time.time()}))

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._write()

    def _stale_reason(self, holder: dict) -> str | None:
        if not holder:
            return "lease file empty (its writer died while creating it)"
        if self.me["slurm_job_id"] and holder.get("slurm_job_id") == self.me["slurm_job_id"]:
            return f"earlier attempt of SLURM job {holder['slurm_job_id']} (requeued)"
        if holder.get("host") == self.me["host"] and not _pid_alive(int(holder.get("pid", 0))):
            return f"pid {holder.get('pid')} on this host has exited"
        age = time.time() - float(holder.get("heartbeat", 0))
        if age > LEASE_TTL_S:
            return f"no heartbeat for {age:.0f} s"
        return _slurm_holder_gone(holder)


def _slurm_job() -> str | None:
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


# squeue states of a job whose processes may still write: anything else cannot hold a lease.
_HOLDING_STATES = {"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}


def _slurm_holder_gone(holder: dict) -> str | None:
    """Why the holder's SLURM job cannot be writing any more (one squeue call), or None.

    Its node may be another one, where its pid cannot be checked (e.g. a node that went down):
    without this, such a lease would hold until its heartbeat expires.
    """
    job = holder.get("slurm_job_id")
    if not job:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode and "Invalid job id" not in out.stderr:
        return None  # the controller cannot be asked: rely on the heartbeat
    states = set(out.stdout.split())
    if states & _HOLDING_STATES:
        return None
    return f"its SLURM job {job} is {'/'.join(sorted(states)).lower() or 'no longer in the queue'}"


def lease_is_live(run_dir: Path) -> bool:
    """Whether a live job holds the run dir (a dead local holder or an expired heartbeat does not)."""
    try:
        holder = json.loads((Path(run_dir) / LEASE_NAME).read_text() or "{}")
    except (OSError, ValueError):
        return False
    if not holder:
        return False
    if holder.get("host") == socket.gethostname() and not _pid_alive(int(holder.get("pid", 0))):
        return False
    return time.time() - float(holder.get("heartbeat", 0)) < LEASE_TTL_S and _slurm_holder_gone(holder) is None


def read_submissions(run_dir: Path) -> list[dict]:
    try:
        return json.loads((Path(run_dir) / SUBMISSIONS_NAME).read_text())
    except (OSError, ValueError):
        return []


def record_submission(run_dir: Path, record: dict) -> None:
    """The submitting side's note (never the job's manifest): which SLURM job runs this run dir."""
    run_dir.mkdir(parents=True, exist_ok=True)
    records = [*read_submissions(run_dir), record]
    atomic_write_text(run_dir / SUBMISSIONS_NAME, json.dumps(records, indent=1))
