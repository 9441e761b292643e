"""The experiments root as the registry reads it: its experiment and run dirs with their mtimes (which the index
watches), each run's files (run.json, submissions.json, evals.json), the brief of them the index keeps, and whether
their disk is full.

The brief holds what `status` shows, filters and resolves, and what the list commands pick runs by: some hundred
bytes a run, its values as the files spell them (None and empty values left out: every reader says `.get`). A
command that shows a run in full reads its files from the run dir.
"""

import json
import os
from typing import Any

from rlvr_vocab.eval.results import SUMMARY_NAME
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import UnreadableManifest, migrate, read_manifest

_BRIEF_KEYS = ("run_id", "exp_name", "run_name", "sweep_id", "created", "updated", "status", "error", "last_step",
               "max_steps", "wandb_id", "wandb_url", "skipped_checkpoints", "identity", "benchmarks")
_ATTEMPT_KEYS = ("slurm_array_id", "slurm_job_id", "started", "ended", "end_state", "resumed_from_step", "last_step",
                 "search_trial", "services")
_SUBMISSION_KEYS = ("job_id", "submitted", "sweep_id")
_EMPTY = (None, [], {})
# The files' names as run/layout.py spells them, joined to run dirs as text: a Path per file costs about as much as
# reading the file, which a first `status` does 30,000 times at 10,000 runs.
_MANIFEST, _SUBMISSIONS = RunPaths("").manifest.name, RunPaths("").submissions.name
# Free bytes below which a disk counts as full (`disk_full`).
_FULL_BELOW = 2**20


def _scandir(path: str | int) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def experiment_dirs(prefix: str) -> dict[str, int]:
    """The experiments under the root spelled `prefix` (`root/`, or `` for `.`) -> their dir's mtime: it moves when
    a run dir is created or removed in it, and when a writer of a run's indexed files says so (`fsio.note_change`)."""
    found = {}
    for exp in _scandir(prefix or "."):
        if exp.name.startswith(("_", ".")) or not exp.is_dir(follow_symlinks=False):
            continue
        try:
            found[exp.name] = exp.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            pass
    return found


def run_dirs(prefix: str, exp: str) -> dict[str, int] | None:
    """An experiment's run dirs, as `exp/run` -> the run dir's mtime (manifest and submissions are replaced by
    rename, which moves it); None if the experiment dir cannot be opened now."""
    found = {}
    try:
        exp_fd = os.open(prefix + exp, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for run in _scandir(exp_fd):
            if not run.name.startswith(".") and run.is_dir(follow_symlinks=False):
                try:  # relative to the experiment's dir: the kernel resolves one name, not the whole path
                    found[f"{exp}/{run.name}"] = os.stat(run.name, dir_fd=exp_fd, follow_symlinks=False).st_mtime_ns
                except OSError:
                    pass
    finally:
        os.close(exp_fd)
    return found


def mtime(path: str) -> int | None:
    try:
        return os.stat(path, follow_symlinks=False).st_mtime_ns
    except OSError:
        return None


def disk_full(path: str | os.PathLike) -> bool:
    """Whether the disk holding `path` has no room left to rewrite a run's files (the margin: far more than a
    run.json, far less than a checkpoint)."""
    try:
        fs = os.statvfs(path)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < _FULL_BELOW


def _load(path: str) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read())


def _read_manifest(run_dir: str) -> dict | None:
    """`manifest.read_manifest` without its Paths on the common path (a first `status` reads 10,000 run dirs): a
    manifest that cannot be read is read again by it, which says why."""
    try:
        data = _load(f"{run_dir}/{_MANIFEST}")
        if isinstance(data, dict):
            return migrate(data)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        pass
    return read_manifest(run_dir)


def _read_list(path: str) -> list[dict]:
    try:
        records = _load(path)
    except (OSError, ValueError):
        return []
    return records if isinstance(records, list) else []


def read_run(run_dir: str) -> tuple[dict | None, list[dict]]:
    """(manifest, submissions) of a run dir, whole; an unreadable manifest is `{"unreadable": why}`."""
    try:
        manifest = _read_manifest(run_dir)
    except UnreadableManifest as e:
        manifest = {"unreadable": str(e)}
    if manifest is None and not os.access(run_dir, os.R_OK | os.X_OK):
        manifest = {"unreadable": f"{run_dir}: permission denied"}
    if manifest is not None and "unreadable" not in manifest:
        # Evaluation jobs that ended after the training job's last manifest write are in evals.json only (as
        # `results.read_summary` reads it).
        try:
            summary = _load(f"{run_dir}/{SUMMARY_NAME}")
        except (OSError, ValueError):
            summary = None
        manifest["benchmarks"] = (summary if isinstance(summary, dict) else None) or manifest.get("benchmarks") or {}
    return manifest, _read_list(f"{run_dir}/{_SUBMISSIONS}")


def _kept(record: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key in keys if (value := record.get(key)) not in _EMPTY}


def brief(manifest: dict | None, submissions: list[dict]) -> tuple[dict | None, list[dict]]:
    """What the index keeps of a run's files (see the module's docstring)."""
    if manifest is not None and "unreadable" in manifest:
        return {"unreadable": manifest["unreadable"]}, [_kept(s, _SUBMISSION_KEYS) for s in submissions]
    kept = None
    if manifest is not None:
        kept = _kept(manifest, _BRIEF_KEYS)
        attempts = []
        for attempt in manifest.get("attempts") or []:
            a = _kept(attempt, _ATTEMPT_KEYS)
            if "slurm_array_id" in a:  # an attempt's job is its array task where it has one
                a.pop("slurm_job_id", None)
            attempts.append(a)
        if attempts:
            kept["attempts"] = attempts
        if manifest.get("checkpoints"):
            kept["checkpoints"] = manifest["checkpoints"][-1:]
        if (reward := (manifest.get("metrics") or {}).get("reward")) is not None:
            kept["metrics"] = {"reward": reward}
        if total := (manifest.get("disk_bytes") or {}).get("total"):
            kept["disk_bytes"] = {"total": total}
    return kept, [_kept(s, _SUBMISSION_KEYS) for s in submissions]
