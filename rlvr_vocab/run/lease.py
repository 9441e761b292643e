"""The single-writer lease of a run dir: two jobs must never write one run dir.

The lease is a sequence of generation files `.lease/gen-NNNNNNNNN.json`; the holder is the writer of the highest
one. Taking the lease creates the next generation with an exclusive hard link, which exactly one contender wins, so
two jobs that start together can never both hold it. A holder whose generation is no longer the highest (or gone)
has lost the lease and must stop before it writes anything (`check()`).

Whether a holder is gone is asked of Slurm first (its job still running or suspended holds the lease whatever its
heartbeat says); only where Slurm cannot be asked do a dead local pid or an expired heartbeat free the lease.
"""

import json
import os
import re
import socket
import threading
import time
from pathlib import Path

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.run.fsio import atomic_write_text, create_exclusive
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.slurm import client as slurm_client

# A holder that has not renewed its lease for this long is presumed dead where Slurm cannot tell.
LEASE_TTL_S = 600
HEARTBEAT_S = 60
_GEN_RE = re.compile(r"^gen-(\d{9})\.json$")
_ATTEMPTS = 5


class LeaseLost(RuntimeError):
    """Another job took over this run dir's lease: this one must not write to it any more."""


def pid_alive(pid: int) -> bool:
    """A process of this id lives on this host (perhaps another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _generations(lease_dir: Path) -> list[int]:
    try:
        names = os.listdir(lease_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(m.group(1)) for m in map(_GEN_RE.match, names) if m)


def _gen_path(lease_dir: Path, gen: int) -> Path:
    return lease_dir / f"gen-{gen:09d}.json"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def current_holder(paths: RunPaths) -> tuple[int, dict] | None:
    """The highest generation and its holder, or None if nobody holds the lease."""
    gens = _generations(paths.lease)
    return (gens[-1], _read(_gen_path(paths.lease, gens[-1]))) if gens else None


def stale_reason(holder: dict, me: dict | None = None) -> str | None:
    """Why `holder` cannot be writing the run dir any more, or None if it may be."""
    if not holder:
        return "the lease file is unreadable (its writer died while creating it)"
    job = holder.get("slurm_job_id")
    if job:
        if me is not None and me.get("slurm_job_id") == job:
            return f"earlier attempt of SLURM job {job} (requeued)"
        try:
            state = slurm_client.queue_states([job]).get(job)
        except slurm_client.SlurmError:
            state = None  # Slurm cannot be asked: fall back to the pid and the heartbeat
        else:
            if state in slurm_client.HOLDING_STATES:
                return None
            return f"its SLURM job {job} is {state.lower() if state else 'no longer in the queue'}"
    if holder.get("host") == socket.gethostname():
        pid = int(holder.get("pid") or 0)
        return None if pid and pid_alive(pid) else f"pid {pid} on this host has exited"
    age = time.time() - float(holder.get("heartbeat") or 0)
    return f"no heartbeat for {age:.0f} s" if age > LEASE_TTL_S else None


def lease_is_live(paths: RunPaths) -> bool:
    """Whether a live process holds the run dir."""
    current = current_holder(paths)
    return current is not None and stale_reason(current[1]) is None


def describe_holder(holder: dict) -> str:
    job = holder.get("slurm_job_id")
    return f"pid {holder.get('pid')} on {holder.get('host')}" + (f" (SLURM job {job})" if job else "")


class RunLease:
    """This process's claim on a run dir, renewed by a heartbeat thread while held."""

    def __init__(self, paths: RunPaths):
        self.paths = paths
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": slurm_client.current_job(),
                   "token": os.urandom(8).hex()}
        self.gen: int | None = None
        self.taken_over: str | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _text(self) -> str:
        return json.dumps({**self.me, "heartbeat": time.time()})

    def acquire(self) -> None:
        """Take the lease, or raise a ConfigError naming its live holder."""
        self.paths.lease.mkdir(parents=True, exist_ok=True)
        for _ in range(_ATTEMPTS):
            current = current_holder(self.paths)
            why = None
            if current is not None:
                why = stale_reason(current[1], self.me)
                if why is None:
                    raise ConfigError(str(self.paths.run_dir), f"run is in use by {describe_holder(current[1])}",
                                      "wait for it to end or cancel it (rlvr-vocab cancel); two jobs must not share "
                                      "a run dir")
            gen = current[0] + 1 if current is not None else 1
            if create_exclusive(_gen_path(self.paths.lease, gen), self._text()):
                self.gen, self.taken_over = gen, why
                self._forget_older()
                self._thread = threading.Thread(target=self._heartbeat, name="run-lease", daemon=True)
                self._thread.start()
                return
            # Another process took this generation first: look again at who holds the lease now.
        raise ConfigError(str(self.paths.run_dir), "other processes kept taking its lease",
                          "two jobs must not share a run dir: see `rlvr-vocab status`")

    def _forget_older(self) -> None:
        for gen in _generations(self.paths.lease):
            if gen < (self.gen or 0):
                _gen_path(self.paths.lease, gen).unlink(missing_ok=True)

    def held(self) -> bool:
        if self.gen is None or self.lost:
            return False
        mine = _gen_path(self.paths.lease, self.gen)
        return mine.exists() and not _gen_path(self.paths.lease, self.gen + 1).exists()

    def check(self) -> None:
        """Raise LeaseLost if another job took the run dir over (called before every write)."""
        if self.gen is not None and not self.held():
            self.lost = self.lost or "another job took over the run dir's lease"
            raise LeaseLost(f"{self.paths.run_dir}: {self.lost}; this job stops without writing")

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            if not self.held():
                self.lost = "another job took over the run dir's lease"
                return
            atomic_write_text(_gen_path(self.paths.lease, self.gen), self._text())

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.held():
            _gen_path(self.paths.lease, self.gen).unlink(missing_ok=True)
        self.gen = None
