"""The run manifest `run.json`: the run's state, attempts and progress, written only by the run's own job (rank 0).

Every write replaces the file atomically and first checks that this job still holds the run dir's lease, so a job
that lost it (suspended past its heartbeat, then taken over) cannot overwrite its successor's record.
"""

import json
import os
import socket
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.secrets import redact_obj
from rlvr_vocab.core.states import Event, RunState, transition
from rlvr_vocab.run.code import running as running_code
from rlvr_vocab.run.fsio import atomic_write_text, note_change
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.slurm import client as slurm_client

SCHEMA_VERSION = 2


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class UnreadableManifest(Exception):
    """run.json exists but cannot be read or parsed: the message says why, in one line."""


def read_manifest(run_dir: Path | str) -> dict[str, Any] | None:
    """The manifest as recorded (states in today's spelling), None if there is none; UnreadableManifest if broken."""
    path = RunPaths(run_dir).manifest
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        raise UnreadableManifest(f"{path}: permission denied") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise UnreadableManifest(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UnreadableManifest(f"{path}: not a JSON object")
    return migrate(data)


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 manifests spelled states in lowercase."""
    if data.get("schema_version", 1) < SCHEMA_VERSION:
        state = RunState.parse(data.get("status"))
        data["status"] = state.value if state else data.get("status")
        for attempt in data.get("attempts") or []:
            end = RunState.parse(attempt.get("end_state"))
            attempt["end_state"] = end.value if end else attempt.get("end_state")
    return data


def slurm_identity() -> dict[str, Any]:
    """Where this attempt runs in SLURM terms (empty outside SLURM)."""
    env = os.environ
    if "SLURM_JOB_ID" not in env:
        return {}
    job = slurm_client.current_job() or env["SLURM_JOB_ID"]
    identity: dict[str, Any] = {
        "slurm_job_id": env["SLURM_JOB_ID"],
        "slurm_array_id": job if "_" in job else None,
        "slurm_restart_count": int(env.get("SLURM_RESTART_COUNT", 0)),
        "slurm_partition": env.get("SLURM_JOB_PARTITION"),
        "slurm_cluster": env.get("SLURM_CLUSTER_NAME"),
        "nodes": env.get("SLURM_JOB_NODELIST"),
    }
    try:
        fields = slurm_client.show_job(job)
    except slurm_client.SlurmError:
        fields = {}
    identity.update({key: fields[name] for key, name in (("stdout", "StdOut"), ("stderr", "StdErr")) if name in fields})
    if env.get("RLVR_JOB_OUTPUT"):  # an sbatch wrapper sends its output under the experiments root
        identity["stdout"] = identity["stderr"] = env["RLVR_JOB_OUTPUT"]
    if env.get("RLVR_SBATCH_WRAPPER") == "1":
        identity["sbatch"] = _wrapper_submission(fields)
    return identity


def _wrapper_submission(fields: dict[str, str]) -> dict[str, Any]:
    """How to submit this sbatch-wrapper job again: the wrapper script and the resources Slurm gave it."""
    per_node = fields.get("NtasksPerN:B:S:C", "").split(":")[0]
    options = {"partition": fields.get("Partition"), "account": fields.get("Account"), "qos": fields.get("QOS"),
               "time": fields.get("TimeLimit"), "nodes": fields.get("NumNodes"),
               "ntasks-per-node": per_node if per_node not in ("", "0") else None,
               "cpus-per-task": fields.get("CPUs/Task"), "job-name": fields.get("JobName")}
    mem = fields.get("MinMemoryNode")
    if mem and mem != "0":
        options["mem"] = mem
    gpus = [part.rsplit(":", 1)[-1] for part in fields.get("TresPerNode", "").split(",") if "gpu" in part]
    options["gpus-per-node"] = gpus[0] if gpus else "0"
    return {"script": fields.get("Command"), "submit_dir": fields.get("WorkDir"),
            # What the wrapper adds to the command line itself (a resume must not pass it twice).
            "fixed_overrides": os.environ.get("RLVR_WRAPPER_OVERRIDES", "").split(),
            "options": {k: v for k, v in options.items() if v not in (None, "", "(null)", "N/A")}}


def attempt_run(attempt: dict[str, Any], runs: list[slurm_client.SacctRow]) -> slurm_client.SacctRow | None:
    """This attempt's run of its job (sacct's runs of it, oldest first): the last one that had started when it did."""
    started = parse_iso(attempt.get("started"))
    mine = [r for r in runs if r.start is not None and started is not None and r.start <= started + 1]
    return mine[-1] if mine else None


def slurm_ended(attempt: dict[str, Any], runs: list[slurm_client.SacctRow]) -> float | None:
    """When Slurm says this attempt's run of its job ended (sacct's End); None while it runs or if unknown."""
    run = attempt_run(attempt, runs)
    if run is None or run.end is None or (run is runs[-1] and run.state in slurm_client.LIVE_STATES):
        return None
    # An End before the attempt started is another run's (clocks of node and controller a little apart).
    return run.end if run.end >= (parse_iso(attempt.get("started")) or 0) - 1 else None


# The ends after which a search worker trains its next trial in the same job (rlvr_vocab.launch.search_worker).
_WORKER_GOES_ON = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.PRUNED})


def end_stands(attempt: dict[str, Any]) -> bool:
    """Whether the attempt's recorded end is its own whatever Slurm later says of its job: it completed or was pruned
    (ended on purpose, never requeued), or it was a search trial's (`search_trial`) and its worker went on to the next
    trial, whose fate is what Slurm's account of that job tells."""
    recorded = RunState.parse(attempt.get("end_state"))
    return recorded in (RunState.COMPLETED, RunState.PRUNED) or (
        attempt.get("search_trial") is not None and recorded in _WORKER_GOES_ON)


def slurm_end(attempt: dict[str, Any]) -> tuple[RunState, str, float | None] | None:
    """Slurm's account of how an attempt ended when it overrides the job's own (or the job recorded none), and when
    it ended as Slurm says (None if unknown).

    A job killed outright (SIGKILL, a node going down) records no end, and one stopped by Slurm records what it saw
    (a SIGTERM, an exception from a killed helper) rather than why.
    """
    job = attempt.get("slurm_array_id") or attempt.get("slurm_job_id")
    recorded = RunState.parse(attempt.get("end_state"))
    if recorded == RunState.REQUEUED or end_stands(attempt):
        return None
    runs = []
    if job:
        try:
            runs = slurm_client.job_runs(job)
        except slurm_client.SlurmError:
            runs = []
    mine = attempt_run(attempt, runs)
    state, exit_code = (mine.state, mine.exit_code) if mine else (None, None)
    end = slurm_client.end_state(state, recorded)
    if end is None:
        return None
    said = f"Slurm: {state} (exit code {exit_code})" if state else "no Slurm record of its end"
    had = f"; the job recorded {recorded}: {attempt.get('reason')}" if recorded else "; the job recorded no end"
    return end, said + had, slurm_ended(attempt, runs)


class Manifest:
    """In-memory manifest of one run; `save()` replaces run.json atomically (rank 0 only)."""

    def __init__(self, paths: RunPaths, data: dict[str, Any], read_only: bool = False,
                 guard: Callable[[], None] | None = None):
        self.paths = paths
        self.data = data
        # Ranks other than 0 of a multi-process job keep a copy but never write it.
        self.read_only = read_only
        # Called before every write: raises if this job may no longer write the run dir (its lease is lost).
        self.guard = guard
        # Whether this process's last save recorded the run live (RUNNING, REQUEUED): see `save`.
        self._saved_live = False

    @property
    def run_dir(self) -> Path:
        return self.paths.run_dir

    @property
    def state(self) -> RunState | None:
        return RunState.parse(self.data.get("status"))

    @classmethod
    def load(cls, paths: RunPaths, read_only: bool = False) -> "Manifest | None":
        try:
            data = read_manifest(paths.run_dir)
        except UnreadableManifest as e:
            raise ConfigError(str(paths.manifest), f"cannot be read ({e})",
                              "restore it from a backup, or move the run dir aside and start again") from None
        return None if data is None else cls(paths, data, read_only)

    @classmethod
    def new(cls, paths: RunPaths, exp_name: str, run_name: str, fingerprint: str, read_only: bool = False
            ) -> "Manifest":
        created = now_iso()
        data = {
            "schema_version": SCHEMA_VERSION, "run_id": os.urandom(6).hex(), "exp_name": exp_name,
            "run_name": run_name, "sweep_id": None, "status": None, "error": None, "created": created,
            "updated": created, "run_dir": str(paths.run_dir.resolve()), "identity": fingerprint, "overrides": [],
            "git_commit": None, "git_dirty": None, "host": None, "wandb_id": None, "wandb_url": None,
            "last_step": 0, "max_steps": None, "checkpoints": [], "last_checkpoint": None, "last_save_s": None,
            "skipped_checkpoints": [], "metrics": {}, "eval": {}, "final_model": None, "attempts": [],
        }
        return cls(paths, data, read_only)

    # ------------------------------------------------------------------ state changes

    def set_state(self, event: Event, target: RunState, error: str | None = None) -> None:
        self.data["status"] = transition(self.state, event, target).value
        self.data["error"] = error

    def settle_last_attempt(self) -> None:
        """Before a new attempt: record Slurm's end of the previous one where the job could not."""
        if not self.data["attempts"]:
            return
        last = self.data["attempts"][-1]
        settled = slurm_end(last)
        if settled is None:
            return
        end, reason, ended = settled
        # Not this takeover's time: the attempt ended when Slurm ended its job (the backoff counts from then too).
        last.update(end_state=end.value, reason=reason,
                    ended=last.get("ended") or (iso(ended) if ended is not None else now_iso()))
        if self.state in (RunState.RUNNING, RunState.REQUEUED) or (
                self.state in (RunState.CANCELLED, RunState.FAILED) and end != self.state and end != RunState.LOST):
            self.set_state(Event.SLURM_END, end, reason if end == RunState.FAILED else None)

    def start_attempt(self, **fields: Any) -> dict[str, Any]:
        code = running_code()
        attempt = {
            "n": len(self.data["attempts"]) + 1, "started": now_iso(), "ended": None, "host": socket.gethostname(),
            "pid": os.getpid(), **slurm_identity(), "code": code, "end_state": None, "reason": None, **fields,
        }
        self.data["attempts"].append(attempt)
        self.set_state(Event.START, RunState.RUNNING)
        self.data.update(host=attempt["host"], git_commit=code["git_commit"], git_dirty=code["git_dirty"])
        self.save()
        return attempt

    def end_attempt(self, event: Event, state: RunState, reason: str | None = None,
                    attempt_state: RunState | None = None) -> None:
        """Record how the attempt ended and move the run to `state` (a requeued run's attempt ended `attempt_state`,
        e.g. TIMEOUT, while the run is REQUEUED)."""
        attempt = self.data["attempts"][-1]
        attempt.update(ended=now_iso(), end_state=(attempt_state or state).value, reason=reason)
        self.set_state(event, state, reason if state == RunState.FAILED else None)
        self.save()

    @property
    def last_attempt(self) -> dict[str, Any]:
        return self.data["attempts"][-1] if self.data["attempts"] else {}

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def save(self) -> None:
        if self.read_only:
            return
        if self.guard is not None:
            self.guard()
        self.data["updated"] = now_iso()
        text = json.dumps(redact_obj(self.data), indent=2, default=str)
        atomic_write_text(self.paths.manifest, text + "\n")
        # The registry looks at a live run's dir on every refresh: only a save that makes the run live or ends it
        # (or writes a finished run) needs to say so, not each step's.
        live = self.data.get("status") in (RunState.RUNNING.value, RunState.REQUEUED.value)
        if not (live and self._saved_live):
            note_change(self.paths.run_dir)
        self._saved_live = live
