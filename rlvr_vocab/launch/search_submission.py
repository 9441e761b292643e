"""How a search was last submitted (`<root>/_searches/<id>/submission.json`): its overrides, its launcher settings,
and the command that submits it again, with every submission's worker jobs. A trial's run has no submissions.json of
its own (its worker made it), so `resume`, `cancel` and `search status` read this one. Cheap to import: the CLI's
resume reads it.
"""

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlvr_vocab.core.keys import override_key
from rlvr_vocab.core.secrets import redact_obj, redact_override
from rlvr_vocab.run.fsio import atomic_write_text, locked
from rlvr_vocab.run.layout import RootPaths
from rlvr_vocab.run.manifest import now_iso
from rlvr_vocab.run.overrides import launcher_overrides

# Each submission's worker jobs (Slurm job ids, `123_4`), oldest first: a worker makes its trial's run only when it
# starts the trial, so a pending worker is in no run's record.
WORKER_JOBS = "worker_jobs"


def _write(root: Path | str, search_id: str, change: Callable[[dict], dict]) -> None:
    """The record replaced by `change(old record)`, one writer at a time (two submissions of a search may overlap)."""
    path = RootPaths(root).search_submission(search_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.with_name(".submission.lock")):
        entry = change(last_submission(root, search_id) or {})
        atomic_write_text(path, json.dumps(redact_obj(entry), indent=1) + "\n")


def record_submission(root: Path | str, search_id: str, overrides: list[str], hydra_overrides: list[str],
                      launcher: str | None) -> None:
    """Replace the search's settings: the latest submission's are what submitting it again repeats. The earlier
    submissions' worker jobs are kept: `cancel --sweep` reaches them all."""
    entry = {"submitted": now_iso(), "launcher": launcher,
             # Its id given, not recomputed: the same study whatever the overrides' spelling.
             "overrides": [*(redact_override(o) for o in overrides if override_key(o) != "sweep_id"),
                           f"sweep_id={search_id}"],
             "hydra_overrides": launcher_overrides(hydra_overrides)}
    _write(root, search_id, lambda old: {**entry, WORKER_JOBS: old.get(WORKER_JOBS, [])})


def record_workers(root: Path | str, search_id: str, job_ids: list[str]) -> None:
    """Add one submission's worker jobs to the search's record."""
    _write(root, search_id, lambda old: {**old, WORKER_JOBS: [*old.get(WORKER_JOBS, []), list(job_ids)]})


def worker_jobs(root: Path | str, search_id: str) -> list[list[str]]:
    """Each Slurm submission's worker jobs, oldest first ([] if none was recorded: none went through Slurm)."""
    return (last_submission(root, search_id) or {}).get(WORKER_JOBS, [])


def last_submission(root: Path | str, search_id: str) -> dict[str, Any] | None:
    """The search's record, None when it was never submitted through `--multirun` (or the record is unreadable)."""
    try:
        data = json.loads(RootPaths(root).search_submission(search_id).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def search_command(root: Path | str, search_id: str) -> str | None:
    """The command of the search's last submission through `--multirun` (None if none was recorded)."""
    submission = last_submission(root, search_id)
    if submission is None:
        return None
    return shlex.join(["python", "-m", "rlvr_vocab.train", "--multirun", *submission.get("hydra_overrides", []),
                       *submission.get("overrides", [])])


def submit_again(root: Path | str, search_id: str) -> str:
    """What to run to continue the search: its last submission's command, else what to look for."""
    return search_command(root, search_id) or f"run the command that started search {search_id} again"
