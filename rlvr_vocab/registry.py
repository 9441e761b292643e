"""The experiment registry: every run under the experiments root, with its live SLURM state.

Source of truth: each run dir's `run.json` (written by its job) and `submissions.json` (written at submission). The
SQLite index under the root is a cache refreshed from the run dirs whose mtime changed (jobs and the launcher replace
files by rename, which moves it, and move their experiment dir's mtime too, so that an unchanged experiment's finished
runs need no look at all); deleting it loses nothing, and a reader who may not write it (a teammate on a
shared root) keeps a private copy instead. A run dir that cannot be read is listed as UNREADABLE, never an error.
SLURM is asked once per refresh: one `sacct` call for every SLURM run not settled (of those `status` was asked
about), plus one `scontrol ping` when that reports live jobs (accounting only learns of them from the controller).
That call also brings each job's resources (every run of it, requeues included, with its steps' MaxRSS): a job
SLURM is done with is kept in the index's `accounting` table, and the commands that show resources (`show`,
`compare`, `usage`) add to the one call only the jobs of theirs that table does not hold yet.

CLI-side: imports neither torch nor loguru, and nothing from the job's side but file formats.
"""

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from rlvr_vocab import slurm_client
from rlvr_vocab.errors import ConfigError
from rlvr_vocab.eval.results import read_summary
from rlvr_vocab.run.fsio import umask
from rlvr_vocab.run.layout import RunPaths, notified_marker
from rlvr_vocab.run.manifest import UnreadableManifest, iso, parse_iso, read_manifest, slurm_ended
from rlvr_vocab.run.states import FINAL, RunState

INDEX_NAME = ".registry.sqlite"
# The index is a cache: a schema change just rebuilds it.
_SCHEMA_VERSION = 9
# Three tables, so that what every `status` scans stays small. `runs`: what `status` filters, orders and counts by,
# a few hundred bytes a run; `state` only for a settled run (one whose state no SLURM answer can change any more),
# `slurm_job` only for the others that SLURM is asked about.
# `views`: a settled run's `status --json` row, served as it is, and every run's summary (what `status` reads of its
# files). `files`: the run's files whole, for the commands that read them all. `accounting` (not per run dir, so
# not in _TABLES): a job SLURM is done with -> every run of it as sacct said (SacctRow fields), `[]` when sacct has no
# record of the job of a finished run (purged, another cluster's).
_TABLES = ("runs", "views", "files")
_SCHEMA = (
    "create table if not exists runs (run_dir text primary key, dir_mtime integer, exp_dir text, exp_name text,"
    " sweep_id text, run_name text, created text, created_ts real, state text, slurm_job text)",
    # The runs a refresh looks at even in an experiment whose dir did not change (see `_refresh`).
    "create index if not exists runs_to_stat on runs (exp_dir, run_dir, dir_mtime) where state is null or"
    " dir_mtime = 0",
    "create index if not exists runs_by_exp on runs (exp_dir)",
    "create index if not exists runs_by_created on runs (created_ts)",
    # `status --json` lists runs in this order: walking an index that holds all it reads of `runs` spares a sort.
    "create index if not exists runs_in_order on runs (exp_name, created, run_name, run_dir, state)",
    "create table if not exists views (run_dir text primary key, settled_row text, summary text)",
    "create table if not exists files (run_dir text primary key, manifest text, submissions text)",
    "create table if not exists accounting (job_id text primary key, runs text)",
    "create table if not exists experiments (exp_dir text primary key, dir_mtime integer, scanned real)",
)
# A directory changed this recently may change again within the clock's granularity without its mtime moving:
# such entries are re-read on the next refresh.
_RACY_NS = 2_000_000_000
# Each experiment's run dirs are all looked at again at least this often, whatever its dir's mtime says: a change
# made by hand (or by a writer that could not move the experiment dir's mtime) shows within this time.
_RESCAN_AFTER_S = 3600
# A run whose job SLURM is done with (or has no record of) is served from the index, like a completed one, once this
# long has passed since the job ended (or, unknown to SLURM, since the run's files last changed): no requeue comes
# that late, and a resume or a new attempt replaces its files, which makes it SLURM's to say again.
_SETTLE_AFTER_S = 3600
# Seconds SQLite retries a locked index before giving up.
_BUSY_TIMEOUT_S = 10
# What `status` reads of a manifest and of the submissions (the rest stays in the index, unparsed).
_SUMMARY_KEYS = ("run_id", "exp_name", "run_name", "sweep_id", "created", "updated", "status", "error",
                 "last_step", "max_steps", "wandb_id", "wandb_url", "skipped_checkpoints", "identity", "benchmarks",
                 "disk_bytes")
_ATTEMPT_KEYS = ("slurm_array_id", "slurm_job_id", "started", "ended", "end_state", "resumed_from_step", "last_step")
_SUBMISSION_KEYS = ("job_id", "submitted", "sweep_id")
# sacct's job states as run states (the rest have the same name).
_FROM_SLURM = {"SUSPENDED": RunState.RUNNING, "RESIZING": RunState.RUNNING, "CONFIGURING": RunState.RUNNING,
               "COMPLETING": RunState.RUNNING, "REQUEUE_HOLD": RunState.REQUEUED, "REQUEUE_FED": RunState.REQUEUED,
               "BOOT_FAIL": RunState.NODE_FAIL, "DEADLINE": RunState.TIMEOUT, "REVOKED": RunState.CANCELLED}


def _slurm_state(text: str) -> RunState:
    return _FROM_SLURM.get(text) or RunState.parse(text) or RunState.UNKNOWN


class SlurmView:
    """What one sacct call said: job id -> its latest run's row (and every run of it), or why it could not be asked."""

    # Plain classes here, not dataclasses: importing `dataclasses` (inspect, ast) costs `status` ~20 ms.
    def __init__(self, rows: dict[str, slurm_client.SacctRow], error: str | None = None,
                 runs: dict[str, list[slurm_client.SacctRow]] | None = None) -> None:
        self.rows, self.error = rows, error
        self.runs = runs if runs is not None else {job: [row] for job, row in rows.items()}
        # Set when sacct answered but the controller does not: accounting's live states may be stale.
        self.controller_error: str | None = None
        # The controller's queue state of the jobs asked about that accounting has no record of (yet): a held job,
        # or one slurmdbd has not recorded, is still queued.
        self.queued: dict[str, str] = {}

    def job(self, job_id: str) -> slurm_client.SacctRow | None:
        return slurm_client.row_for(self.rows, job_id)

    def job_runs(self, job_id: str) -> list[slurm_client.SacctRow] | None:
        """Every run of the job, oldest first (an array task not started yet: its array's pending row)."""
        if job_id in self.runs:
            return self.runs[job_id]
        row = self.job(job_id)
        return [row] if row is not None else None

    def finished_jobs(self) -> dict[str, list[slurm_client.SacctRow]]:
        """The jobs SLURM is done with (their latest run ended), and every run of each."""
        return {job: runs for job, runs in self.runs.items()
                if runs[-1].end is not None and runs[-1].state not in slurm_client.LIVE_STATES and "[" not in job}


def query_sacct(job_ids: list[str]) -> SlurmView:
    """One sacct call for all the given jobs (never one per job: it would load the controller), every run of each."""
    try:
        rows = slurm_client.sacct(job_ids, every_run=True)
    except (slurm_client.SlurmError, OSError) as e:  # OSError: the kernel refused the command line (too long)
        return SlurmView({}, f"sacct could not be asked: {e}" if isinstance(e, OSError) else str(e))
    runs: dict[str, list[slurm_client.SacctRow]] = {}
    for row in rows:  # oldest first: the last row of a job is its latest run
        runs.setdefault(row.job_id, []).append(row)
    return SlurmView({job: job_runs[-1] for job, job_runs in runs.items()}, runs=runs)


def experiments_root(cli_root: str | None) -> Path:
    return Path(cli_root or os.environ.get("RLVR_EXPERIMENTS_ROOT") or "experiments")


def _scandir(path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def _experiment_dirs(root: Path) -> dict[str, int]:
    """<root>/<exp>/ -> its mtime: it moves when a run dir is created or removed in it, and when a writer of a run's
    indexed files says so (`fsio.note_change`)."""
    found = {}
    base = "" if str(root) == "." else str(root)  # run dirs spelled as their Path is: `exp/run`, not `./exp/run`
    for exp in _scandir(root):
        if exp.name.startswith(("_", ".")) or not exp.is_dir(follow_symlinks=False):
            continue
        try:
            found[os.path.join(base, exp.name)] = exp.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            pass
    return found


def _run_dirs(exp_dir: str) -> dict[str, int] | None:
    """<exp>/<run>/ -> the run dir's mtime (manifest and submissions are replaced by rename, which moves it); None
    if the experiment dir cannot be opened now."""
    found = {}
    try:
        exp_fd = os.open(exp_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        prefix = os.path.join(exp_dir, "")
        for run in _scandir(exp_fd):
            if not run.name.startswith(".") and run.is_dir(follow_symlinks=False):
                try:  # relative to the experiment's dir: the kernel resolves one name, not the whole path
                    found[prefix + run.name] = os.stat(run.name, dir_fd=exp_fd, follow_symlinks=False).st_mtime_ns
                except OSError:
                    pass
    finally:
        os.close(exp_fd)
    return found


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path, follow_symlinks=False).st_mtime_ns
    except OSError:
        return None


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
        # The views the last `status_rows` resolved against Slurm (those whose state could change).
        self.resolved: list[RunView] = []
        # Why the last `runs(usage=True)` could not ask sacct (None if it could, or needed not).
        self.slurm_error: str | None = None

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_NAME

    def _open(self, path: Path) -> sqlite3.Connection:
        new = not path.exists()
        db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S)
        if db.execute("pragma user_version").fetchone()[0] != _SCHEMA_VERSION:
            for table in (*_TABLES, "accounting", "experiments"):
                db.execute(f"drop table if exists {table}")
            db.execute(f"pragma user_version = {_SCHEMA_VERSION}")
        for statement in _SCHEMA:
            db.execute(statement)
        db.commit()
        if new:  # SQLite creates 0644 whatever the umask: a group-shared root needs group write
            try:
                os.chmod(path, 0o666 & ~umask())
            except OSError:
                pass
        return db

    def _connect(self) -> sqlite3.Connection:
        if not self.root.is_dir():
            # Nothing to index, and reading creates nothing: a command run in the wrong directory leaves no
            # `experiments/` behind.
            db = sqlite3.connect(":memory:")
            for statement in _SCHEMA:
                db.execute(statement)
            return db
        shared = self.index_path
        try:
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
        """Re-read the run dirs whose mtime changed; forget the ones that are gone.

        An experiment whose dir kept its mtime has had no run dir created or removed, and no settled run's files
        replaced (their writers move it: `fsio.note_change`): only its runs that SLURM or a live job may still
        change are looked at, which spares a stat of every run dir (most of `status` at 100,000 runs).
        """
        now, settled = time.time(), time.time_ns() - _RACY_NS
        known_exps = {exp: (mtime, scanned) for exp, mtime, scanned in db.execute("select * from experiments")}
        exps = _experiment_dirs(self.root)
        rescan = [exp for exp, mtime in exps.items() if exp not in known_exps or known_exps[exp][0] != mtime
                  or now - known_exps[exp][1] > _RESCAN_AFTER_S]
        gone_exps = [exp for exp in known_exps if exp not in exps]
        known, on_disk, scanned = {}, {}, []
        for exp in rescan:
            runs = _run_dirs(exp)
            if runs is None:  # its runs stay as the index knows them; tried again next time
                continue
            known.update(db.execute("select run_dir, dir_mtime from runs where exp_dir = ?", (exp,)))
            on_disk.update(runs)
            scanned.append(exp)
        rescanned = set(rescan)
        for run_dir, mtime, exp in db.execute("select run_dir, dir_mtime, exp_dir from runs where"
                                              " state is null or dir_mtime = 0").fetchall():
            if exp in exps and exp not in rescanned:
                known[run_dir] = mtime
                if (now_mtime := _mtime(run_dir)) is not None:
                    on_disk[run_dir] = now_mtime
        gone = [run_dir for exp in gone_exps
                for (run_dir,) in db.execute("select run_dir from runs where exp_dir = ?", (exp,))]
        gone += known.keys() - on_disk.keys()
        entries = []
        for run_dir, mtime in on_disk.items():
            if known.get(run_dir) == mtime:
                continue
            manifest, submissions = _read_run(run_dir)
            if manifest is None and not submissions:  # not a run (yet)
                if run_dir in known:
                    gone.append(run_dir)
                continue
            entries.append(_index_entry(run_dir, mtime if mtime < settled else 0, manifest, submissions))
        if entries:
            for table, rows in zip(_TABLES, zip(*entries, strict=True), strict=True):
                db.executemany(f"insert or replace into {table} values ({', '.join('?' * len(rows[0]))})", rows)
        for table in _TABLES:
            db.executemany(f"delete from {table} where run_dir = ?", [(d,) for d in gone])
        # An experiment dir changed within the clock's granularity may change again unseen: looked at again next time.
        db.executemany("insert or replace into experiments values (?, ?, ?)",
                       [(exp, exps[exp] if exps[exp] < settled else 0, now) for exp in scanned])
        db.executemany("delete from experiments where exp_dir = ?", [(exp,) for exp in gone_exps])

    def _query(self, read: Callable[[sqlite3.Connection], Any]) -> Any:
        """`read` from the index, just refreshed, in the refresh's transaction."""
        db = self._connect()
        try:
            with db:
                self._refresh(db)
                return read(db)
        except sqlite3.DatabaseError as e:
            raise _index_error(self.index_path, e) from None
        finally:
            db.close()

    def sync(self, full: bool = True) -> list[dict[str, Any]]:
        """Refresh the index; return every run's files' content (`full=False`: only what `status` shows)."""
        return _entries(self._query(lambda db: _read_entries(db, full)), full)

    def _store_accounting(self, jobs: dict[str, list[slurm_client.SacctRow]]) -> None:
        """Keep these finished jobs' runs in the index (only those it does not hold as they are). A cache: when the
        index cannot be written now, the jobs are asked again next time."""
        texts = {job: json.dumps(runs) for job, runs in jobs.items()}

        def write(db: sqlite3.Connection) -> None:
            held = {}
            ids = list(texts)
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                held.update(db.execute(f"select job_id, runs from accounting where job_id in"
                                       f" ({', '.join('?' * len(chunk))})", chunk))
            changed = [(job, text) for job, text in texts.items() if held.get(job) != text]
            if changed:
                db.executemany("insert or replace into accounting values (?, ?)", changed)

        self._write_cache(write)

    def _settle(self, runs: list[tuple[str, int, "RunView"]]) -> None:
        """Serve these runs (run dir, its mtime when read, view) from the index from now on, as their row says now,
        unless their run dir changed since."""
        def write(db: sqlite3.Connection) -> None:
            for run_dir, mtime, view in runs:
                if db.execute("update runs set state = ?, slurm_job = null where run_dir = ? and dir_mtime = ?",
                              (view.state.value, run_dir, mtime)).rowcount:
                    db.execute("update views set settled_row = ? where run_dir = ?",
                               (json.dumps(view.to_json()), run_dir))

        self._write_cache(write)

    def _write_cache(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """`write` to the index in one transaction. A cache: when it cannot be written now, the next refresh does
        the same work again."""
        try:
            db = self._connect()
        except ConfigError:
            return
        try:
            with db:
                write(db)
        except sqlite3.Error:
            pass
        finally:
            db.close()

    def rebuild(self) -> int:
        for path in (self.index_path, _private_index(self.root)):
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                except PermissionError:
                    pass
        return self._query(lambda db: db.execute("select count(*) from runs").fetchone()[0])

    def runs(self, ask_slurm: bool = True, full: bool = True, usage: bool = False,
             pick: Callable[[list["RunView"]], list["RunView"]] | None = None) -> list["RunView"]:
        """Every run with its state; `full=False` keeps only what `status` shows of each manifest.

        `pick`: only the runs it returns (given every run, unresolved) are resolved and returned. `usage`: each
        view's `job_runs` is set too: every run of each of its SLURM jobs, from the index for a job SLURM is done
        with, else from the one sacct call (which asks for those of the jobs the index does not hold).
        """
        def read(db: sqlite3.Connection) -> tuple:
            held = dict(db.execute("select job_id, runs from accounting")) if usage else {}
            return _read_entries(db, full), held

        rows, held = self._query(read)
        # Run dirs as text: a Path for each of 10,000 runs costs more than reading them.
        views = [RunView(r[0], json.loads(r[1]), json.loads(r[2])) if full else RunView(r[0], **json.loads(r[1]))
                 for r in rows]
        if pick is not None:
            views = pick(views)
        if not usage:
            _resolve(views, ask_slurm)
        else:
            missing = {job for view in views for job in view.slurm_jobs if job not in held}
            slurm = _ask_slurm([v.job_id for v in views if v.job_id and v.needs_slurm()], sorted(missing)) \
                if ask_slurm else SlurmView({})
            self.slurm_error = slurm.error
            for view in views:
                view.resolve(slurm)
            finished = slurm.finished_jobs()
            if ask_slurm and not slurm.error:
                # A finished run's job sacct has no record of (purged, another cluster's): not asked again.
                finished.update({job: [] for view in views if view.state in FINAL and view.state != RunState.LOST
                                 and not view.stale for job in view.slurm_jobs
                                 if job in missing and slurm.job_runs(job) is None})
            if finished:
                self._store_accounting(finished)
            for view in views:
                view.job_runs = {job: _job_runs(slurm, held, job) for job in view.slurm_jobs}
                view.note_slurm_ends(view.job_runs)
        return sorted(views, key=lambda v: (v.exp_name, v.created or "", v.run_name))

    def status_rows(self, match: "RunFilter | None" = None, by_created: bool = False,
                    newest: int | None = None) -> "StatusRows":
        """`status --json` rows of the runs that `match`, and how many of them are in each state.

        Ordered as `runs()` orders them, or (`by_created`) by creation, oldest first; `newest`: only that many of the
        most recently created, by creation. Filters run in the index; settled runs' rows come from it as they are (at
        100,000 runs, building every row anew would cost most of `status`), the others are resolved against one
        sacct call, and only the rows returned are serialized.
        """
        match = match or RunFilter()
        where, params = match.sql()
        wanted, wanted_params = match.sql(with_state=True)
        if newest is not None:
            order = "created_ts desc, exp_name desc, run_name desc, run_dir desc"
        elif by_created:
            order = "created_ts, exp_name, run_name, run_dir"
        else:
            order = "exp_name, created, run_name, run_dir"

        def read(db: sqlite3.Connection) -> tuple:
            jobs = [job for (job,) in db.execute(f"select slurm_job from runs where slurm_job is not null and {where}",
                                                 params)]
            # SLURM answers while the index is read: the call mostly waits, which frees the interpreter.
            pool = ThreadPoolExecutor(1)
            slurm = pool.submit(_ask_slurm, jobs)
            pool.shutdown(wait=False)
            counts = db.execute(f"select state, count(*) from runs where state is not null and {wanted} group by state",
                                wanted_params).fetchall()
            unsettled = db.execute(f"select run_dir, dir_mtime, summary from runs join views using (run_dir) where"
                                   f" state is null and {where}", params).fetchall()
            listed = db.execute(f"select run_dir, settled_row from runs join views using (run_dir) where {wanted}"
                                f" order by {order}", wanted_params)
            if newest is None:
                shown = listed.fetchall()
            else:  # up to the newest-th settled run: any unsettled one before it may be among the newest
                shown, settled = [], 0
                for row in listed:
                    shown.append(row)
                    settled += row[1] is not None
                    if settled == newest:
                        break
            listed.close()
            known_sweep = not match.sweep or bool(counts or unsettled) or db.execute(
                "select 1 from runs where sweep_id = ? limit 1", (match.sweep,)).fetchone() is not None
            return slurm, dict(counts), unsettled, shown, known_sweep

        slurm, counts, unsettled, shown, known_sweep = self._query(read)
        if not known_sweep:
            raise ConfigError(f"sweep '{match.sweep}'", "has no runs", "see `rlvr-vocab status` for sweep ids")
        views = [RunView(run_dir, **json.loads(summary)) for run_dir, _, summary in unsettled]
        answer = slurm.result()
        for view in views:
            view.resolve(answer)
        self.resolved = views
        finished = answer.finished_jobs()
        if finished:
            self._store_accounting(finished)
        now = time.time()
        settling = [(run_dir, mtime, view) for (run_dir, mtime, _), view in zip(unsettled, views, strict=True)
                    if mtime and view.settled_by(answer, now)]
        if settling:
            self._settle(settling)
        resolved = {run_dir: view for (run_dir, _, _), view in zip(unsettled, views, strict=True)
                    if match.state in (None, view.state.value)}
        for view in resolved.values():
            counts[view.state.value] = counts.get(view.state.value, 0) + 1
        # A run left out (filtered by state, or re-indexed by another `status` in between) has no row here; only the
        # rows returned are serialized.
        kept = [(run_dir, row) for run_dir, row in shown if row is not None or run_dir in resolved]
        if newest is not None:
            kept = kept[:newest][::-1]
        rows = [row if row is not None else json.dumps(resolved[run_dir].to_json()) for run_dir, row in kept]
        return StatusRows(rows, counts)


class RunFilter(NamedTuple):
    """Which runs `status` lists; None matches every run."""

    exp: str | None = None
    sweep: str | None = None
    state: str | None = None  # a RunState's value
    since: float | None = None  # created at or after, epoch seconds

    def sql(self, with_state: bool = False) -> tuple[str, list]:
        """The condition on `runs` and its parameters; the state is known there for settled runs only (the others'
        is SLURM's to say), so `with_state` lets those through."""
        terms = [("exp_name = ?", self.exp), ("sweep_id = ?", self.sweep), ("created_ts >= ?", self.since),
                 ("(state is null or state = ?)", self.state if with_state else None)]
        used = [(term, value) for term, value in terms if value is not None]
        return " and ".join(term for term, _ in used) or "1", [value for _, value in used]


class StatusRows(NamedTuple):
    """What `status` shows: rows as JSON text, and every matched run's state -> how many."""

    rows: list[str]
    counts: dict[str, int]


def _index_entry(run_dir: str, mtime: int, manifest: dict | None, submissions: list[dict]) -> tuple:
    """A run's rows in the index's tables: (runs, views, files)."""
    summary = _summary(manifest, submissions)
    view = RunView(run_dir, summary["manifest"], summary["submissions"])
    created = view.created or ""
    settled = not view.needs_slurm()
    if settled:
        view.resolve(SlurmView({}))
    return ((run_dir, mtime, os.path.dirname(run_dir), view.exp_name, view.sweep_id, view.run_name, created,
             parse_iso(created), view.state.value if settled else None, None if settled else view.job_id),
            (run_dir, json.dumps(view.to_json()) if settled else None, json.dumps(summary)),
            (run_dir, json.dumps(manifest), json.dumps(submissions)))


def _read_entries(db: sqlite3.Connection, full: bool) -> list[tuple]:
    if full:
        return db.execute("select run_dir, manifest, submissions from files").fetchall()
    return db.execute("select run_dir, summary from views").fetchall()


def _entries(rows: list[tuple], full: bool) -> list[dict[str, Any]]:
    if full:
        return [{"run_dir": Path(r[0]), "manifest": json.loads(r[1]), "submissions": json.loads(r[2])} for r in rows]
    return [{"run_dir": Path(r[0]), **json.loads(r[1])} for r in rows]


def _job_runs(slurm: SlurmView, held: dict[str, str], job: str) -> list[slurm_client.SacctRow] | None:
    """Every run of a job: SLURM's answer if it gave one, else the index's; None if neither knows it."""
    runs = slurm.job_runs(job)
    if runs is None and job in held:
        runs = [slurm_client.SacctRow(*row) for row in json.loads(held[job])]
    return runs


def _resolve(views: list["RunView"], ask_slurm: bool) -> None:
    """Every view's state from one sacct call (and one `scontrol ping` when that may be stale)."""
    slurm = _ask_slurm([v.job_id for v in views if v.job_id and v.needs_slurm()]) if ask_slurm else SlurmView({})
    for view in views:
        view.resolve(slurm)


def _ask_slurm(job_ids: list[str], also: list[str] = ()) -> SlurmView:
    """What SLURM says of these jobs (and of `also`'s, asked only for their resources): one sacct call, and one
    question to the controller when that may be stale: `squeue` for the jobs sacct has no record of, else
    `scontrol ping` when it reports live jobs."""
    # Asked for an array's id, sacct lists every task of it: asking by array keeps the call's one argument short
    # (Linux takes 128 KiB: some 12,000 task ids) whatever the number of tasks.
    asked = sorted({job_id.split("_")[0] for job_id in (*job_ids, *also)})
    slurm = query_sacct(asked) if asked else SlurmView({})
    if slurm.error:
        return slurm
    unknown = [j for j in job_ids if slurm.job(j) is None]
    if unknown:
        try:
            slurm.queued = slurm_client.queue_states(unknown)
        except slurm_client.SlurmError as e:
            slurm.controller_error = str(e)
    elif any(row.state in slurm_client.LIVE_STATES for row in slurm.rows.values()):
        slurm.controller_error = slurm_client.controller_down()
    return slurm


class lazy:
    """`functools.cached_property` without its lock: Python 3.11 takes one on every first access, which cost a third
    of the time `status` spends on each run it resolves. Views are never shared between threads."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self.compute, self.name = compute, compute.__name__

    def __get__(self, view: Any, owner: type | None = None) -> Any:
        if view is None:
            return self
        value = view.__dict__[self.name] = self.compute(view)  # found in the instance from now on
        return value


class RunView:
    """One run as `status` shows it: the manifest merged with SLURM's word on its job."""

    def __init__(self, run_dir: Path | str, manifest: dict[str, Any] | None, submissions: list[dict[str, Any]]
                 ) -> None:
        # A Path only when asked for: `status` builds tens of thousands of views and rarely needs one.
        self.run_dir_text = str(run_dir)
        self.manifest, self.submissions = manifest, submissions
        self.state, self.stale, self.note = RunState.UNKNOWN, False, ""
        # Set by `Registry.runs(usage=True)`: job id -> every run of it (None: SLURM has no record of it).
        self.job_runs: dict[str, list[slurm_client.SacctRow] | None] = {}
        # Attempt index -> when SLURM says its run of the job ended, where SLURM was asked about that job.
        self.slurm_ends: dict[int, float] = {}

    @lazy
    def run_dir(self) -> Path:
        return Path(self.run_dir_text)

    @lazy
    def m(self) -> dict[str, Any]:
        return self.manifest if self.manifest is not None and "unreadable" not in self.manifest else {}

    @property
    def unreadable(self) -> str | None:
        return (self.manifest or {}).get("unreadable")

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.run_dir)

    @lazy
    def recorded(self) -> RunState | None:
        return RunState.parse(self.m.get("status"))

    @property
    def run_id(self) -> str:
        return self.m.get("run_id") or f"pending:{os.path.basename(self.run_dir_text)}"

    @lazy
    def exp_name(self) -> str:
        return self.m.get("exp_name") or os.path.basename(os.path.dirname(self.run_dir_text))

    @lazy
    def run_name(self) -> str:
        return self.m.get("run_name") or os.path.basename(self.run_dir_text)

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

    @lazy
    def slurm_jobs(self) -> list[str]:
        """Every SLURM job of this run, its attempts' and its submissions' (one that never started an attempt too)."""
        jobs = [a.get("slurm_array_id") or a.get("slurm_job_id") for a in self.attempts]
        return list(dict.fromkeys(j for j in (*jobs, *(s.get("job_id") for s in self.submissions)) if j))

    def _attempt_jobs(self) -> set[str]:
        return {a.get("slurm_array_id") or a.get("slurm_job_id") for a in self.attempts}

    @lazy
    def job_id(self) -> str | None:
        """The newest SLURM job of this run: a later submission, or the last attempt's job."""
        attempt_jobs = [a.get("slurm_array_id") or a.get("slurm_job_id") for a in self.attempts]
        if self.submitted_since_last_attempt:
            return self.submissions[-1].get("job_id")
        return next((j for j in reversed(attempt_jobs) if j), None)

    @lazy
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
        self.note_slurm_ends(slurm.runs)
        if self.state == RunState.RUNNING:
            self._check_progress()
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
        if row is None and self.job_id in slurm.queued:  # not in accounting yet
            self.state = _slurm_state(slurm.queued[self.job_id])
            self.note = f"job {self.job_id} is {slurm.queued[self.job_id]} (not in SLURM accounting yet)"
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

    def _check_progress(self) -> None:
        """A RUNNING run whose heartbeat has not moved for its watchdog.stall_after_s is STALLED."""
        try:
            beat = json.loads(RunPaths(self.run_dir_text).heartbeat.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(beat, dict) or not beat.get("stall_after_s"):
            return
        idle = time.time() - float(beat.get("time") or 0)
        if idle > beat["stall_after_s"]:
            self.state = RunState.STALLED
            minutes = f"{idle / 60:.0f} min" if idle >= 60 else f"{idle:.0f} s"
            self.note = f"no progress for {minutes} in phase {beat.get('phase')} (step {beat.get('step')})"

    def unreported_event(self) -> str | None:
        """The event of a run Slurm (or the watchdog's heartbeat) says ended or stalled where its job recorded no
        such thing: a death the job could not report, for `status` to notify."""
        if self.state == RunState.STALLED:
            return "stalled"
        if (
            self.state in FINAL
            and self.recorded in (RunState.RUNNING, RunState.REQUEUED, None)
            and self.job_id is not None
            and not self.submitted_since_last_attempt
        ):
            return self.state.value.lower()
        return None

    def event_to_weigh(self) -> tuple[str, int] | None:
        """(event, attempt) of an unreported death no refresh has weighed yet (notified, or passed over)."""
        event = self.unreported_event()
        if event is None:
            return None
        attempt = max(1, len(self.attempts))
        return None if os.path.exists(notified_marker(self.run_dir_text, attempt, event)) else (event, attempt)

    def settled_by(self, slurm: SlurmView, now: float) -> bool:
        """Whether this answer of SLURM's (resolved) is the run's last: its job ended (or is unknown to SLURM)
        over _SETTLE_AFTER_S ago, and any death it could not report was weighed for notification."""
        if slurm.error or slurm.controller_error or self.stale or self.state not in FINAL or self.job_id is None:
            return False
        row = slurm.job(self.job_id)
        if row is not None:
            ended = row.end if row.state not in slurm_client.LIVE_STATES else None
        else:
            ended = self._last_written()
        if ended is None or now - ended < _SETTLE_AFTER_S:
            return False
        # A run without a config has no notify settings: nothing to weigh.
        return self.event_to_weigh() is None or not os.path.isfile(f"{self.run_dir_text}/config.yaml")

    def _last_written(self) -> float | None:
        """When the run's files last changed, as they say: its manifest's last write, or its last submission."""
        times = [parse_iso(self.m.get("updated")), parse_iso(self.submissions[-1].get("submitted"))
                 if self.submissions else None]
        return max((t for t in times if t is not None), default=None)

    def _resolve_new_job(self, row: slurm_client.SacctRow | None, slurm: SlurmView) -> None:
        """The run's newest job was submitted after its last attempt: that job's state is the run's."""
        if row is None and self.job_id in slurm.queued:
            self.state = _slurm_state(slurm.queued[self.job_id])
            self.note = f"submitted as job {self.job_id} ({slurm.queued[self.job_id]}, not in SLURM accounting yet)"
            return
        if row is None:
            if slurm.controller_error:
                self.state, self.stale = RunState.UNKNOWN, True
                self.note = f"submitted as job {self.job_id}, not in SLURM accounting yet; {slurm.controller_error}"
            elif (submitted := self._last_written()) is not None and time.time() - submitted > _SETTLE_AFTER_S:
                self.state = RunState.LOST
                self.note = f"submitted as job {self.job_id}, which SLURM has no record of (nor its queue)"
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

    def note_slurm_ends(self, runs_of: dict[str, list[slurm_client.SacctRow] | None]) -> None:
        """When SLURM ended each attempt's run of its job, from every run of the jobs it was asked about (job id ->
        runs, oldest first)."""
        for i, attempt in enumerate(self.attempts):
            job = attempt.get("slurm_array_id") or attempt.get("slurm_job_id")
            runs = runs_of.get(job) if job else None
            end = slurm_ended(attempt, runs) if runs else None
            if end is not None:
                self.slurm_ends[i] = end

    def _ended(self, i: int, recorded: float | None) -> float | None:
        """When attempt i ended: SLURM's end of its run where known. A job killed outright records no end, and the
        next attempt records the takeover's time for it; the job's own record stands where it is the earlier."""
        slurm = self.slurm_ends.get(i)
        return recorded if slurm is None else slurm if recorded is None else min(recorded, slurm)

    def settled_attempts(self) -> list[dict]:
        """The attempts as `show` lists them: the last one ended as `status` says when its job could not record it,
        each ended when SLURM ended its run where that is known."""
        attempts = [dict(a) for a in self.attempts]
        for i, attempt in enumerate(attempts):
            recorded = parse_iso(attempt.get("ended"))
            ended = self._ended(i, recorded)
            if ended != recorded:
                attempt["ended"] = iso(ended)
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
        total = 0.0
        for i, (start, recorded) in enumerate(spans):
            end = self._ended(i, recorded) or now
            if start and end:
                total += max(0.0, end - start)
        return total or None

    def to_json(self) -> dict[str, Any]:
        metrics = self.m.get("metrics") or {}
        return {
            "run_id": self.run_id, "exp_name": self.exp_name, "run_name": self.run_name, "sweep_id": self.sweep_id,
            "state": self.state.value, "stale": self.stale, "note": self.note, "job_id": self.job_id,
            "last_step": self.m.get("last_step"), "max_steps": self.m.get("max_steps"),
            "reward": metrics.get("reward"), "last_checkpoint": self.last_checkpoint(),
            "elapsed_s": self.elapsed_s(), "wandb_id": self.m.get("wandb_id"), "wandb_url": self.m.get("wandb_url"),
            "run_dir": self.run_dir_text, "created": self.created, "updated": self.m.get("updated"),
            "attempts": len(self.attempts), "error": self.m.get("error"), "identity": self.m.get("identity"),
            "benchmarks": self.m.get("benchmarks") or {},
            "disk_bytes": (self.m.get("disk_bytes") or {}).get("total"),
            "skipped_checkpoints": self.m.get("skipped_checkpoints") or [],
        }


def _attempt_spans(attempts: list[dict]) -> list[tuple[float | None, float | None]]:
    return [(parse_iso(a.get("started")), parse_iso(a.get("ended"))) for a in attempts]
