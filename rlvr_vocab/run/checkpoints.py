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

from rlvr_vocab.run.fsio import atomic_write_text, share_as_umask_allows
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
    share_as_umask_allows(path)  # before the marker: a complete checkpoint is one teammates can read
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


def rotate(checkpoint_dir: Path, keep: int | None, protected: Callable[[Path], bool] | None = None,
           milestone_every: int | None = None) -> list[Path]:
    """Rotate out the oldest complete checkpoints beyond `keep` (only ever once a newer one is complete: incomplete
    ones are never counted). `protected` ones (still needed by an evaluation job) stay until a later rotation finds
    them free; those at a multiple of `milestone_every` steps are kept as weights-only milestones."""
    if not keep:
        return []
    removed = []
    for path in complete_checkpoints(checkpoint_dir)[:-keep]:
        if protected is not None and protected(path):
            logger.info(f"keeping {path.name} for its evaluation")
            continue
        step = checkpoint_step(path)
        if milestone_every and step % milestone_every == 0:
            keep_as_milestone(path, checkpoint_dir.parent / MILESTONES_DIR)
        else:
            shutil.rmtree(path)
            logger.info(f"rotated out {path.name} (keeping {keep})")
        removed.append(path)
    return removed


# Beside checkpoints/, in the run dir: the weights of every milestone step, for evaluation later.
MILESTONES_DIR = "milestones"
# What only resuming needs: a milestone drops it (optimizer state is 2-3x the weights).
_RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", "global_step*")


def keep_as_milestone(path: Path, milestones: Path) -> Path:
    """Move a complete checkpoint to milestones/ without what only resuming needs, marked complete again."""
    milestones.mkdir(exist_ok=True)
    target = milestones / path.name
    if target.exists():
        shutil.rmtree(target)
    path.rename(target)
    for pattern in _RESUME_ONLY:
        for item in target.glob(pattern):
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    mark_complete(target, step=checkpoint_step(target), weights_only=True)
    logger.info(f"kept {path.name} as a weights-only milestone")
    return target


def milestones(paths: RunPaths) -> list[Path]:
    """Complete weights-only milestones, oldest first."""
    root = paths.run_dir / MILESTONES_DIR
    return [p for p in list_checkpoints(root) if incompleteness(p) is None]


def prune_set_aside(paths: RunPaths, grace_h: float) -> list[Path]:
    """Delete incomplete checkpoints set aside more than `grace_h` hours ago (kept that long for a post-mortem)."""
    root = paths.incomplete_checkpoints
    if not root.is_dir():
        return []
    cutoff = time.time() - grace_h * 3600
    pruned = [p for p in root.iterdir() if p.stat().st_mtime < cutoff]
    for path in pruned:
        shutil.rmtree(path, ignore_errors=True)
        logger.info(f"pruned {path.name}, set aside over {grace_h:g} h ago")
    return pruned


def disk_use(paths: RunPaths) -> dict[str, int]:
    """Bytes the run dir holds: in all, and in checkpoints, milestones, final/ and the extended model."""
    def size(root: Path) -> int:
        return sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) if root.exists() else 0

    parts = {"checkpoints": size(paths.checkpoints), "milestones": size(paths.run_dir / MILESTONES_DIR),
             "final": size(paths.final), "model": size(paths.extended_model)}
    return {"total": size(paths.run_dir), **parts}


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
