"""Build a model and tokenizer once into a directory named by a hash of every input, safely under concurrency.

The build is saved into a temporary directory beside its destination and renamed into place: a reader never sees a
half-written copy. Concurrent builders (a sweep's array tasks starting on an empty cache) wait on a lock beside it
for the first one's copy instead of each building their own; where the file system ignores the lock, the rename
still settles the race (the loser discards its copy and uses the winner's).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger


def file_hash(path: Path) -> str:
    """sha256 of a file's content, for cache keys that must change with an input file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ensure_built(cache_dir: Path, name: str, inputs: dict, build: Callable[[], tuple]) -> Path:
    """Return `cache_dir/<name>-<hash of inputs>`, calling `build` and saving what it returns on the first call.

    `build()` returns `(model, tokenizer, summary)`: both are saved with `save_pretrained` beside
    `build_inputs.json` (the inputs), and `summary` says what was built in the log line.
    """
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]
    out_dir = Path(cache_dir) / f"{name}-{digest}"
    if out_dir.is_dir():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(out_dir.parent / f".{out_dir.name}.lock"):
        if out_dir.is_dir():
            logger.info(f"{out_dir} was built by another process while this one waited")
            return out_dir
        return _build(out_dir, inputs, build)


@contextlib.contextmanager
def _build_lock(path: Path):
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel if the builder dies
        yield


def _build(out_dir: Path, inputs: dict, build: Callable[[], tuple]) -> Path:
    start = time.perf_counter()
    model, tokenizer, summary = build()
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "build_inputs.json").write_text(json.dumps(inputs, indent=2))
        if not (tmp / "config.json").is_file():
            raise RuntimeError(f"save_pretrained wrote no weights for {out_dir.name}: build it on global rank 0 only")
    except BaseException:
        shutil.rmtree(tmp)  # leave no half-written copy behind
        raise
    try:
        os.rename(tmp, out_dir)  # atomic; fails if a concurrent builder finished first
    except OSError:
        shutil.rmtree(tmp)
        logger.info(f"{out_dir} was built concurrently; using that copy")
        return out_dir
    logger.info(f"Built {summary} in {time.perf_counter() - start:.1f}s at {out_dir}")
    return out_dir
