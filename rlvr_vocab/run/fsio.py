"""Writes a run dir can trust: atomic replacement, exclusive creation, modes that follow the umask, a lock.

Readers (the CLI, a teammate's `status`) see a file's old or new content, never half of it; a file one user writes
is as readable to the group as the umask says (tempfile's 0600 would lock teammates out of a shared root).
"""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def umask() -> int:
    """The process's umask, read without changing it (os.umask can only set it, which races with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def share_as_umask_allows(directory: Path) -> None:
    """Give every file below `directory` the read/write bits the umask allows: libraries that write through a temporary
    file (safetensors' model.safetensors is 0600) would lock a group-shared root's teammates out of it."""
    allowed = 0o666 & ~umask()
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            mode = path.stat().st_mode & 0o7777
            if mode | allowed != mode:
                os.chmod(path, mode | allowed)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: Path, name: str, text: str) -> str:
    import tempfile  # here: the CLI reads run dirs and never writes through this module

    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` via a temp file in the same directory, fsync, rename."""
    path = Path(path)
    tmp = _write_temp(path.parent, path.name, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def note_change(run_dir: Path) -> None:
    """Tell the registry that a file it indexes changed in `run_dir`: its experiment dir's mtime moves, and `status`
    looks again at that experiment's finished runs (it skips them while the dir's mtime stays put). A dir this
    user may not touch is looked at on the registry's periodic rescan instead."""
    try:
        os.utime(Path(run_dir).parent)
    except OSError:
        pass


def create_exclusive(path: Path, text: str) -> bool:
    """Create `path` holding `text` unless it exists (then False): complete or absent, never empty, never twice.

    A hard link of a finished temp file is atomic and fails if the name exists, also on NFS.
    """
    path = Path(path)
    tmp = _write_temp(path.parent, path.name, text)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return True


class LockTimeout(Exception):
    """Another process held the lock for longer than we would wait."""


@contextmanager
def locked(path: Path, timeout_s: float = 120.0) -> Iterator[None]:
    """An exclusive lock on `path` (created if needed) for the block; waits up to `timeout_s` for another holder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # a teammate's lock file we may not write: flock needs only a readable descriptor
        fd = os.open(path, os.O_RDONLY)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{path} is held by another process for over {timeout_s:.0f} s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock
