"""The registry's SQLite index under the experiments root: a cache of each run's brief (see `run_files`), refreshed
from the run dirs whose mtime changed (jobs and the launcher replace files by rename, which moves it, and move their
experiment dir's mtime too, so that an unchanged experiment's finished runs need no look at all). Deleting it loses
nothing, and a reader who may not write it (a teammate on a shared root) keeps a private copy instead. When its disk
refuses the writes (full, over quota, read-only), a command reads the run dirs' files into memory instead.

Run dirs are kept relative to the root (`exp/run`): the index serves the root however it is spelled.
"""

import errno
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.registry import run_files
from rlvr_vocab.registry.run_view import RunView
from rlvr_vocab.registry.slurm_view import SlurmView
from rlvr_vocab.run.fsio import umask
from rlvr_vocab.run.layout import RootPaths
from rlvr_vocab.run.manifest import parse_iso

# The index is a cache: a schema change just rebuilds it.
_SCHEMA_VERSION = 12
# Large pages: a run's `views` row is some hundreds of bytes, and 4 KiB pages left a quarter of each page unused.
_PAGE_SIZE = 16384
# `runs`: what `status` filters, orders and counts by, some hundred bytes a run; `state` only for a settled run (one
# whose state no SLURM answer can change any more), `slurm_job` only for the others that SLURM is asked about.
# `views` (by the run's id): each run's brief (JSON [manifest, submissions], see `run_files.brief`) and a settled
# run's `status --json` row, served as it is but for its run dir's root (SETTLED_ROW); a settled run's brief leaves
# out what its row says (`brief_of`). `accounting`: a job SLURM is
# done with -> every run of it as sacct said (SacctRow fields), `[]` when sacct has no record of the job of a
# finished run (purged, another cluster's). `experiments`: each experiment dir's mtime when last scanned.
_SCHEMA = (
    "create table if not exists runs (id integer primary key, run_dir text unique, dir_mtime integer, exp_dir text,"
    " exp_name text, sweep_id text, run_name text, created text, created_ts real, state text, slurm_job text)",
    # The runs a refresh looks at even in an experiment whose dir did not change (see `refresh`).
    "create index if not exists runs_to_stat on runs (exp_dir, run_dir, dir_mtime) where state is null or"
    " dir_mtime = 0",
    "create index if not exists runs_by_exp on runs (exp_dir)",
    "create index if not exists runs_by_created on runs (created_ts)",
    # `status --json` lists runs in this order: walking an index that holds all it reads of `runs` spares a sort.
    "create index if not exists runs_in_order on runs (exp_name, created, run_name)",
    "create table if not exists views (id integer primary key, brief text, settled_row text)",
    "create table if not exists accounting (job_id text primary key, runs text)",
    "create table if not exists experiments (exp_dir text primary key, dir_mtime integer, scanned real)",
)
# A settled row as `status --json` shows it: stored with its run dir first and relative (`{"run_dir":"exp/run",...`),
# the root's spelling (JSON-escaped, ending in `/`) goes before it; NULL for a run not settled.
SETTLED_ROW = """'{"run_dir":"' || ? || substr(settled_row, 13)"""
# A directory changed this recently may change again within the clock's granularity without its mtime moving:
# such entries are re-read on the next refresh.
_RACY_NS = 2_000_000_000
# Each experiment's run dirs are all looked at again at least this often, whatever its dir's mtime says: a change
# made by hand (or by a writer that could not move the experiment dir's mtime) shows within this time.
_RESCAN_AFTER_S = 3600
# Seconds SQLite retries a locked index before giving up.
_BUSY_TIMEOUT_S = 10
_RUN_COLUMNS = "dir_mtime, exp_dir, exp_name, sweep_id, run_name, created, created_ts, state, slurm_job"
# A settled run's manifest values its row holds under the same key (and `reward`, `disk_bytes` under others).
_IN_ROW = ("run_id", "exp_name", "run_name", "sweep_id", "created", "updated", "error", "last_step", "max_steps",
           "wandb_id", "wandb_url", "identity", "benchmarks", "skipped_checkpoints")
# SQLite's primary result codes for a write its disk refused: read-only, an I/O error (a full disk over NFS may say so
# only at fsync), full.
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL = 8, 10, 13
# A disk's refusal of the index's writes as said (at the index's dir), and what to do about it. A read-only root gets
# a private copy of its index (`connect`): a read-only disk here is that copy's.
_REFUSALS = {errno.ENOSPC: ("disk full at {}", "free space there"),
             errno.EDQUOT: ("disk quota exceeded at {}", "free space there, or raise the quota"),
             errno.EROFS: ("{} is read-only", "set RLVR_CACHE_DIR to a writable directory")}


class Unwritable(ConfigError):
    """The index's disk refuses its writes (`why`): the runs are read from their files meanwhile."""

    def __init__(self, path: Path, why: str, fix: str):
        super().__init__(f"registry index {path}", f"cannot be written: {why}", f"{fix}; the run dirs' files are "
                         "intact, and `rlvr-vocab status` and `show` read them meanwhile")
        self.why = why


def _private_index(root: Path) -> Path:
    """This user's own copy of a root's index, for a root whose index they may not write."""
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("RLVR_CACHE_DIR", Path.home() / ".cache" / "rlvr_vocab"))
    return cache / "registry" / f"{digest}.sqlite"


def _disk_refusal(path: Path, e: BaseException) -> Unwritable | None:
    """`e` as the disk's refusal of a write to `path` (full, over quota, read-only); None if it is not one."""
    code = e.errno if isinstance(e, OSError) else None
    if isinstance(e, sqlite3.Error):
        primary = getattr(e, "sqlite_errorcode", 0) & 0xFF
        if primary == _SQLITE_IOERR and run_files.disk_full(path.parent):
            primary = _SQLITE_FULL
        code = {_SQLITE_FULL: errno.ENOSPC, _SQLITE_READONLY: errno.EROFS}.get(primary)
    if code not in _REFUSALS:
        return None
    why, fix = _REFUSALS[code]
    return Unwritable(path, why.format(path.parent), fix)


def _in_memory() -> sqlite3.Connection:
    """An empty index that lives as long as its connection: a refresh fills it from the run dirs."""
    db = sqlite3.connect(":memory:")
    for statement in _SCHEMA:
        db.execute(statement)
    return db


def _index_error(path: Path, e: sqlite3.Error) -> ConfigError:
    if (refusal := _disk_refusal(path, e)) is not None:
        return refusal
    said = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "locked" in said:
        return ConfigError(f"registry index {path}", f"is locked by another process ({said}) after "
                           f"{_BUSY_TIMEOUT_S} s", "retry; if it stays locked, run `rlvr-vocab registry rebuild`")
    return ConfigError(f"registry index {path}", f"cannot be used ({said})",
                       "run `rlvr-vocab registry rebuild` (the index is a cache: nothing is lost)")


def _entry(prefix: str, run_dir: str, mtime: int, manifest: dict | None, submissions: list[dict]
           ) -> tuple[tuple, str, str | None]:
    """A run's `runs` row (but its id), its brief, and its settled row (None if SLURM may still change its state)."""
    brief = run_files.brief(manifest, submissions)
    view = RunView(prefix + run_dir, *brief)
    created = view.created or ""
    settled = not view.needs_slurm()
    if settled:
        view.resolve(SlurmView({}))
    return ((mtime, os.path.dirname(run_dir), view.exp_name, view.sweep_id, view.run_name, created, parse_iso(created),
             view.state.value if settled else None, None if settled else view.job_id),
            _settled_brief(view) if settled else json.dumps(brief, separators=(",", ":")),
            _settled_row(view, run_dir) if settled else None)


def _settled_brief(view: RunView) -> str:
    """A settled run's brief without what its row says (a readable manifest's values only: a run without one keeps
    its brief whole)."""
    manifest = view.brief
    if manifest is not None and "unreadable" not in manifest:
        manifest = {key: value for key, value in manifest.items()
                    if key not in _IN_ROW and key not in ("metrics", "disk_bytes")}
    return json.dumps([manifest, view.brief_submissions], separators=(",", ":"))


def brief_of(brief: str, settled_row: str | None) -> list:
    """A run's brief (manifest, submissions) from its `views` row."""
    manifest, submissions = json.loads(brief)
    if settled_row is None or manifest is None or "unreadable" in manifest:
        return [manifest, submissions]
    row = json.loads(settled_row)
    manifest.update((key, value) for key in _IN_ROW if (value := row[key]) not in (None, [], {}))
    if row["reward"] is not None:
        manifest["metrics"] = {"reward": row["reward"]}
    if row["disk_bytes"]:
        manifest["disk_bytes"] = {"total": row["disk_bytes"]}
    return [manifest, submissions]


def _settled_row(view: RunView, run_dir: str) -> str:
    """The view's row as the index keeps it: its run dir (the first key) relative to the root."""
    row = view.to_json()
    row["run_dir"] = run_dir
    return json.dumps(row, separators=(",", ":"))


class Index:
    def __init__(self, root: Path, warn: Callable[[str], None] = lambda line: None) -> None:
        self.root = root
        # How run dirs under this root are spelled: `root/exp/run`, or `exp/run` for `.`.
        self.prefix = "" if str(root) == "." else os.path.join(str(root), "")
        # Told once, in one line, when the index cannot be written and the runs are read from their files.
        self.warn = warn
        # Why the index could not be written (None while it can): the queries read the run dirs' files from then on.
        self.unwritable: str | None = None
        # The index file `connect` opened last (the root's, or this user's private copy).
        self.opened = self.path

    @property
    def path(self) -> Path:
        return RootPaths(self.root).index

    def _open(self, path: Path) -> sqlite3.Connection:
        new = not path.exists()
        db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S)
        if db.execute("pragma user_version").fetchone()[0] != _SCHEMA_VERSION:
            for (table,) in db.execute("select name from sqlite_master where type = 'table'").fetchall():
                db.execute(f"drop table if exists {table}")
            db.commit()
            db.execute(f"pragma page_size = {_PAGE_SIZE}")
            db.execute("vacuum")  # sets the page size, and gives an older index's pages back
            db.execute(f"pragma user_version = {_SCHEMA_VERSION}")
        for statement in _SCHEMA:
            db.execute(statement)
        db.commit()
        if new:  # SQLite creates 0644 whatever the umask: a group-shared root needs group write
            try:
                os.chmod(path, 0o666 & ~umask())
            except OSError:
                pass
        self.opened = path
        return db

    def connect(self) -> sqlite3.Connection:
        if not self.root.is_dir():
            # Nothing to index, and reading creates nothing: a command run in the wrong directory leaves no
            # `experiments/` behind.
            return _in_memory()
        shared = self.path
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
        try:
            private.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            if (refusal := _disk_refusal(private, e)) is None:
                raise
            raise refusal from None
        try:
            return self._open(private)
        except sqlite3.DatabaseError as e:
            raise _index_error(private, e) from None

    def refresh(self, db: sqlite3.Connection) -> None:
        """Re-read the run dirs whose mtime changed; forget the ones that are gone.

        An experiment whose dir kept its mtime has had no run dir created or removed, and no settled run's files
        replaced (their writers move it: `fsio.note_change`): only its runs that SLURM or a live job may still
        change are looked at, which spares a stat of every run dir (most of `status` at 100,000 runs).
        """
        now, settled = time.time(), time.time_ns() - _RACY_NS
        known_exps = {exp: (mtime, scanned) for exp, mtime, scanned in db.execute("select * from experiments")}
        exps = run_files.experiment_dirs(self.prefix)
        rescan = [exp for exp, mtime in exps.items() if exp not in known_exps or known_exps[exp][0] != mtime
                  or now - known_exps[exp][1] > _RESCAN_AFTER_S]
        gone_exps = [exp for exp in known_exps if exp not in exps]
        known, on_disk, scanned = {}, {}, []  # run dir -> (id, mtime) as indexed; -> mtime now
        for exp in rescan:
            runs = run_files.run_dirs(self.prefix, exp)
            if runs is None:  # its runs stay as the index knows them; tried again next time
                continue
            known.update((d, (i, m)) for i, d, m in db.execute("select id, run_dir, dir_mtime from runs where"
                                                                " exp_dir = ?", (exp,)))
            on_disk.update(runs)
            scanned.append(exp)
        rescanned = set(rescan)
        for run_id, run_dir, mtime, exp in db.execute("select id, run_dir, dir_mtime, exp_dir from runs where"
                                                      " state is null or dir_mtime = 0").fetchall():
            if exp in exps and exp not in rescanned:
                known[run_dir] = (run_id, mtime)
                if (now_mtime := run_files.mtime(self.prefix + run_dir)) is not None:
                    on_disk[run_dir] = now_mtime
        gone = [(run_id,) for exp in gone_exps
                for (run_id,) in db.execute("select id from runs where exp_dir = ?", (exp,))]
        gone += [(known[run_dir][0],) for run_dir in known.keys() - on_disk.keys()]
        changed, new = [], []
        for run_dir, mtime in on_disk.items():
            if run_dir in known and known[run_dir][1] == mtime:
                continue
            manifest, submissions = run_files.read_run(self.prefix + run_dir)
            if manifest is None and not submissions:  # not a run (yet)
                if run_dir in known:
                    gone.append((known[run_dir][0],))
                continue
            entry = _entry(self.prefix, run_dir, mtime if mtime < settled else 0, manifest, submissions)
            (changed if run_dir in known else new).append((run_dir, entry))
        db.executemany("delete from runs where id = ?", gone)
        db.executemany("delete from views where id = ?", gone)
        db.executemany(f"update runs set ({_RUN_COLUMNS}) = ({', '.join('?' * 9)}) where id = ?",
                       [(*row, known[run_dir][0]) for run_dir, (row, _, _) in changed])
        # Settled runs first: the others' `views` rows grow when they settle, which splits the pages they are on.
        new.sort(key=lambda entry: entry[1][2] is None)
        # Another refresh may have just indexed a new run dir too: its row stands, and takes this one's views.
        db.executemany(f"insert or ignore into runs (run_dir, {_RUN_COLUMNS}) values ({', '.join('?' * 10)})",
                       [(run_dir, *row) for run_dir, (row, _, _) in new])
        ids = {run_dir: run_id for exp in {os.path.dirname(run_dir) for run_dir, _ in new}
               for run_dir, run_id in db.execute("select run_dir, id from runs where exp_dir = ?", (exp,))}
        db.executemany("insert or replace into views values (?, ?, ?)",
                       [(known[run_dir][0] if run_dir in known else ids[run_dir], brief, row)
                        for run_dir, (_, brief, row) in (*changed, *new)])
        # An experiment dir changed within the clock's granularity may change again unseen: looked at again next time.
        db.executemany("insert or replace into experiments values (?, ?, ?)",
                       [(exp, exps[exp] if exps[exp] < settled else 0, now) for exp in scanned])
        db.executemany("delete from experiments where exp_dir = ?", [(exp,) for exp in gone_exps])

    def query(self, read: Callable[[sqlite3.Connection], Any]) -> Any:
        """`read` from the index, just refreshed, in the refresh's transaction; when its disk refuses the refresh,
        from the run dirs' files, read into memory (`unwritable` says why, `warn` tells it once)."""
        if self.unwritable is None:
            try:
                return self._read(self.connect(), read)
            except Unwritable as e:
                self.unwritable = e.why
                self.warn(f"index not updated: {e.why}; showing the run dirs' files")
        return self._read(_in_memory(), read)

    def _read(self, db: sqlite3.Connection, read: Callable[[sqlite3.Connection], Any]) -> Any:
        try:
            with db:
                self.refresh(db)
                return read(db)
        except sqlite3.DatabaseError as e:
            raise _index_error(self.opened, e) from None
        finally:
            db.close()

    def write(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """`write` to the index in one transaction. A cache: when it cannot be written now, the next refresh does
        the same work again."""
        if self.unwritable is not None:
            return
        try:
            db = self.connect()
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
        """Delete the index (and this user's private copy) and build it anew; how many runs it holds. A disk that
        refuses the new index is an `Unwritable` error: nothing to fall back on."""
        for path in (self.path, _private_index(self.root)):
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                except OSError:  # another user's, or a read-only disk: `connect` says what it can use
                    pass
        return self._read(self.connect(), lambda db: db.execute("select count(*) from runs").fetchone()[0])

    def store_accounting(self, jobs: dict[str, list]) -> None:
        """Keep these finished jobs' runs (SacctRows) in the index (only those it does not hold as they are)."""
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

        self.write(write)

    def settle(self, runs: list[tuple[str, int, RunView]]) -> None:
        """Serve these runs (run dir as indexed, its mtime when read, resolved view) from the index from now on, as
        their row says now, unless their run dir changed since."""
        def write(db: sqlite3.Connection) -> None:
            db.executemany("update views set settled_row = ?, brief = ? where id = (select id from runs where"
                           " run_dir = ? and dir_mtime = ?)",
                           [(_settled_row(view, run_dir), _settled_brief(view), run_dir, mtime)
                            for run_dir, mtime, view in runs])
            db.executemany("update runs set state = ?, slurm_job = null where run_dir = ? and dir_mtime = ?",
                           [(view.state.value, run_dir, mtime) for run_dir, mtime, view in runs])

        self.write(write)
