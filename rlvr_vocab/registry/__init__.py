"""The experiment registry: every run under the experiments root, with its live SLURM state.

Source of truth: each run dir's `run.json` (written by its job) and `submissions.json` (written at submission);
`index` keeps a brief of them in SQLite (`run_files`), `slurm_view` asks SLURM once per refresh about the runs whose
state it may still change (one `sacct` call, plus one `squeue` or `scontrol ping` when accounting may be stale),
`run_view` reconciles the two into a run's state, and `listing` serves `status` (filtered in the index by
`filters`) and the other commands. That sacct call also brings each job's resources (every run of it, requeues
included, with its steps' MaxRSS): a job SLURM is done with is kept in the index's `accounting` table, and the
commands that show resources (`show`, `compare`, `usage`) add to the one call only the jobs of theirs that table
does not hold yet. A run dir that cannot be read is listed as UNREADABLE, never an error; an index whose disk refuses
its writes (full, over quota, read-only) is passed over for the run dirs' files, said in one line. Deaths the jobs
could not report, found on a refresh, are notified (`unreported`).

CLI-side: imports neither torch nor loguru (but to notify a death), and nothing from the job's side but file
formats.
"""

from rlvr_vocab.registry.filters import RunFilter
from rlvr_vocab.registry.listing import Registry
from rlvr_vocab.registry.run_view import RunView
from rlvr_vocab.run.layout import RootPaths

INDEX_NAME = RootPaths.INDEX_NAME

__all__ = ["INDEX_NAME", "Registry", "RunFilter", "RunView"]
