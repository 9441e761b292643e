"""Run-dir state: checkpoint completeness and rotation, atomic manifests, the single-writer lease."""

import json
import multiprocessing
import os
import signal
import time

import pytest

from rlvr_vocab.errors import ConfigError
from rlvr_vocab.run import checkpoints
from rlvr_vocab.run.lease import RunLease
from rlvr_vocab.run.manifest import COMPLETED, FAILED, Manifest, read_manifest


def make_checkpoint(root, step, complete=True):
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(os.urandom(64))
    (path / "trainer_state.json").write_text("{}")
    if complete:
        checkpoints.mark_complete(path)
    return path


def test_resume_picks_newest_complete_and_sets_partial_aside(tmp_path):
    make_checkpoint(tmp_path, 10)
    make_checkpoint(tmp_path, 20)
    make_checkpoint(tmp_path, 30, complete=False)  # killed mid-save
    best, skipped = checkpoints.latest_complete(tmp_path)
    assert best.name == "checkpoint-20"
    assert [s["checkpoint"] for s in skipped] == ["checkpoint-30"]
    assert "marker" in skipped[0]["reason"]
    assert not (tmp_path / "checkpoint-30").exists()
    assert any((tmp_path / "incomplete").iterdir())  # set aside, not deleted


def test_a_changed_file_makes_a_checkpoint_incomplete(tmp_path):
    path = make_checkpoint(tmp_path, 5)
    (path / "model.safetensors").write_bytes(b"truncated")
    assert "model.safetensors" in checkpoints.incompleteness(path)


def test_rotation_never_removes_the_newest_complete(tmp_path):
    for step in (10, 20, 30):
        make_checkpoint(tmp_path, step)
    make_checkpoint(tmp_path, 40, complete=False)
    removed = checkpoints.rotate(tmp_path, keep=1)
    assert [p.name for p in removed] == ["checkpoint-10", "checkpoint-20"]
    assert (tmp_path / "checkpoint-30").exists() and (tmp_path / "checkpoint-40").exists()


def test_manifest_schema_and_attempts(tmp_path):
    m = Manifest.load_or_create(tmp_path, "demo", "r1")
    m.start_attempt(world_size=1)
    m.end_attempt(FAILED, "ValueError: boom")
    m2 = Manifest.load_or_create(tmp_path, "demo", "r1")
    assert m2.data["run_id"] == m.data["run_id"]
    m2.start_attempt(world_size=1)
    m2.end_attempt(COMPLETED)
    data = read_manifest(tmp_path)
    for key in ("run_id", "exp_name", "run_name", "status", "created", "updated", "git_commit", "git_dirty", "host",
                "wandb_id", "wandb_url", "last_step", "max_steps", "checkpoints", "metrics", "attempts"):
        assert key in data
    assert [a["end_state"] for a in data["attempts"]] == [FAILED, COMPLETED]
    assert data["status"] == COMPLETED and data["error"] is None


def test_manifest_never_holds_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret-value-123456")
    m = Manifest.load_or_create(tmp_path, "demo", "r1")
    m.update(metrics={"note": "key wandb-secret-value-123456"})
    assert "wandb-secret-value-123456" not in (tmp_path / "run.json").read_text()


def _writer(run_dir, n):
    m = Manifest.load_or_create(run_dir, "demo", "r")
    for i in range(n):
        m.update(last_step=i, metrics={"blob": "x" * 20000})


def test_manifest_readers_never_see_a_partial_file(tmp_path):
    Manifest.load_or_create(tmp_path, "demo", "r").save()
    proc = multiprocessing.get_context("fork").Process(target=_writer, args=(tmp_path, 300))
    proc.start()
    reads = 0
    while proc.is_alive():
        json.loads((tmp_path / "run.json").read_text())
        reads += 1
    proc.join()
    assert reads > 0


def test_killed_writer_leaves_previous_manifest(tmp_path):
    Manifest.load_or_create(tmp_path, "demo", "r").update(last_step=7)
    proc = multiprocessing.get_context("fork").Process(target=_writer, args=(tmp_path, 100000))
    proc.start()
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert json.loads((tmp_path / "run.json").read_text())["run_name"] == "r"


def test_lease_is_exclusive_until_its_holder_dies(tmp_path):
    holder = RunLease(tmp_path)
    holder.acquire()
    # Another process on this host must be refused while the holder lives.
    other = RunLease(tmp_path)
    other.me = {**other.me, "pid": os.getpid() + 1}
    with pytest.raises(ConfigError, match="in use"):
        other.acquire()
    holder.release()
    other.acquire()
    other.release()


def test_stale_lease_of_a_dead_process_is_taken_over(tmp_path):
    proc = multiprocessing.get_context("fork").Process(target=lambda: RunLease(tmp_path).acquire())
    proc.start()
    proc.join()
    lease = RunLease(tmp_path)
    lease.acquire()  # the dead holder cannot hold it forever
    lease.release()
