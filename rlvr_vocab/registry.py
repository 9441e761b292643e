"""The experiment registry: every run under the experiments root, with its live SLURM state.

Source of truth: each run dir's `run.json` (written by its job) and `submissions.json`
(written at submission). The SQLite index under the root is a cache kept by the CLI on the
login node, refreshed from the run dirs whose mtime changed (jobs and the launcher replace files by
rename, which moves it); deleting it loses nothing.
SLURM is asked once per refresh: one `sacct` call for every SLURM run not completed (Slurm may
have requeued a job whatever it recorded last), plus one `scontrol ping` when that reports
live jobs (accounting only learns of them from the controller).
"""

import json
import os
import sqlite3
import subprocess
import time
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from rlvr_vocab.run.lease import SUBMISSIONS_NAME, lease_is_live
from rlvr_vocab.run.manifest import MANIFEST_NAME, sacct_state

INDEX_NAME = ".registry.sqlite"
# States shown to users. LOST: the manifest says running but its job is gone.
FINAL = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "LOST"}
LIVE = {"PENDING", "RUNNING", "REQUEUED"}
# sacct states of jobs still in the controller's hands.
_LIVE_SLURM = {"PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "RESIZING", "REQUEUE_HOLD", "REQUEUE_FED"}
_SACCT_STATES = {
    "PENDING", "RUNNING", "REQUEUED", "COMPLETED", "FAILED", "TIMEOUT", "PREEMPTED", "CANCELLED", "NODE_FAIL",
    "OUT_OF_MEMORY", "SUSPENDED", "BOOT_FAIL", "DEADLINE", "RESIZING", "REVOKED",
}
# The index is a cache: a schema change just rebuilds it.
_SCHEMA_VERSION = 3
# `settled_row`: for a run whose state no SLURM answer can change any more, its `status --json` row, with what
# `status` filters and sorts it by; `status --json` serves those rows as they are, without parsing them.
_SCHEMA = """
create table if not exists runs (
    run_dir text primary key,
    dir_mtime integer,
    summary text,
    manifest text, submissions text,
    settled_row text, exp_name text, sweep_id text, state text, created text, run_name text
)"""
# A directory changed this recently may change again within the clock's granularity without its mtime moving:
# such entries are re-read on the next refresh.
_RACY_NS = 2_000_000_000
# What `status` reads of a manifest and of the submissions (the rest stays in the index, unparsed).
_SUMMARY_KEYS = ("run_id", "exp_name", "run_name", "sweep_id", "created", "updated", "status", "error",
                 "last_step", "max_steps", "wandb_id", "wandb_url", "skipped_checkpoints")
_ATTEMPT_KEYS = ("slurm_array_id", "slurm_job_id", "started")
_SUBMISSION_KEYS = ("job_id", "submitted", "sweep_id")


class SlurmView:
    """What one sacct call said: job id -> (state, exit code, node), or why it could not be asked."""

    # Plain classes here, not dataclasses: importing `dataclasses` (inspect, ast) costs `status` ~20 ms.
    def __init__(self, jobs: dict[str, dict[str, str]], error: str | None = None) -> None:
        self.jobs, self.error = jobs, error
        # Set when sacct answered but the controller does not: accounting's live states may be stale.
        self.controller_error: str | None = None

    def job(self, job_id: str) -> dict[str, str] | None:
        """A job's row; array tasks not yet started are only listed under their array (`A` or `A_[0-3%4]`)."""
        if job_id in self.jobs or "_" not in job_id:
            return self.jobs.get(job_id)
        base, task = job_id.split("_", 1)
        for key, row in self.jobs.items():
            if key.startswith(f"{base}_[") and _in_task_range(int(task), key[len(base) + 2:].rstrip("]")):
                return row
        return self.jobs.get(base) if self.jobs.get(base, {}).get("state") == "PENDING" else None


def _in_task_range(task: int, spec: str) -> bool:
    for part in spec.split("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and int(low) <= task <= int(high or low):
            return True
    return False


def experiments_root(cli_root: str | None) -> Path:
    return Path(cli_root or os.environ.get("RLVR_EXPERIMENTS_ROOT", "experiments"))


def _run_dirs(root: Path) -> dict[str, int]:
    """<root>/<exp>/<run>/ -> the run dir's mtime (manifest and submissions are replaced by rename, which moves it)."""
    found = {}
    for exp in _scandir(root):
        if exp.name.startswith(("_", ".")) or not exp.is_dir(follow_symlinks=False):
            continue
        for run in _scandir(exp.path):
            if run.is_dir(follow_symlinks=False):
                try:
                    found[run.path] = run.stat(follow_symlinks=False).st_mtime_ns
                except FileNotFoundError:
                    pass
    return found


def _scandir(path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _read_json(path: str, default: Any) -> Any:
    # Manifests are replaced atomically; a vanished file (run dir deleted meanwhile) is just absent.
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return default


def _summary(manifest: dict | None, submissions: list[dict]) -> dict[str, Any]:
    """The part of a run's files that `status` shows."""
    m = None
    if manifest is not None:
        m = {k: manifest.get(k) for k in _SUMMARY_KEYS}
        attempts = manifest.get("attempts") or []
        m["attempts"] = [{k: a.get(k) for k in _ATTEMPT_KEYS} for a in attempts]
        m["attempt_spans"] = _attempt_spans(attempts)
        m["checkpoints"] = (manifest.get("checkpoints") or [])[-1:]
        m["metrics"] = {"reward": (manifest.get("metrics") or {}).get("reward")}
    return {"manifest": m, "submissions": [{k: s.get(k) for k in _SUBMISSION_KEYS} for s in submissions]}


class Registry:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.root / INDEX_NAME)
        if db.execute("pragma user_version").fetchone()[0] != _SCHEMA_VERSION:
            db.execute("drop table if exists runs")
            db.execute(f"pragma user_version = {_SCHEMA_VERSION}")
        db.execute(_SCHEMA)
        return db

    def _refresh(self, db: sqlite3.Connection) -> None:
        """Re-read the run dirs whose mtime changed; forget the ones that are gone."""
        known = dict(db.execute("select run_dir, dir_mtime from runs"))
        on_disk = _run_dirs(self.root)
        settled = time.time_ns() - _RACY_NS
        for run_dir, mtime in on_disk.items():
            if known.get(run_dir) == mtime:
                continue
            manifest = _read_json(os.path.join(run_dir, MANIFEST_NAME), None)
            submissions = _read_json(os.path.join(run_dir, SUBMISSIONS_NAME), [])
            if manifest is None and not submissions:  # not a run (yet)
                if run_dir in known:
                    db.execute("delete from runs where run_dir = ?", (run_dir,))
                continue
            summary = _summary(manifest, submissions)
            db.execute(
                "insert or replace into runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_dir, mtime if mtime < settled else 0, json.dumps(summary), json.dumps(manifest),
                 json.dumps(submissions), *_settled_row(run_dir, summary)),
            )
        db.executemany("delete from runs where run_dir = ?", [(k,) for k in set(known) - set(on_disk)])

    def sync(self, full: bool = True) -> list[dict[str, Any]]:
        """Refresh the index; return every run's files' content (`full=False`: only what `status` shows)."""
        with self._connect() as db:
            self._refresh(db)
            if full:
                rows = db.execute("select run_dir, manifest, submissions from runs").fetchall()
                return [{"run_dir": Path(r[0]), "manifest": json.loads(r[1]), "submissions": json.loads(r[2])}
                        for r in rows]
            rows = db.execute("select run_dir, summary from runs").fetchall()
        return [{"run_dir": Path(r[0]), **json.loads(r[1])} for r in rows]

    def rebuild(self) -> int:
        (self.root / INDEX_NAME).unlink(missing_ok=True)
        return len(self.sync(full=False))

    def runs(self, ask_slurm: bool = True, full: bool = True) -> list["RunView"]:
        """Every run with its state; `full=False` keeps only what `status` shows of each manifest."""
        views = [RunView(e["run_dir"], e["manifest"], e["submissions"]) for e in self.sync(full)]
        _resolve(views, ask_slurm)
        return sorted(views, key=lambda v: (v.exp_name, v.created or "", v.run_name))

    def status_rows(self) -> list["StatusRow"]:
        """`status --json` rows, sorted as `runs()`: settled runs' straight from the index, the others resolved
        against one sacct call (at 10,000 runs, building every row anew costs most of `status`)."""
        with self._connect() as db:
            self._refresh(db)
            settled = db.execute("select exp_name, sweep_id, state, created, run_name, settled_row from runs "
                                 "where settled_row is not null").fetchall()
            others = db.execute("select run_dir, summary from runs where settled_row is null").fetchall()
        views = [RunView(Path(r[0]), **json.loads(r[1])) for r in others]
        _resolve(views, ask_slurm=True)
        rows = [StatusRow(*r) for r in settled]
        rows += [StatusRow(v.exp_name, v.sweep_id, v.state, v.created or "", v.run_name, json.dumps(v.to_json()))
                 for v in views]
        return sorted(rows, key=lambda r: (r.exp_name, r.created, r.run_name))


class StatusRow(NamedTuple):
    """A run's `status --json` row as JSON text, with what it is filtered and sorted by."""

    exp_name: str
    sweep_id: str | None
    state: str
    created: str
    run_name: str
    json: str


def _settled_row(run_dir: str, summary: dict[str, Any]) -> tuple:
    """For a run whose state SLURM can no longer change: (row, exp_name, sweep_id, state, created, run_name)."""
    view = RunView(Path(run_dir), summary["manifest"], summary["submissions"])
    if view.needs_slurm():
        return (None,) * 6
    view.resolve(SlurmView({}))
    return json.dumps(view.to_json()), view.exp_name, view.sweep_id, view.state, view.created or "", view.run_name


def _resolve(views: list["RunView"], ask_slurm: bool) -> None:
    """Every view's state from one sacct call (and one `scontrol ping` when that may be stale)."""
    pending = [v.job_id for v in views if v.job_id and v.needs_slurm()]
    slurm = query_sacct(pending) if ask_slurm and pending else SlurmView({})
    live = any(row["state"] in _LIVE_SLURM for row in slurm.jobs.values())
    if ask_slurm and not slurm.error and (live or any(slurm.job(j) is None for j in pending)):
        slurm.controller_error = controller_down()
    for view in views:
        view.resolve(slurm)


def query_sacct(job_ids: list[str]) -> SlurmView:
    """One sacct call for all the given jobs (never one per job: it would load the controller)."""
    # Array tasks that have not started yet are only known under their array's id.
    ids = sorted(set(job_ids) | {j.split("_")[0] for j in job_ids if "_" in j})
    try:
        out = subprocess.run(
            ["sacct", "-n", "-P", "-X", "-o", "JobID,State,ExitCode,NodeList", "-j", ",".join(ids)],
            capture_output=True, text=True, timeout=60,
        )
    except FileNotFoundError:
        return SlurmView({}, "sacct not found (no Slurm client on this machine)")
    except subprocess.TimeoutExpired:
        return SlurmView({}, "sacct timed out")
    if out.returncode:
        reason = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        return SlurmView({}, f"sacct failed: {reason}")
    jobs = {}
    for line in out.stdout.splitlines():
        parts = line.split("|")
        if len(parts) >= 4:
            jobs[parts[0]] = {"state": sacct_state(parts[1]), "exit_code": parts[2], "node": parts[3]}
    return SlurmView(jobs)


def controller_down() -> str | None:
    """Why slurmctld does not answer (one `scontrol ping`), or None if it does."""
    try:
        out = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"scontrol ping failed: {e}"
    if "is UP" in out.stdout:
        return None
    # e.g. "Slurmctld(primary) at vm is DOWN", then a banner of asterisks
    said = (out.stdout.strip() or out.stderr.strip() or f"exit {out.returncode}").splitlines()[0]
    return f"slurmctld not responding ({said})"


class RunView:
    """One run as `status` shows it: the manifest merged with SLURM's word on its job."""

    def __init__(self, run_dir: Path, manifest: dict[str, Any] | None, submissions: list[dict[str, Any]]) -> None:
        self.run_dir, self.manifest, self.submissions = run_dir, manifest, submissions
        self.state, self.stale, self.note = "UNKNOWN", False, ""

    @cached_property
    def m(self) -> dict[str, Any]:
        return self.manifest or {}

    @property
    def run_id(self) -> str:
        return self.m.get("run_id") or f"pending:{self.run_dir.name}"

    @cached_property
    def exp_name(self) -> str:
        return self.m.get("exp_name") or self.run_dir.parent.name

    @cached_property
    def run_name(self) -> str:
        return self.m.get("run_name") or self.run_dir.name

    @property
    def sweep_id(self) -> str | None:
        if self.m.get("sweep_id"):
            return self.m["sweep_id"]
        return self.submissions[-1].get("sweep_id") if self.submissions else None

    @property
    def created(self) -> str | None:
        return self.m.get("created") or (self.submissions[0].get("submitted") if self.submissions else None)

    @property
    def attempts(self) -> list[dict]:
        return self.m.get("attempts", [])

    @cached_property
    def job_id(self) -> str | None:
        """The newest SLURM job of this run: a later submission, or the last attempt's job."""
        attempt_jobs = [a.get("slurm_array_id") or a.get("slurm_job_id") for a in self.attempts]
        submitted = self.submissions[-1].get("job_id") if self.submissions else None
        if submitted and submitted not in attempt_jobs and self._submitted_after_last_attempt():
            return submitted
        return next((j for j in reversed(attempt_jobs) if j), submitted)

    def _submitted_after_last_attempt(self) -> bool:
        if not self.attempts:
            return True
        return (self.submissions[-1].get("submitted") or "") >= (self.attempts[-1].get("started") or "")

    def needs_slurm(self) -> bool:
        status = self.m.get("status")
        if self.manifest is None or status in ("running", "requeued"):
            return True
        # Whatever the job recorded last (a SIGTERM reads as "cancelled", a killed W&B service as
        # "failed"), Slurm may have requeued it (preemption, node failure); only completion is final.
        return self.job_id is not None and (status != "completed" or self.job_id not in self._attempt_jobs())

    def _attempt_jobs(self) -> set[str]:
        return {a.get("slurm_array_id") or a.get("slurm_job_id") for a in self.attempts}

    def resolve(self, slurm: SlurmView) -> None:
        self._resolve_state(slurm)
        skipped = self.m.get("skipped_checkpoints") or []
        if skipped:
            last = skipped[-1]
            more = f" ({len(skipped)} set aside in all)" if len(skipped) > 1 else ""
            self.note = "; ".join(filter(None, [
                self.note, f"skipped incomplete {last['checkpoint']}: {last['reason']}{more}"]))

    def _resolve_state(self, slurm: SlurmView) -> None:
        status = (self.m.get("status") or "").upper()
        if not self.needs_slurm():
            self.state = status or "UNKNOWN"
            if self.m.get("error"):
                self.note = self.m["error"]
            return
        if self.job_id is None:  # a local run: its lease tells whether it still lives
            self.state = "RUNNING" if lease_is_live(self.run_dir) else "LOST"
            if self.state == "LOST":
                self.note = "manifest says running but no process holds the run dir"
            return
        if slurm.error:
            if status in ("COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "PREEMPTED"):
                self.state, self.note = status, self.m.get("error") or ""  # the job's own account stands
                return
            self.state, self.stale = "UNKNOWN", True
            self.note = f"last known {status or 'SUBMITTED'}; {slurm.error}"
            return
        job = slurm.job(self.job_id)
        if job is None:
            if self.manifest is None and slurm.controller_error:
                self.state, self.stale = "UNKNOWN", True
                self.note = f"submitted as job {self.job_id}, not in SLURM accounting yet; {slurm.controller_error}"
                return
            if self.manifest is None:  # slurmdbd records a new job with a short delay
                self.state, self.note = "PENDING", f"submitted as job {self.job_id}; not in SLURM accounting yet"
                return
            self.state = "LOST" if status == "RUNNING" else (status or "UNKNOWN")
            self.note = f"SLURM has no record of job {self.job_id}"
            return
        sstate = job["state"]
        if sstate in _LIVE_SLURM and slurm.controller_error:
            # Accounting only learns from the controller: its live states may be out of date.
            self.state, self.stale = "UNKNOWN", True
            self.note = f"last known {sstate}; {slurm.controller_error}"
            return
        if sstate == "PENDING" and (status == "REQUEUED" or self.job_id in self._attempt_jobs()):
            sstate = "REQUEUED"  # it ran before: Slurm put it back in the queue
        if sstate in ("COMPLETED", "FAILED") and status in ("COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "PREEMPTED"):
            sstate = status  # the job's own account is more precise than its exit code
        self.state = sstate if sstate in _SACCT_STATES else "UNKNOWN"
        if self.m.get("error") and self.state == status:
            self.note = self.m["error"]
        elif self.state == "REQUEUED" and status not in ("REQUEUED", ""):
            self.note = f"Slurm requeued the job after it recorded {status.lower()}"
        elif self.state == "FAILED":
            self.note = f"job ended FAILED (exit code {job['exit_code']}) before it could record why"
        elif self.state in ("TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY", "CANCELLED") and status == "RUNNING":
            self.note = f"job ended {self.state} before it could record it"

    def last_checkpoint(self) -> str | None:
        ckpts = self.m.get("checkpoints") or []
        return ckpts[-1]["path"].rpartition("/")[2] if ckpts else None

    def elapsed_s(self) -> float | None:
        # Summaries carry the spans precomputed (parsing every attempt's times dominates `status` at 10k runs).
        spans = self.m["attempt_spans"] if "attempt_spans" in self.m else _attempt_spans(self.attempts)
        now = time.time() if self.state == "RUNNING" else None
        total = sum(max(0.0, (end or now) - start) for start, end in spans if start and (end or now))
        return total or None

    def to_json(self) -> dict[str, Any]:
        metrics = self.m.get("metrics") or {}
        return {
            "run_id": self.run_id, "exp_name": self.exp_name, "run_name": self.run_name, "sweep_id": self.sweep_id,
            "state": self.state, "stale": self.stale, "note": self.note, "job_id": self.job_id,
            "last_step": self.m.get("last_step"), "max_steps": self.m.get("max_steps"),
            "reward": metrics.get("reward"), "last_checkpoint": self.last_checkpoint(),
            "elapsed_s": self.elapsed_s(), "wandb_id": self.m.get("wandb_id"), "wandb_url": self.m.get("wandb_url"),
            "run_dir": str(self.run_dir), "created": self.created, "updated": self.m.get("updated"),
            "attempts": len(self.attempts), "error": self.m.get("error"),
            "skipped_checkpoints": self.m.get("skipped_checkpoints") or [],
        }


def _attempt_spans(attempts: list[dict]) -> list[tuple[float | None, float | None]]:
    return [(_parse_time(a.get("started")), _parse_time(a.get("ended"))) for a in attempts]


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
