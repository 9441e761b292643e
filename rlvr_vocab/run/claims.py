"""What the submitting side writes into a run dir: the run's identity (once) and its submissions.

`claim()` binds a run dir to one experiment: the first submitter or job creates `identity.json` exclusively, and
every later one must bring the same identity (or force it for one attempt). Submissions are recorded under the
experiments root's submit lock, which makes "is a job live for this run? if not, submit and record it" one step for
every submitter on the root (two `rlvr-vocab resume RUN` at once submit one job).
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.secrets import redact_obj
from rlvr_vocab.run.fsio import LockTimeout, atomic_write_text, create_exclusive, locked, note_change
from rlvr_vocab.run.identity import Identity, mismatch_error
from rlvr_vocab.run.layout import RunPaths

SUBMIT_LOCK = ".submit.lock"
CREATED, SAME, FORCED = "created", "same", "forced"


@contextmanager
def submit_lock(experiments_root: Path | str) -> Iterator[None]:
    """Serialises submissions to one experiments root (seconds each: a teammate's waits, never collides)."""
    try:
        with locked(Path(experiments_root) / SUBMIT_LOCK):
            yield
    except LockTimeout as e:
        raise ConfigError("submission", str(e), "another submission is still running; try again") from None


def stored_identity(paths: RunPaths) -> Identity | None:
    try:
        data = json.loads(paths.identity.read_text())
    except (OSError, ValueError):
        return None
    return Identity(data["config"]) if isinstance(data, dict) and "config" in data else None


def _identity_text(identity: Identity, **extra: Any) -> str:
    return json.dumps({**identity.to_json(), **extra}, indent=1, sort_keys=True, default=str) + "\n"


def claim(paths: RunPaths, identity: Identity, force: bool = False, replace_if_forced: bool = False) -> str:
    """Bind the run dir to `identity`: CREATED (new run dir), SAME, or FORCED (differs, accepted with force).

    Raises the one-line mismatch error when it differs without force. `replace_if_forced` (the job, not the
    submitter) makes the forced identity the run's from now on.
    """
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    if create_exclusive(paths.identity, _identity_text(identity)):
        return CREATED
    stored = stored_identity(paths)
    if stored == identity:
        return SAME
    run = f"{paths.run_dir.parent.name}/{paths.run_dir.name}"
    if stored is not None and not force:
        raise mismatch_error(run, stored, identity)
    if replace_if_forced:
        previous = stored.fingerprint if stored is not None else None
        atomic_write_text(paths.identity, _identity_text(identity, replaced=previous))
    return FORCED


def unclaim(paths: RunPaths) -> None:
    """Undo a CREATED claim whose submission failed: the run dir is left as it was (absent)."""
    paths.identity.unlink(missing_ok=True)
    try:
        paths.run_dir.rmdir()
    except OSError:
        pass


def read_submissions(paths: RunPaths) -> list[dict]:
    try:
        records = json.loads(paths.submissions.read_text())
    except (OSError, ValueError):
        return []
    return records if isinstance(records, list) else []


def last_submission(paths: RunPaths) -> dict:
    records = read_submissions(paths)
    return records[-1] if records else {}


def record_submission(paths: RunPaths, record: dict) -> None:
    """Append a submitted job to submissions.json (call under `submit_lock`)."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    records = [*read_submissions(paths), redact_obj(record)]
    atomic_write_text(paths.submissions, json.dumps(records, indent=1) + "\n")
    note_change(paths.run_dir)
