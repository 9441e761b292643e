"""The experiment registry: every run under the experiments root, with its live SLURM state.

Source of truth: each run dir's `run.json` (written by its job) and `submissions.json` (written at submission). The
SQLite index under the root is a cache refreshed from the run dirs whose mtime changed (jobs and the launcher replace
files by rename, which moves it); deleting it loses nothing, and a reader who may not write it (a teammate on a
shared root) keeps a private copy instead. A run dir that cannot be read is listed as UNREADABLE, never an error.
SLURM is asked once per refresh: one `sacct` call for every SLURM run not settled, plus one `scontrol ping` when
that reports live jobs (accounting only learns of them from the controller).

CLI-side: imports neither torch nor loguru, and nothing from the job's side but file formats.
"""

import hashlib
import json
import os
import sqlite3
import time
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from rlvr_vocab import slurm_client
from rlvr_vocab.errors import ConfigError
from rlvr_vocab.eval.results import read_summary
from rlvr_vocab.run.fsio import umask
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import UnreadableManifest, parse_iso, read_manifest
from rlvr_vocab.run.states import FINAL, RunState

INDEX_NAME = ".registry.sqlite"
# The index is a cache: a schema change just rebuilds it.
_SCHEMA_VERSION = 4
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
# Seconds SQLite retries a locked index before giving up.
_BUSY_TIMEOUT_S = 10
# What `status` reads of a manifest and of the submissions (the rest stays in the index, unparsed).
_SUMMARY_KEYS = ("run_id", "exp_name", "run_name", "sweep_id", "created", "updated", "status", "error",
                 "last_step", "max_steps", "wandb_id", "wandb_url", "skipped_checkpoints", "identity", "benchmarks")
_ATTEMPT_KEYS = ("slurm_array_id", "slurm_job_id", "started", "end_state")
_SUBMISSION_KEYS = ("job_id", "submitted", "sweep_id")
# sacct's job states as run states (the rest have the same name).
_FROM_SLURM = {"SUSPENDED": RunState.RUNNING, "RESIZING": RunState.RUNNING, "CONFIGURING": RunState.RUNNING,
               "COMPLETING": RunState.RUNNING, "REQUEUE_HOLD": RunState.REQUEUED, "REQUEUE_FED": RunState.REQUEUED,
               "BOOT_FAIL": RunState.NODE_FAIL, "DEADLINE": RunState.TIMEOUT, "REVOKED": RunState.CANCELLED}


def _slurm_state(text: str) -> RunState:
    return _FROM_SLURM.get(text) or RunState.parse(text) or RunState.UNKNOWN


class SlurmView:
    """What one sacct call said: job id -> row, or why it could not be asked."""

    # Plain classes here, not dataclasses: importing `dataclasses` (inspect, ast) costs `status` ~20 ms.
    def __init__(self, rows: dict[str, slurm_client.SacctRow], error: str | None = None) -> None:
        self.rows, self.error = rows, error
        # Set when sacct answered but the controller does not: accounting's live states may be stale.
        self.controller_error: str | None = None

    def job(self, job_id: str) -> slurm_client.SacctRow | None:
        return slurm_client.row_for(self.rows, job_id)


def query_sacct(job_ids: list[str]) -> SlurmView:
    """One sacct call for all the given jobs (never one per job: it would load the controller)."""
    try:
        rows = slurm_client.sacct(job_ids)
    except slurm_client.SlurmError as e:
        return SlurmView({}, str(e))
    return SlurmView({r.job_id: r for r in rows})


def experiments_root(cli_root: str | None) -> Path:
    return Path(cli_root or os.environ.get("RLVR_EXPERIMENTS_ROOT", "experiments"))


def _scandir(path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def _run_dirs(root: Path) -> dict[str, int]:
    """<root>/<exp>/<run>/ -> the run dir's mtime (manifest and submissions are replaced by rename, which moves it)."""
    found = {}
    for exp in _scandir(root):
        if exp.name.startswith(("_", ".")) or not exp.is_dir(follow_symlinks=False):
            continue
        for run in _scandir(exp.path):
            if not run.name.startswith(".") and run.is_dir(follow_symlinks=False):
                try:
                    found[run.path] = run.stat(follow_symlinks=False).st_mtime_ns
                except OSError:
                    pass
    return found


def _read_submissions(run_dir: str) -> list[dict]:
    try:
        with open(RunPaths(run_dir).submissions) as f:
            records = json.load(f)
    except (OSError, ValueError):
        return []
    return records if isinstance(records, list) else []


def _read_run(run_dir: str) -> tuple[dict | None, list[dict]]:
    """(manifest, submissions) of a run dir; an unreadable manifest is `{"unreadable": why}`."""
    try:
        manifest = read_manifest(run_dir)
    except UnreadableManifest as e:
        manifest = {"unreadable": str(e)}
    if manifest is None and not os.access(run_dir, os.R_OK | os.X_OK):
        manifest = {"unreadable": f"{run_dir}: permission denied"}
    if manifest is not None and "unreadable" not in manifest:
        # Evaluation jobs that ended after the training job's last manifest write are in evals.json only.
        manifest["benchmarks"] = read_summary(RunPaths(run_dir)) or manifest.get("benchmarks") or {}
    return manifest, _read_submissions(run_dir)


def _summary(manifest: dict | None, submissions: list[dict]) -> dict[str, Any]:
    """The part of a run's files that `status` shows."""
    m = None
    if manifest is not None and "unreadable" in manifest:
        m = {"unreadable": manifest["unreadable"]}
    elif manifest is not None:
        m = {k: manifest.get(k) for k in _SUMMARY_KEYS}
        attempts = manifest.get("attempts") or []
        m["attempts"] = [{k: a.get(k) for k in _ATTEMPT_KEYS} for a in attempts]
        m["attempt_spans"] = _attempt_spans(attempts)
        m["checkpoints"] = (manifest.get("checkpoints") or [])[-1:]
        m["metrics"] = {"reward": (manifest.get("metrics") or {}).get("reward")}
    return {"manifest": m, "submissions": [{k: s.get(k) for k in _SUBMISSION_KEYS} for s in submissions]}


def _private_index(root: Path) -> Path:
    """This user's own copy of a root's index, for a root whose index they may not write."""
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("RLVR_CACHE_DIR", Path.home() / ".cache" / "rlvr_vocab"))
    return cache / "registry" / f"{digest}.sqlite"


def _index_error(path: Path, e: sqlite3.Error) -> ConfigError:
    said = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "locked" in said:
        return ConfigError(f"registry index {path}", f"is locked by another process ({said}) after "
                           f"{_BUSY_TIMEOUT_S} s", "retry; if it stays locked, run `rlvr-vocab registry rebuild`")
    return ConfigError(f"registry index {path}", f"cannot be used ({said})",
                       "run `rlvr-vocab registry rebuild` (the index is a cache: nothing is lost)")


class Registry:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_NAME

    def _open(self, path: Path) -> sqlite3.Connection:
        new = not path.exists()
        db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S)
        if db.execute("pragma user_version").fetchone()[0] != _SCHEMA_VERSION:
            db.execute("drop table if exists runs")
            db.execute(f"pragma user_version = {_SCHEMA_VERSION}")
        db.execute(_SCHEMA)
        db.commit()
        if new:  # SQLite creates 0644 whatever the umask: a group-shared root needs group write
            try:
                os.chmod(path, 0o666 & ~umask())
            except OSError:
                pass
        return db

    def _connect(self) -> sqlite3.Connection:
        shared = self.index_path
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK) or (shared.exists() and not os.access(shared, os.W_OK)):
                raise PermissionError(shared)
            return self._open(shared)
        except (PermissionError, sqlite3.OperationalError) as e:
            if isinstance(e, sqlite3.OperationalError) and "readonly" not in str(e) and "unable to open" not in str(e):
                raise _index_error(shared, e) from None
        except sqlite3.DatabaseError as e:
            raise _index_error(shared, e) from None
        private = _private_index(self.root)
        private.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._open(private)
        except sqlite3.DatabaseError as e:
            raise _index_error(private, e) from None

    def _refresh(self, db: sqlite3.Connection) -> None:
        """Re-read the run dirs whose mtime changed; forget the ones that are gone."""
        known = dict(db.execute("select run_dir, dir_mtime from runs"))
        on_disk = _run_dirs(self.root)
        settled = time.time_ns() - _RACY_NS
        for run_dir, mtime in on_disk.items():
            if known.get(run_dir) == mtime:
                continue
            manifest, submissions = _read_run(run_dir)
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

    def _query(self, queries: list[str]) -> list[list[tuple]]:
        db = self._connect()
        try:
            with db:
                self._refresh(db)
                return [db.execute(q).fetchall() for q in queries]
        except sqlite3.DatabaseError as e:
            raise _index_error(self.index_path, e) from None
        finally:
            db.close()

    def sync(self, full: bool = True) -> list[dict[str, Any]]:
        """Refresh the index; return every run's files' content (`full=False`: only what `status` shows)."""
        if full:
            (rows,) = self._query(["select run_dir, manifest, submissions from runs"])
            return [{"run_dir": Path(r[0]), "manifest": json.loads(r[1]), "submissions": json.loads(r[2])}
                    for r in rows]
        (rows,) = self._query(["select run_dir, summary from runs"])
        return [{"run_dir": Path(r[0]), **json.loads(r[1])} for r in rows]

    def rebuild(self) -> int:
        for path in (self.index_path, _private_index(self.root)):
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                except PermissionError:
                    pass
        return len(self.sync(full=False))

    def runs(self, ask_slurm: bool = True, full: bool = True) -> list["RunView"]:
        """Every run with its state; `full=False` keeps only what `status` shows of each manifest."""
        views = [RunView(e["run_dir"], e["manifest"], e["submissions"]) for e in self.sync(full)]
        _resolve(views, ask_slurm)
        return sorted(views, key=lambda v: (v.exp_name, v.created or "", v.run_name))

    def status_rows(self) -> list["StatusRow"]:
        """`status --json` rows, sorted as `runs()`: settled runs' straight from the index, the others resolved
        against one sacct call (at 10,000 runs, building every row anew costs most of `status`)."""
        settled, others = self._query([
            "select exp_name, sweep_id, state, created, run_name, settled_row from runs where settled_row is not null",
            "select run_dir, summary from runs where settled_row is null"])
        views = [RunView(Path(r[0]), **json.loads(r[1])) for r in others]
        _resolve(views, ask_slurm=True)
        rows = [StatusRow(*r) for r in settled]
        rows += [StatusRow(v.exp_name, v.sweep_id, v.state.value, v.created or "", v.run_name,
                           json.dumps(v.to_json())) for v in views]
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
    return (json.dumps(view.to_json()), view.exp_name, view.sweep_id, view.state.value, view.created or "",
            view.run_name)


def _resolve(views: list["RunView"], ask_slurm: bool) -> None:
    """Every view's state from one sacct call (and one `scontrol ping` when that may be stale)."""
    pending = [v.job_id for v in views if v.job_id and v.needs_slurm()]
    slurm = query_sacct(pending) if ask_slurm and pending else SlurmView({})
    live = any(row.state in slurm_client.LIVE_STATES for row in slurm.rows.values())
    if ask_slurm and not slurm.error and (live or any(slurm.job(j) is None for j in pending)):
        slurm.controller_error = slurm_client.controller_down()
    for view in views:
        view.resolve(slurm)


class RunView:
    """One run as `status` shows it: the manifest merged with SLURM's word on its job."""

    def __init__(self, run_dir: Path, manifest: dict[str, Any] | None, submissions: list[dict[str, Any]]) -> None:
        self.run_dir, self.manifest, self.submissions = Path(run_dir), manifest, submissions
        self.state, self.stale, self.note = RunState.UNKNOWN, False, ""

    @cached_property
    def m(self) -> dict[str, Any]:
        return self.manifest if self.manifest is not None and "unreadable" not in self.manifest else {}

    @property
    def unreadable(self) -> str | None:
        return (self.manifest or {}).get("unreadable")

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.run_dir)

    @property
    def recorded(self) -> RunState | None:
        return RunState.parse(self.m.get("status"))

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

    def _attempt_jobs(self) -> set[str]:
        return {a.get("slurm_array_id") or a.get("slurm_job_id") for a in self.attempts}

    @cached_property
    def job_id(self) -> str | None:
        """The newest SLURM job of this run: a later submission, or the last attempt's job."""
        attempt_jobs = [a.get("slurm_array_id") or a.get("slurm_job_id") for a in self.attempts]
        if self.submitted_since_last_attempt:
            return self.submissions[-1].get("job_id")
        return next((j for j in reversed(attempt_jobs) if j), None)

    @cached_property
    def submitted_since_last_attempt(self) -> bool:
        """A job was submitted after the run's last attempt started (it has not started yet, or is starting)."""
        if not self.submissions or not self.submissions[-1].get("job_id"):
            return False
        last = self.submissions[-1]
        if last["job_id"] in self._attempt_jobs():
            return False
        return not self.attempts or (last.get("submitted") or "") >= (self.attempts[-1].get("started") or "")

    def needs_slurm(self) -> bool:
        if self.unreadable:
            return False
        if self.manifest is None or self.recorded in (RunState.RUNNING, RunState.REQUEUED):
            return True
        # Whatever the job recorded last (a SIGTERM reads as CANCELLED, a killed W&B service as FAILED), Slurm may
        # have requeued it (preemption, node failure); only completion is final.
        return self.job_id is not None and (self.recorded != RunState.COMPLETED or self.submitted_since_last_attempt)

    def resolve(self, slurm: SlurmView) -> None:
        self._resolve_state(slurm)
        skipped = self.m.get("skipped_checkpoints") or []
        if skipped:
            last = skipped[-1]
            more = f" ({len(skipped)} set aside in all)" if len(skipped) > 1 else ""
            self.note = "; ".join(filter(None, [
                self.note, f"skipped incomplete {last['checkpoint']}: {last['reason']}{more}"]))

    def _resolve_state(self, slurm: SlurmView) -> None:
        recorded = self.recorded
        if self.unreadable:
            self.state, self.note = RunState.UNREADABLE, self.unreadable
            return
        if not self.needs_slurm():
            self.state, self.note = recorded or RunState.UNKNOWN, self.m.get("error") or ""
            return
        if self.job_id is None:  # a local run: its lease tells whether it still lives
            from rlvr_vocab.run.lease import lease_is_live

            if recorded == RunState.RUNNING and not lease_is_live(self.paths):
                self.state, self.note = RunState.LOST, "manifest says running but no process holds the run dir"
            else:
                self.state, self.note = recorded or RunState.UNKNOWN, self.m.get("error") or ""
            return
        if slurm.error:
            if recorded in FINAL and not self.submitted_since_last_attempt:
                self.state, self.note = recorded, self.m.get("error") or ""  # the job's own account stands
                return
            self.state, self.stale = RunState.UNKNOWN, True
            self.note = f"last known {recorded or 'PENDING'}; {slurm.error}"
            return
        row = slurm.job(self.job_id)
        if self.submitted_since_last_attempt:
            self._resolve_new_job(row, slurm)
            return
        if row is None:
            self.state = RunState.LOST if recorded == RunState.RUNNING else (recorded or RunState.UNKNOWN)
            self.note = f"SLURM has no record of job {self.job_id}"
            return
        state = _slurm_state(row.state)
        if row.state in slurm_client.LIVE_STATES and slurm.controller_error:
            # Accounting only learns from the controller: its live states may be out of date.
            self.state, self.stale = RunState.UNKNOWN, True
            self.note = f"last known {row.state}; {slurm.controller_error}"
            return
        if state == RunState.PENDING:
            state = RunState.REQUEUED  # it ran before: Slurm put it back in the queue
        task_failed = state == RunState.FAILED and recorded == RunState.CANCELLED
        if state in (RunState.COMPLETED, RunState.FAILED) and recorded in FINAL and not task_failed:
            state = recorded  # the job's own account is more precise than its exit code
        self.state = state
        if self.m.get("error") and state == recorded:
            self.note = self.m["error"]
        elif state == RunState.REQUEUED and recorded not in (RunState.REQUEUED, None):
            self.note = f"Slurm requeued the job after it recorded {recorded}"
        elif row.state == "SUSPENDED":
            self.note = f"job {self.job_id} is suspended"
        elif task_failed:
            self.note = (f"a task of job {self.job_id} failed (exit code {row.exit_code}) and Slurm ended the others; "
                         "see `rlvr-vocab logs`")
        elif state == RunState.FAILED:
            self.note = f"job ended FAILED (exit code {row.exit_code}) before it could record why"
        elif state in FINAL and recorded == RunState.RUNNING:
            self.note = f"job ended {state} before it could record it"

    def _resolve_new_job(self, row: slurm_client.SacctRow | None, slurm: SlurmView) -> None:
        """The run's newest job was submitted after its last attempt: that job's state is the run's."""
        if row is None:
            if slurm.controller_error:
                self.state, self.stale = RunState.UNKNOWN, True
                self.note = f"submitted as job {self.job_id}, not in SLURM accounting yet; {slurm.controller_error}"
            else:  # slurmdbd records a new job with a short delay
                self.state, self.note = RunState.PENDING, f"submitted as job {self.job_id}"
            return
        if row.state in slurm_client.LIVE_STATES and slurm.controller_error:
            self.state, self.stale = RunState.UNKNOWN, True
            self.note = f"last known {row.state}; {slurm.controller_error}"
            return
        self.state = _slurm_state(row.state)
        if self.state in FINAL:
            self.note = f"job {self.job_id} ended {row.state} (exit code {row.exit_code}) before the run started"

    def settled_attempts(self) -> list[dict]:
        """The attempts as `show` lists them: the last one ended as `status` says when its job could not record it."""
        attempts = [dict(a) for a in self.attempts]
        if attempts and attempts[-1].get("end_state") is None and self.state in FINAL and \
                not self.submitted_since_last_attempt:
            attempts[-1]["end_state"] = self.state.value
            attempts[-1]["reason"] = self.note or "per Slurm"
        return attempts

    def last_checkpoint(self) -> str | None:
        ckpts = self.m.get("checkpoints") or []
        return ckpts[-1]["path"].rpartition("/")[2] if ckpts else None

    def elapsed_s(self) -> float | None:
        # Summaries carry the spans precomputed (parsing every attempt's times dominates `status` at 10k runs).
        spans = self.m["attempt_spans"] if "attempt_spans" in self.m else _attempt_spans(self.attempts)
        now = time.time() if self.state == RunState.RUNNING else None
        total = sum(max(0.0, (end or now) - start) for start, end in spans if start and (end or now))
        return total or None

    def to_json(self) -> dict[str, Any]:
        metrics = self.m.get("metrics") or {}
        return {
            "run_id": self.run_id, "exp_name": self.exp_name, "run_name": self.run_name, "sweep_id": self.sweep_id,
            "state": self.state.value, "stale": self.stale, "note": self.note, "job_id": self.job_id,
            "last_step": self.m.get("last_step"), "max_steps": self.m.get("max_steps"),
            "reward": metrics.get("reward"), "last_checkpoint": self.last_checkpoint(),
            "elapsed_s": self.elapsed_s(), "wandb_id": self.m.get("wandb_id"), "wandb_url": self.m.get("wandb_url"),
            "run_dir": str(self.run_dir), "created": self.created, "updated": self.m.get("updated"),
            "attempts": len(self.attempts), "error": self.m.get("error"), "identity": self.m.get("identity"),
            "benchmarks": self.m.get("benchmarks") or {},
            "skipped_checkpoints": self.m.get("skipped_checkpoints") or [],
        }


def _attempt_spans(attempts: list[dict]) -> list[tuple[float | None, float | None]]:
    return [(parse_iso(a.get("started")), parse_iso(a.get("ended"))) for a in attempts]
