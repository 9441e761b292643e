"""The disk holding the experiments root full: `status` and `show` read the run dirs' files (the registry's index is a
cache) and say so in one line, `registry rebuild` names the disk in one line, a local run that died for want of space
is FAILED saying so, and nothing under the root is damaged."""

import errno
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

from rlvr_vocab.core.states import Event, RunState
from rlvr_vocab.registry import index
from rlvr_vocab.run.fsio import note_change
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.lease import RunLease
from rlvr_vocab.run.manifest import Manifest


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs of its own (root may mount one): skipped where it cannot be mounted, but in CI."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = shutil.which("mount")
    done = subprocess.run([mount, "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True,
                          text=True) if mount else None
    if done is None or done.returncode:
        why = f"cannot mount a tmpfs here: {done.stderr.strip() if done else 'no mount command'}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def start_run(root: Path, name: str) -> Manifest:
    """A local run dir as its job writes it when its attempt starts (no training)."""
    paths = RunPaths(root / "demo" / name)
    paths.run_dir.mkdir(parents=True)
    manifest = Manifest.new(paths, "demo", name, "f" * 16)
    manifest.data.update(last_step=3, max_steps=10)
    manifest.start_attempt(world_size=1)
    return manifest


def fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as f:
        with pytest.raises(OSError) as full:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    assert full.value.errno == errno.ENOSPC


def rows(table: str) -> list[list[str]]:
    """A `status` table's rows as (run, experiment, state)."""
    return [line.split()[:3] for line in table.splitlines()[1:-1] if not line.startswith("  ")]


def test_status_and_show_read_the_run_dirs_while_the_disk_is_full(small_disk):
    root = small_disk / "experiments"
    env = {"RLVR_EXPERIMENTS_ROOT": str(root), "PATH": "/nonexistent"}  # no Slurm: these are local runs
    done = start_run(root, "done")
    done.end_attempt(Event.FINISH, RunState.COMPLETED)
    dying = start_run(root, "dying")
    lease = RunLease(dying.paths)
    lease.acquire()
    try:
        before = run_cli("status", env=env)
        assert before.returncode == 0 and before.stderr == "", before.stderr
        assert rows(before.stdout)[1] == ["dying", "demo", "RUNNING"] and (root / ".registry.sqlite").is_file()
        fill(small_disk)
        with pytest.raises(OSError):  # the job records its end: no room
            dying.end_attempt(Event.FAIL, RunState.FAILED, "OSError: [Errno 28] No space left on device")
    finally:
        lease.release()
    note_change(dying.paths.run_dir)  # as its writes do: the index must be refreshed
    manifests = {p: p.read_bytes() for p in root.glob("*/*/run.json")}
    stale = f"index not updated: disk full at {root}; showing the run dirs' files\n"
    died = f"disk full at {dying.paths.run_dir}: the job could not record how it ended"

    status = run_cli("status", env=env)
    assert status.returncode == 0 and status.stderr == stale
    assert rows(status.stdout) == [["done", "demo", "COMPLETED"], ["dying", "demo", "FAILED"]]
    assert status.stdout.splitlines()[-2:] == [f"  dying: {died}", "2 runs: 1 COMPLETED, 1 FAILED; newest last"]

    show = run_cli("show", "dying", env=env)
    assert show.returncode == 0 and show.stderr == stale
    assert show.stdout.splitlines()[1] == f"  note: {died}" and f"FAILED: {died}" in show.stdout  # and its attempt

    rebuild = run_cli("registry", "rebuild", env=env)
    assert rebuild.returncode == 2 and rebuild.stdout == "" and rebuild.stderr.count("\n") == 1
    assert rebuild.stderr.startswith(f"error: registry index {root / '.registry.sqlite'}: cannot be written: disk "
                                     f"full at {root}; free space there")
    assert "rebuild" not in rebuild.stderr and "Traceback" not in rebuild.stderr
    assert run_cli("status", env=env).stderr == stale  # with the index gone too

    assert {p: p.read_bytes() for p in root.glob("*/*/run.json")} == manifests
    (small_disk / "filler").unlink()
    assert run_cli("registry", "rebuild", env=env).stdout == "registry rebuilt from run dirs: 2 runs\n"
    after = run_cli("status", env=env)
    assert after.returncode == 0 and after.stderr == "" and rows(after.stdout)[1] == ["dying", "demo", "LOST"]


@pytest.mark.parametrize(("error", "said"), [
    (OSError(errno.ENOSPC, "No space left on device"), "disk full at {dir}"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk quota exceeded at {dir}"),
    (OSError(errno.EROFS, "Read-only file system"), "{dir} is read-only"),
    (sqlite3.OperationalError("database or disk is full"), "disk full at {dir}"),
    (OSError(errno.EACCES, "Permission denied"), None),
    (sqlite3.DatabaseError("file is not a database"), None),
])
def test_the_disks_refusals_are_told_from_other_errors(tmp_path, error, said):
    if isinstance(error, sqlite3.Error):  # as SQLite raises them, with their result code
        error.sqlite_errorcode = 13 if "full" in str(error) else 26
    refusal = index._disk_refusal(tmp_path / ".registry.sqlite", error)
    assert (refusal and refusal.why) == (said and said.format(dir=tmp_path))
