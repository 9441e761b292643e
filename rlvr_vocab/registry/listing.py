"""The runs under an experiments root with their live states: `status`'s rows and counts, and the views the other
commands list, pick and show."""

import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.states import FINAL, RunState
from rlvr_vocab.registry import slurm_view
from rlvr_vocab.registry.filters import RunFilter, StatusRows
from rlvr_vocab.registry.index import SETTLED_ROW, Index, brief_of
from rlvr_vocab.registry.run_view import RunView
from rlvr_vocab.registry.slurm_view import SlurmView, job_runs
from rlvr_vocab.registry.unreported import notify_unreported

_ORDERS = {
    "newest": "created_ts desc, exp_name desc, run_name desc, id desc",
    "created": "created_ts, exp_name, run_name, id",
    "exp": "exp_name, created, run_name, id",
}


class Registry:
    def __init__(self, root: Path, warn: Callable[[str], None] = lambda line: None):
        """`warn`: told once, in one line, when the index cannot be written and the runs are read from their files."""
        self.root = Path(root)
        self.index = Index(self.root, warn)
        # Why the last `runs(usage=True)` could not ask sacct (None if it could, or needed not).
        self.slurm_error: str | None = None

    def rebuild(self) -> int:
        return self.index.rebuild()

    def runs(self, ask_slurm: bool = True, full: bool = True, usage: bool = False,
             pick: Callable[[list[RunView]], list[RunView]] | None = None) -> list[RunView]:
        """Every run with its state, built from the index's briefs; `full`: a view reads its run's files whole from
        the run dir when asked for them (else they are the brief: what `status` shows).

        `pick`: only the runs it returns (given every run, unresolved) are resolved and returned. `usage`: each
        view's `job_runs` is set too: every run of each of its SLURM jobs, from the index for a job SLURM is done
        with, else from the one sacct call (which asks for those of the jobs the index does not hold).
        """
        def read(db: sqlite3.Connection) -> tuple:
            held = dict(db.execute("select job_id, runs from accounting")) if usage else {}
            return db.execute("select run_dir, brief, settled_row from runs join views using (id)").fetchall(), held

        rows, held = self.index.query(read)
        prefix = self.index.prefix
        # Run dirs as text: a Path for each of 10,000 runs costs more than reading them.
        views = [RunView(prefix + run_dir, *brief_of(brief, row), read_whole=full) for run_dir, brief, row in rows]
        if pick is not None:
            views = pick(views)
        if not usage:
            asked = [v.job_id for v in views if v.job_id and v.needs_slurm()]
            slurm = slurm_view.ask_slurm(asked) if ask_slurm else SlurmView({})
            for view in views:
                view.resolve(slurm)
        else:
            self._resolve_with_usage(views, held, ask_slurm)
        return sorted(views, key=lambda v: (v.exp_name, v.created or "", v.run_name))

    def _resolve_with_usage(self, views: list[RunView], held: dict[str, str], ask_slurm: bool) -> None:
        missing = {job for view in views for job in view.slurm_jobs if job not in held}
        asked = [v.job_id for v in views if v.job_id and v.needs_slurm()]
        slurm = slurm_view.ask_slurm(asked, sorted(missing)) if ask_slurm else SlurmView({})
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
            self.index.store_accounting(finished)
        for view in views:
            view.job_runs = {job: job_runs(slurm, held, job) for job in view.slurm_jobs}
            view.note_slurm_ends(view.job_runs)

    def status(self, match: RunFilter | None = None, by_created: bool = False, newest: int | None = None
               ) -> StatusRows:
        """`status --json` rows of the runs that `match`, and how many of them are in each state; the deaths their
        jobs could not report, found on the way, are notified (once each).

        Ordered as `runs()` orders them, or (`by_created`) by creation, oldest first; `newest`: only that many of the
        most recently created, by creation. Filters run in the index; settled runs' rows come from it as they are (at
        100,000 runs, building every row anew would cost most of `status`), the others are resolved against one
        sacct call, and only the rows returned are serialized.
        """
        page, resolved = self._status_rows(match or RunFilter(), by_created, newest)
        notify_unreported(resolved)
        return page

    def _status_rows(self, match: RunFilter, by_created: bool, newest: int | None
                     ) -> tuple[StatusRows, list[RunView]]:
        where, params = match.sql()
        wanted, wanted_params = match.sql(with_state=True)
        order = _ORDERS["newest" if newest is not None else "created" if by_created else "exp"]
        root = json.dumps(self.index.prefix)[1:-1]

        def read(db: sqlite3.Connection) -> tuple:
            jobs = [job for (job,) in db.execute(f"select slurm_job from runs where slurm_job is not null and {where}",
                                                 params)]
            # SLURM answers while the index is read: the call mostly waits, which frees the interpreter.
            pool = ThreadPoolExecutor(1)
            slurm = pool.submit(slurm_view.ask_slurm, jobs)
            pool.shutdown(wait=False)
            counts = db.execute(f"select state, count(*) from runs where state is not null and {wanted} group by state",
                                wanted_params).fetchall()
            unsettled = db.execute(f"select run_dir, dir_mtime, brief from runs join views using (id) where"
                                   f" state is null and {where}", params).fetchall()
            listed = db.execute(f"select run_dir, {SETTLED_ROW} from runs join views using (id) where {wanted}"
                                f" order by {order}", [root, *wanted_params])
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

        slurm, counts, unsettled, shown, known_sweep = self.index.query(read)
        if not known_sweep:
            raise ConfigError(f"sweep '{match.sweep}'", "has no runs", "see `rlvr-vocab status` for sweep ids")
        prefix = self.index.prefix
        views = [RunView(prefix + run_dir, *json.loads(brief)) for run_dir, _, brief in unsettled]
        answer = slurm.result()
        for view in views:
            view.resolve(answer)
        finished = answer.finished_jobs()
        if finished:
            self.index.store_accounting(finished)
        now = time.time()
        settling = [(run_dir, mtime, view) for (run_dir, mtime, _), view in zip(unsettled, views, strict=True)
                    if mtime and view.settled_by(answer, now)]
        if settling:
            self.index.settle(settling)
        resolved = {run_dir: view for (run_dir, _, _), view in zip(unsettled, views, strict=True)
                    if match.state in (None, view.state.value)}
        for view in resolved.values():
            counts[view.state.value] = counts.get(view.state.value, 0) + 1
        # A run left out (filtered by state, or re-indexed by another `status` in between) has no row here; only the
        # rows returned are serialized.
        kept = [(run_dir, row) for run_dir, row in shown if row is not None or run_dir in resolved]
        if newest is not None:
            kept = kept[:newest][::-1]
        rows = [row if row is not None else json.dumps(resolved[run_dir].to_json(), separators=(",", ":"))
                for run_dir, row in kept]
        return StatusRows(rows, counts), views
