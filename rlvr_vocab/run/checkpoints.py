"""Checkpoint completeness, resume selection and rotation.

transformers' `get_last_checkpoint` returns the newest `checkpoint-N` directory even when the
job died while writing it. We mark a checkpoint complete (a marker listing every file and its
size) only after the trainer has finished saving it, resume from the newest complete one, set
incomplete ones aside, and rotate old ones only once a newer one is known complete.
"""

import json
import re
import shutil
import time
from pathlib import Path

from loguru import logger

from rlvr_vocab.run.manifest import atomic_write_text

COMPLETE_MARKER = "rlvr_complete.json"
SET_ASIDE_DIR = "incomplete"
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


def mark_complete(path: Path) -> None:
    marker = {"step": checkpoint_step(path), "time": time.time(), "files": _file_sizes(path)}
    atomic_write_text(path / COMPLETE_MARKER, json.dumps(marker, indent=1))


def incompleteness(path: Path) -> str | None:
    """Why a checkpoint cannot be resumed from, or None if it is complete and intact."""
    marker_path = path / COMPLETE_MARKER
    if not marker_path.exists():
        return "no completion marker (the job stopped while saving it)"
    try:
        expected = json.loads(marker_path.read_text())["files"]
    except (ValueError, KeyError):
        return "unreadable completion marker"
    actual = _file_sizes(path)
    for name, size in expected.items():
        if actual.get(name) != size:
            return f"file {name} missing or changed since it was saved"
    return None


def latest_complete(checkpoint_dir: Path) -> tuple[Path | None, list[dict]]:
    """Newest complete checkpoint; newer incomplete ones are moved to `incomplete/` and reported."""
    skipped = []
    for path in reversed(list_checkpoints(checkpoint_dir)):
        reason = incompleteness(path)
        if reason is None:
            return path, skipped
        aside = checkpoint_dir / SET_ASIDE_DIR / f"{path.name}-{int(time.time())}"
        aside.parent.mkdir(exist_ok=True)
        path.rename(aside)
        logger.warning(f"set aside incomplete {path.name} -> {aside.relative_to(checkpoint_dir)}: {reason}")
        skipped.append({"checkpoint": path.name, "moved_to": str(aside), "reason": reason, "time": time.time()})
    return None, skipped


def rotate(checkpoint_dir: Path, keep: int | None) -> list[Path]:
    """Delete the oldest complete checkpoints beyond `keep`; incomplete ones are never counted."""
    if not keep:
        return []
    removed = complete_checkpoints(checkpoint_dir)[:-keep]
    for path in removed:
        shutil.rmtree(path)
        logger.info(f"rotated out {path.name} (keeping {keep})")
    return removed
