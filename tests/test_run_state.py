"""Run-dir state: checkpoint and final/ completeness, rotation, manifests, files that follow the umask, the lease."""

import json
import multiprocessing
import os
import signal
import stat
import time

import pytest

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.states import Event, InvalidTransition, RunState
from rlvr_vocab.run import checkpoints, lease
from rlvr_vocab.run.fsio import atomic_write_text, create_exclusive
from rlvr_vocab.run.layout import COMPLETE_MARKER, RunPaths
from rlvr_vocab.run.lease import LeaseLost, RunLease
from rlvr_vocab.run.manifest import Manifest, UnreadableManifest, read_manifest


def make_checkpoint(root, step, complete=True):
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(os.urandom(64))
    (path / "trainer_state.json").write_text("{}")
    if complete:
        checkpoints.mark_complete(path)
    return path


def new_manifest(run_dir, name="r") -> Manifest:
    paths = RunPaths(run_dir)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    return Manifest.new(paths, "demo", name, "0" * 16)


def test_resume_picks_newest_complete_and_sets_partial_aside(tmp_path):
    paths = RunPaths(tmp_path)
    make_checkpoint(paths.checkpoints, 10)
    make_checkpoint(paths.checkpoints, 20)
    make_checkpoint(paths.checkpoints, 30, complete=False)  # killed mid-save
    best, skipped = checkpoints.latest_complete(paths)
    assert best.name == "checkpoint-20"
    assert [s["checkpoint"] for s in skipped] == ["checkpoint-30"]
    assert "marker" in skipped[0]["reason"]
    assert not paths.checkpoint(30).exists()
    assert any(paths.incomplete_checkpoints.iterdir())  # set aside, not deleted


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


def test_final_is_complete_or_absent(tmp_path):
    paths = RunPaths(tmp_path)

    def write(d):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"weights")

    def dies_half_way(d):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # a signal mid-save

    with pytest.raises(KeyboardInterrupt):
        checkpoints.commit_final(paths, dies_half_way, step=4)
    assert not paths.final.exists() and checkpoints.final_step(paths) is None
    checkpoints.commit_final(paths, write, step=4)
    assert checkpoints.final_step(paths) == 4 and (paths.final / COMPLETE_MARKER).exists()
    assert not list(tmp_path.glob(".final.*"))  # the leftover of the killed save is gone
    checkpoints.commit_final(paths, write, step=6)  # a continued run replaces it whole
    assert checkpoints.final_step(paths) == 6


def test_manifest_schema_and_attempts(tmp_path):
    m = new_manifest(tmp_path)
    m.start_attempt(world_size=1)
    m.end_attempt(Event.FAIL, RunState.FAILED, "ValueError: boom")
    m2 = Manifest.load(RunPaths(tmp_path))
    assert m2.data["run_id"] == m.data["run_id"]
    m2.start_attempt(world_size=1)
    m2.end_attempt(Event.FINISH, RunState.COMPLETED)
    data = read_manifest(tmp_path)
    for key in ("run_id", "exp_name", "run_name", "status", "created", "updated", "git_commit", "git_dirty", "host",
                "wandb_id", "wandb_url", "last_step", "max_steps", "checkpoints", "metrics", "attempts", "identity"):
        assert key in data
    assert [a["end_state"] for a in data["attempts"]] == ["FAILED", "COMPLETED"]
    assert data["status"] == "COMPLETED" and data["error"] is None


def test_manifest_refuses_a_transition_the_table_does_not_have(tmp_path):
    m = new_manifest(tmp_path)
    with pytest.raises(InvalidTransition):
        m.set_state(Event.FINISH, RunState.COMPLETED)  # a run never started cannot finish


def test_schema_1_manifests_read_in_todays_spelling(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"status": "completed", "attempts": [{"end_state": "node_fail"}]}))
    data = read_manifest(tmp_path)
    assert data["status"] == "COMPLETED" and data["attempts"][0]["end_state"] == "NODE_FAIL"


def test_a_corrupt_manifest_is_unreadable_not_a_crash(tmp_path):
    (tmp_path / "run.json").write_text('{"status": "RUNN')
    with pytest.raises(UnreadableManifest, match="not valid JSON"):
        read_manifest(tmp_path)
    with pytest.raises(ConfigError, match="cannot be read"):
        Manifest.load(RunPaths(tmp_path))


def test_manifest_never_holds_secrets_at_any_depth(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret-value-123456")
    m = new_manifest(tmp_path)
    m.update(metrics={"note": "key wandb-secret-value-123456"},
             overrides=["+model.model_kwargs.token=hf_literalTokenNotInEnv1234"],
             eval={"nested": {"hub_token": "hf_literalTokenNotInEnv1234"}})
    text = (tmp_path / "run.json").read_text()
    assert "wandb-secret-value-123456" not in text and "hf_literalTokenNotInEnv1234" not in text


def _writer(run_dir, n):
    m = Manifest.load(RunPaths(run_dir))
    for i in range(n):
        m.update(last_step=i, metrics={"blob": "x" * 20000})


def test_manifest_readers_never_see_a_partial_file(tmp_path):
    new_manifest(tmp_path).save()
    proc = multiprocessing.get_context("fork").Process(target=_writer, args=(tmp_path, 300))
    proc.start()
    reads = 0
    while proc.is_alive():
        json.loads((tmp_path / "run.json").read_text())
        reads += 1
    proc.join()
    assert reads > 0


def test_killed_writer_leaves_previous_manifest(tmp_path):
    new_manifest(tmp_path).update(last_step=7)
    proc = multiprocessing.get_context("fork").Process(target=_writer, args=(tmp_path, 100000))
    proc.start()
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert json.loads((tmp_path / "run.json").read_text())["run_name"] == "r"


def test_files_follow_the_umask_for_a_shared_root(tmp_path):
    old = os.umask(0o002)  # a group-shared root
    try:
        atomic_write_text(tmp_path / "run.json", "{}")
        assert create_exclusive(tmp_path / "identity.json", "{}")
    finally:
        os.umask(old)
    for name in ("run.json", "identity.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o664, name


def _create(path, barrier, results):
    barrier.wait()
    results.put(create_exclusive(path, str(os.getpid())))


def test_exclusive_create_has_one_winner(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=_create, args=(tmp_path / "x", barrier, results)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert sorted(results.get() for _ in procs) == [False] * 7 + [True]
    assert (tmp_path / "x").read_text().isdigit()


def test_lease_is_exclusive_until_its_holder_releases(tmp_path):
    paths = RunPaths(tmp_path)
    holder = RunLease(paths)
    holder.acquire()
    other = RunLease(paths)
    with pytest.raises(ConfigError, match="in use by pid"):
        other.acquire()
    holder.release()
    other.acquire()
    other.release()


def test_stale_lease_of_a_dead_process_is_taken_over(tmp_path):
    paths = RunPaths(tmp_path)
    proc = multiprocessing.get_context("fork").Process(target=lambda: RunLease(paths).acquire())
    proc.start()
    proc.join()
    taker = RunLease(paths)
    taker.acquire()  # the dead holder cannot hold it forever
    assert "has exited" in taker.taken_over
    taker.release()


def _take(paths, barrier, done, results):
    taker = RunLease(paths)
    barrier.wait()
    try:
        taker.acquire()
        results.put("won")
        done.wait()  # hold it while the others try
        taker.release()
    except ConfigError:
        results.put("refused")


def test_two_jobs_taking_over_a_stale_lease_at_once_cannot_both_win(tmp_path):
    paths = RunPaths(tmp_path)
    dead = multiprocessing.get_context("fork").Process(target=lambda: RunLease(paths).acquire())
    dead.start()
    dead.join()
    ctx = multiprocessing.get_context("fork")
    barrier, done, results = ctx.Barrier(6), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_take, args=(paths, barrier, done, results)) for _ in range(6)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    done.set()
    for p in procs:
        p.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["won"]


def test_slurm_is_asked_before_the_heartbeat(tmp_path, monkeypatch):
    """A suspended job's heartbeat stops; while Slurm says its job holds, the lease is its own."""
    holder = {"host": "other-node", "pid": 1, "slurm_job_id": "42", "heartbeat": time.time() - 10 * lease.LEASE_TTL_S}
    monkeypatch.setattr(lease.slurm_client, "queue_states", lambda jobs: {"42": "SUSPENDED"})
    assert lease.stale_reason(holder) is None
    monkeypatch.setattr(lease.slurm_client, "queue_states", lambda jobs: {})
    assert "no longer in the queue" in lease.stale_reason(holder)

    def unreachable(jobs):
        raise lease.slurm_client.SlurmError("squeue did not answer")

    monkeypatch.setattr(lease.slurm_client, "queue_states", unreachable)
    assert "no heartbeat" in lease.stale_reason(holder)  # only when Slurm cannot be asked


def test_a_job_that_lost_its_lease_writes_nothing(tmp_path, monkeypatch):
    paths = RunPaths(tmp_path)
    first = RunLease(paths)
    first.acquire()
    m = new_manifest(tmp_path)
    m.guard = first.check
    m.update(last_step=1)
    monkeypatch.setattr(lease, "stale_reason", lambda holder, me=None: "presumed dead")
    second = RunLease(paths)
    second.acquire()  # takes over while the first still runs (e.g. it was suspended)
    with pytest.raises(LeaseLost):
        m.update(last_step=2)
    assert read_manifest(tmp_path)["last_step"] == 1
    second.release()
    first.release()


def test_rotation_keeps_milestones_weights_only_and_prunes_old_set_asides(tmp_path):
    paths = RunPaths(tmp_path)
    for step in (10, 20, 30, 40):
        path = make_checkpoint(paths.checkpoints, step)
        (path / "optimizer.pt").write_bytes(os.urandom(256))
        (path / "rng_state.pth").write_bytes(b"rng")
        checkpoints.mark_complete(path)
    removed = checkpoints.rotate(paths.checkpoints, keep=1, milestone_every=20)
    assert [p.name for p in removed] == ["checkpoint-10", "checkpoint-20", "checkpoint-30"]
    [milestone] = checkpoints.milestones(paths)
    assert milestone.name == "checkpoint-20" and checkpoints.marker(milestone)["weights_only"]
    assert (milestone / "model.safetensors").exists() and not (milestone / "optimizer.pt").exists()
    assert [p.name for p in checkpoints.complete_checkpoints(paths.checkpoints)] == ["checkpoint-40"]
    aside = paths.incomplete_checkpoints / "checkpoint-50-1"
    aside.mkdir(parents=True)
    os.utime(aside, (time.time() - 3 * 3600,) * 2)
    assert checkpoints.prune_set_aside(paths, grace_h=4) == []
    assert checkpoints.prune_set_aside(paths, grace_h=2) == [aside] and not aside.exists()
    use = checkpoints.disk_use(paths)
    assert use["total"] >= use["checkpoints"] + use["milestones"] > 0


def test_a_complete_checkpoint_is_readable_as_the_umask_allows(tmp_path):
    """safetensors writes model.safetensors 0600 whatever the umask: on a group-shared root (umask 002) a teammate's
    `rlvr-vocab eval` could not read it. Marking the checkpoint complete shares what the umask allows, no more."""
    previous = os.umask(0o002)
    try:
        ckpt = tmp_path / "checkpoint-2"
        (ckpt / "sub").mkdir(parents=True)
        for name in ("model.safetensors", "sub/optimizer.pt"):
            (ckpt / name).write_bytes(b"x")
            os.chmod(ckpt / name, 0o600)
        checkpoints.mark_complete(ckpt)
        assert {stat.S_IMODE((ckpt / n).stat().st_mode) for n in ("model.safetensors", "sub/optimizer.pt")} == {0o664}
        os.umask(0o077)  # a private root stays private
        os.chmod(ckpt / "model.safetensors", 0o600)
        checkpoints.mark_complete(ckpt)
        assert stat.S_IMODE((ckpt / "model.safetensors").stat().st_mode) == 0o600
    finally:
        os.umask(previous)


def test_a_code_snapshot_is_taken_once_and_a_full_root_is_one_line(tmp_path, monkeypatch):
    """The same code gives the same snapshot (taken once); a root that cannot hold it refuses the submission in one
    line and leaves nothing half-copied."""
    import errno
    import shutil

    from rlvr_vocab.run import code

    first = code.ensure_snapshot(tmp_path / "root")
    assert code.ensure_snapshot(tmp_path / "root") == first and (first / "code.json").is_file()
    assert (first / "rlvr_vocab" / "train.py").is_file() and (first / "conf" / "config.yaml").is_file()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", full)
    with pytest.raises(ConfigError, match=r"_code: cannot hold the code snapshot jobs run from \(No space left on"):
        code.ensure_snapshot(tmp_path / "other")
    assert list((tmp_path / "other" / "_code").iterdir()) == []
