"""Checkpoint and final-model completeness, resume selection and rotation.

transformers' `get_last_checkpoint` returns the newest `checkpoint-N` directory even when the job died while writing
it. A checkpoint is marked complete (a marker listing every file and its size) only after every rank has finished
saving it; a run resumes from the newest complete one, sets incomplete ones aside, and rotates old ones only once a
newer one is complete. `final/` is written to a temporary directory, marked, then renamed into place: it is complete
or absent, never half-written.
"""

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger

from rlvr_vocab.run.fsio import atomic_write_text
from rlvr_vocab.run.layout import COMPLETE_MARKER, RunPaths

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT_RE.match(Path(path).name)
    return int(match.group(1)) if match else None


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """`checkpoint-N` directories, oldest first."""
    if not checkpoint_dir.is_dir():
        return []
    found = [p for p in checkpoint_dir.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)


def complete_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete, intact `checkpoint-N` directories, oldest first: the ones a run can resume from."""
    return [p for p in list_checkpoints(checkpoint_dir) if incompleteness(p) is None]


def _file_sizes(path: Path) -> dict[str, int]:
    return {
        str(f.relative_to(path)): f.stat().st_size
        for f in sorted(path.rglob("*"))
        if f.is_file() and f.name != COMPLETE_MARKER
    }


def mark_complete(path: Path, step: int | None = None, **extra) -> None:
    step = checkpoint_step(path) if step is None else step
    marker = {"step": step, "time": time.time(), "files": _file_sizes(path), **extra}
    atomic_write_text(path / COMPLETE_MARKER, json.dumps(marker, indent=1))


def marker(path: Path) -> dict:
    try:
        return json.loads((path / COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return {}


def incompleteness(path: Path) -> str | None:
    """Why a checkpoint (or final/) cannot be used, or None if it is complete and intact."""
    if not path.is_dir():
        return "it does not exist"
    marker_path = path / COMPLETE_MARKER
    if not marker_path.exists():
        return "no completion marker (the job stopped while saving it)"
    try:
        expected = json.loads(marker_path.read_text())["files"]
    except (ValueError, KeyError, OSError):
        return "unreadable completion marker"
    actual = _file_sizes(path)
    for name, size in expected.items():
        if actual.get(name) != size:
            return f"file {name} missing or changed since it was saved"
    return None


def latest_complete(paths: RunPaths) -> tuple[Path | None, list[dict]]:
    """Newest complete checkpoint; newer incomplete ones are moved to `incomplete/` and reported."""
    skipped = []
    for path in reversed(list_checkpoints(paths.checkpoints)):
        reason = incompleteness(path)
        if reason is None:
            return path, skipped
        aside = paths.incomplete_checkpoints / f"{path.name}-{int(time.time())}"
        aside.parent.mkdir(exist_ok=True)
        path.rename(aside)
        logger.warning(f"set aside incomplete {path.name} -> {aside.relative_to(paths.checkpoints)}: {reason}")
        skipped.append({"checkpoint": path.name, "moved_to": str(aside), "reason": reason, "time": time.time()})
    return None, skipped


def peek_latest_complete(paths: RunPaths) -> Path | None:
    """Newest complete checkpoint, without moving anything (validation writes nothing)."""
    complete = complete_checkpoints(paths.checkpoints)
    return complete[-1] if complete else None


def rotate(checkpoint_dir: Path, keep: int | None, protected: Callable[[Path], bool] | None = None) -> list[Path]:
    """Delete the oldest complete checkpoints beyond `keep`; incomplete ones are never counted, and `protected`
    ones (e.g. still needed by an evaluation job) are kept until a later rotation finds them free."""
    if not keep:
        return []
    removed = []
    for path in complete_checkpoints(checkpoint_dir)[:-keep]:
        if protected is not None and protected(path):
            logger.info(f"keeping {path.name} for its evaluation")
            continue
        shutil.rmtree(path)
        removed.append(path)
        logger.info(f"rotated out {path.name} (keeping {keep})")
    return removed


def final_step(paths: RunPaths) -> int | None:
    """The step `final/` was saved at, if it is complete."""
    return marker(paths.final).get("step") if incompleteness(paths.final) is None else None


def commit_dir(target: Path, write: Callable[[Path], None], **marker_fields) -> Path:
    """Write a directory with `write(dir)` into a temporary dir beside `target`, mark it complete (with
    `marker_fields`), and rename it into place: `target` is complete or absent, never half-written."""
    for leftover in target.parent.glob(f".{target.name}.*"):  # from a job killed while committing
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    write(tmp)
    mark_complete(tmp, **marker_fields)
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old)
    return target


def commit_final(paths: RunPaths, write: Callable[[Path], None], step: int) -> Path:
    return commit_dir(paths.final, write, step=step)
