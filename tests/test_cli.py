"""The rlvr-vocab CLI on synthetic run dirs: status, show, logs, compare, lookup, index, scale."""

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from rlvr_vocab.cli import main
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.states import Event, RunState
from rlvr_vocab.registry import Registry, index, run_files
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import Manifest

_ENDS = {"completed": (Event.FINISH, RunState.COMPLETED), "failed": (Event.FAIL, RunState.FAILED),
         "cancelled": (Event.TERMINATE, RunState.CANCELLED)}


def make_run(root, exp, name, status="completed", sweep=None, overrides=(), step=10, job=None, reward=0.5,
             final_acc=None):
    paths = RunPaths(root / exp / name)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    m = Manifest.load(paths) or Manifest.new(paths, exp, name, "f" * 16)
    m.data.update(sweep_id=sweep, overrides=list(overrides), last_step=step, max_steps=10,
                  checkpoints=[{"step": step, "path": f"checkpoints/checkpoint-{step}"}],
                  metrics={"reward": reward}, eval={"final": {"accuracy": final_acc}} if final_acc is not None else {})
    m.start_attempt(world_size=1)
    if job:
        m.data["attempts"][-1]["slurm_job_id"] = job
    if status != "running":
        event, state = _ENDS[status]
        m.end_attempt(event, state, "ValueError: boom" if status == "failed" else None)
    else:
        m.save()
    return m


def cli(*args, capsys=None):
    code = main(list(args))
    out = capsys.readouterr() if capsys else None
    return code, out


@pytest.fixture
def no_slurm(monkeypatch, tmp_path):
    """A PATH without sacct/squeue: what a laptop or a dead controller looks like."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))


def test_status_json_lists_runs_with_states(experiments_root, capsys, no_slurm):
    make_run(experiments_root, "demo", "a", "completed", sweep="s1")
    make_run(experiments_root, "demo", "b", "failed", sweep="s1")
    code, out = cli("status", "--json", capsys=capsys)
    rows = {r["run_name"]: r for r in json.loads(out.out)}
    assert code == 0 and rows["a"]["state"] == "COMPLETED" and rows["b"]["state"] == "FAILED"
    assert rows["b"]["error"] == "ValueError: boom"
    code, out = cli("status", "--state", "failed", "--json", capsys=capsys)
    assert [r["run_name"] for r in json.loads(out.out)] == ["b"]


def test_running_slurm_run_without_slurm_is_unknown_and_stale(experiments_root, capsys, no_slurm):
    make_run(experiments_root, "demo", "live", "running", job="123")
    code, out = cli("status", "--json", capsys=capsys)
    row = json.loads(out.out)[0]
    assert row["state"] == "UNKNOWN" and row["stale"] and "last known RUNNING" in row["note"]
    assert "sacct" in row["note"]
    _, out = cli("status", capsys=capsys)  # the table says why too
    table = out.out
    assert "UNKNOWN (stale)" in table and "sacct" in table


def test_local_run_whose_process_died_is_lost(experiments_root, capsys, no_slurm):
    make_run(experiments_root, "demo", "orphan", "running")
    code, out = cli("status", "--json", capsys=capsys)
    assert json.loads(out.out)[0]["state"] == "LOST"


def test_lookup_by_id_name_prefix_and_ambiguity(experiments_root, capsys, no_slurm):
    m = make_run(experiments_root, "demo", "alpha-1")
    make_run(experiments_root, "demo", "alpha-2")
    assert cli("show", "alpha-1", "--json", capsys=capsys)[0] == 0
    assert cli("show", m.data["run_id"][:6], "--json", capsys=capsys)[0] == 0
    code, out = cli("show", "alpha", capsys=capsys)
    assert code == 2 and "ambiguous" in out.err and "alpha-1" in out.err and "alpha-2" in out.err
    code, out = cli("show", "../etc", capsys=capsys)
    assert code == 2 and "path separators" in out.err
    code, out = cli("show", "nope", capsys=capsys)
    assert code == 2 and "not found" in out.err


def test_show_prints_attempts_and_paths(experiments_root, capsys, no_slurm):
    make_run(experiments_root, "demo", "r", "failed")
    code, out = cli("show", "r", capsys=capsys)
    assert code == 0 and "attempts:" in out.out and "FAILED: ValueError: boom" in out.out and "run_dir" in out.out


def test_logs_falls_back_to_train_log(experiments_root, capsys, no_slurm):
    make_run(experiments_root, "demo", "r")
    (experiments_root / "demo" / "r" / "train.log").write_text("hello from the job\n")
    code, out = cli("logs", "r", capsys=capsys)
    assert code == 0 and "hello from the job" in out.out


def test_compare_sweep_columns_sorted(experiments_root, capsys, no_slurm):
    for lr, seed, acc in [("3e-6", "1", 0.6), ("1e-6", "0", 0.5), ("3e-6", "0", 0.7)]:
        make_run(experiments_root, "demo", f"lr={lr},seed={seed}", sweep="s",
                 overrides=[f"training.learning_rate={lr}", f"seed={seed}", "training.max_steps=10"], final_acc=acc)
    make_run(experiments_root, "demo", "other", sweep="t")
    code, out = cli("compare", "--sweep", "s", "--runs", "--json", capsys=capsys)
    rows = json.loads(out.out)
    assert [(r["training.learning_rate"], r["seed"]) for r in rows] == [("1e-6", "0"), ("3e-6", "0"), ("3e-6", "1")]
    assert "training.max_steps" not in rows[0] and rows[1]["acc_final"] == 0.7
    code, out = cli("compare", "--sweep", "s", "--runs", "--csv", capsys=capsys)
    assert out.out.splitlines()[0].startswith("run,")


def test_rebuild_gives_the_same_status(experiments_root, capsys, no_slurm):
    for i in range(5):
        make_run(experiments_root, "demo", f"r{i}", "completed" if i % 2 else "failed")
    _, before = cli("status", "--json", capsys=capsys)
    (experiments_root / ".registry.sqlite").unlink()
    assert cli("registry", "rebuild", capsys=capsys)[0] == 0
    _, after = cli("status", "--json", capsys=capsys)
    assert json.loads(before.out) == json.loads(after.out)


def test_status_sees_a_manifest_rewritten_right_after_it_was_indexed(experiments_root, capsys, no_slurm):
    """The index trusts a run dir's mtime, which may not move for writes within the same clock tick."""
    m = make_run(experiments_root, "demo", "a", "running")
    for step in (3, 4, 5):
        m.update(last_step=step)
        _, out = cli("status", "--json", capsys=capsys)
        assert json.loads(out.out)[0]["last_step"] == step


def test_status_summary_matches_the_full_manifest(experiments_root, capsys, no_slurm):
    """`status` reads a summary of each manifest from the index; `show` reads it whole: they agree."""
    make_run(experiments_root, "demo", "a", "completed", job="77", reward=0.25)
    make_run(experiments_root, "demo", "b", "failed", job="78")
    _, out = cli("status", "--json", capsys=capsys)
    full = Registry(experiments_root).runs(full=True)
    assert json.loads(out.out) == [v.to_json() for v in full]


def _writer(root, i):
    paths = RunPaths(root / "demo" / f"w{i}")
    paths.run_dir.mkdir(parents=True)
    m = Manifest.new(paths, "demo", f"w{i}", "f" * 16)
    m.start_attempt()
    for step in range(20):
        m.update(last_step=step, metrics={"reward": step / 20})
    m.end_attempt(Event.FINISH, RunState.COMPLETED)


def test_concurrent_writers_while_status_loops(experiments_root, no_slurm):
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_writer, args=(experiments_root, i)) for i in range(50)]
    for w in writers:
        w.start()
    polls = 0
    while any(w.is_alive() for w in writers) or polls < 3:
        out = subprocess.run([sys.executable, "-m", "rlvr_vocab", "status", "--json"], capture_output=True, text=True,
                             env={**os.environ, "RLVR_EXPERIMENTS_ROOT": str(experiments_root)})
        assert out.returncode == 0, out.stderr
        json.loads(out.stdout)  # every read parses
        polls += 1
    env = {**os.environ, "RLVR_EXPERIMENTS_ROOT": str(experiments_root)}
    rows = json.loads(subprocess.run([sys.executable, "-m", "rlvr_vocab", "status", "--json"], capture_output=True,
                                     text=True, env=env).stdout)
    assert len(rows) == 50 and all(r["state"] == "COMPLETED" and r["last_step"] == 19 for r in rows)


def test_cli_does_not_import_torch():
    code = "import sys, rlvr_vocab.cli; sys.exit(any(m in sys.modules for m in ('torch', 'transformers', 'trl')))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_status_over_1000_runs_reads_only_the_runs_that_changed(experiments_root, capsys, no_slurm, monkeypatch):
    """What keeps `status` fast at scale (timed in `python -m rlvr_vocab.bench`): once indexed, a run's files are
    read again only when its directory changed."""
    long_ago = time.time() - 60  # outside the index's racy window, as for runs written before this `status`
    for i in range(1000):
        d = experiments_root / "bulk" / f"r{i:04d}"
        d.mkdir(parents=True)
        (d / "run.json").write_text(json.dumps({"run_id": f"id{i:04d}", "exp_name": "bulk", "run_name": d.name,
                                                "status": "completed", "last_step": 5, "max_steps": 5,
                                                "attempts": [], "metrics": {}}))
        os.utime(d, (long_ago, long_ago))
    assert cli("status", "--json", capsys=capsys)[0] == 0  # builds the index

    read = []
    real_read_run = run_files.read_run
    monkeypatch.setattr(run_files, "read_run", lambda path: read.append(path) or real_read_run(path))
    _, out = cli("status", "--json", capsys=capsys)
    assert len(json.loads(out.out)) == 1000 and read == []

    changed = experiments_root / "bulk" / "r0042"
    manifest = json.loads((changed / "run.json").read_text())
    (changed / "run.json.tmp").write_text(json.dumps({**manifest, "last_step": 6}))
    (changed / "run.json.tmp").rename(changed / "run.json")
    _, out = cli("status", "--json", capsys=capsys)
    assert set(read) == {str(changed)}
    assert next(r for r in json.loads(out.out) if r["run_name"] == "r0042")["last_step"] == 6


def test_root_is_accepted_before_and_after_the_subcommand(tmp_path, capsys, no_slurm):
    make_run(tmp_path / "elsewhere", "demo", "a")
    for args in (["--root", str(tmp_path / "elsewhere"), "status", "--json"],
                 ["status", "--root", str(tmp_path / "elsewhere"), "--json"]):
        code, out = cli(*args, capsys=capsys)
        assert code == 0 and [r["run_name"] for r in json.loads(out.out)] == ["a"], args


def test_a_corrupt_manifest_is_listed_unreadable_and_status_goes_on(experiments_root, capsys, no_slurm):
    make_run(experiments_root, "demo", "good")
    bad = experiments_root / "demo" / "bad"
    bad.mkdir()
    (bad / "run.json").write_text('{"status": "RUNN')
    code, out = cli("status", "--json", capsys=capsys)
    rows = {r["run_name"]: r for r in json.loads(out.out)}
    assert code == 0 and rows["good"]["state"] == "COMPLETED"
    assert rows["bad"]["state"] == "UNREADABLE" and "not valid JSON" in rows["bad"]["note"]
    code, out = cli("status", capsys=capsys)
    assert code == 0 and "UNREADABLE" in out.out and "Traceback" not in out.err
    assert cli("show", "bad", capsys=capsys)[0] == 0


def test_a_locked_index_is_one_line_naming_rebuild(experiments_root, capsys, no_slurm, monkeypatch):
    import sqlite3

    make_run(experiments_root, "demo", "a")
    assert cli("status", "--json", capsys=capsys)[0] == 0
    monkeypatch.setattr(index, "_BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(experiments_root / ".registry.sqlite")
    holder.execute("begin exclusive")
    try:
        make_run(experiments_root, "demo", "b")  # a change to index
        code, out = cli("status", "--json", capsys=capsys)
    finally:
        holder.rollback()
        holder.close()
    assert code == 2 and out.err.count("\n") == 1 and "locked" in out.err and "registry rebuild" in out.err


def test_a_malformed_index_is_one_line_naming_rebuild(experiments_root, capsys, no_slurm):
    make_run(experiments_root, "demo", "a")
    (experiments_root / ".registry.sqlite").write_bytes(b"this is not a database" * 100)
    code, out = cli("status", capsys=capsys)
    assert code == 2 and out.err.count("\n") == 1 and "rlvr-vocab registry rebuild" in out.err
    assert cli("registry", "rebuild", capsys=capsys)[0] == 0
    assert cli("status", capsys=capsys)[0] == 0


def test_show_and_status_agree_on_an_attempt_slurm_ended(tmp_path):
    """A job killed -9 records no end: `show` lists its attempt as `status` shows the run, never as running."""
    from rlvr_vocab.registry import RunView
    from rlvr_vocab.registry.slurm_view import SlurmView
    from rlvr_vocab.slurm.client import SacctRow

    manifest = {"status": "RUNNING", "attempts": [{"n": 1, "slurm_job_id": "9", "started": "2026-01-01T00:00:00+00:00",
                                                   "end_state": None}]}
    view = RunView(tmp_path, manifest, [])
    view.resolve(SlurmView({"9": SacctRow("9", "FAILED", "9:0", "vm", None, None)}))
    assert view.state == "FAILED"
    assert view.settled_attempts()[0]["end_state"] == "FAILED"


def test_a_teammate_on_a_shared_root_reads_what_they_can(tmp_path):
    """Another user, on a root whose index and one manifest they may not write or read: status works for them."""
    import pwd
    import shutil
    import stat

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as another user")
    closed = [str(d) for d in (REPO, *REPO.parents) if not d.stat().st_mode & stat.S_IXOTH]
    if closed:  # e.g. a clone under `mktemp -d` (mode 0700): the teammate could not import the package at all
        pytest.skip(f"other users cannot enter {closed[0]}, so a teammate cannot run this checkout's code")
    shared = tmp_path / "shared"
    old = os.umask(0o022)  # the owner's files: readable, not writable, by others
    try:
        make_run(shared, "demo", "mine")
        private = make_run(shared, "demo", "private")
        assert main(["--root", str(shared), "status", "--json"]) == 0  # the owner's index
    finally:
        os.umask(old)
    (private.paths.manifest).chmod(0o600)
    for parent in (tmp_path, *tmp_path.parents):
        if parent != Path("/"):
            parent.chmod(parent.stat().st_mode | stat.S_IXOTH)  # let the teammate reach the root
    cache = tmp_path / "teammate-cache"
    cache.mkdir()
    os.chown(cache, nobody.pw_uid, nobody.pw_gid)
    as_nobody = [shutil.which("setpriv"), f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    out = subprocess.run([*as_nobody, sys.executable, "-m", "rlvr_vocab", "--root", str(shared), "status", "--json"],
                         capture_output=True, text=True, env={**os.environ, "RLVR_CACHE_DIR": str(cache),
                                                              "HOME": str(cache), "PATH": "/nonexistent"})
    assert out.returncode == 0, out.stderr
    rows = {r["run_name"]: r for r in json.loads(out.stdout)}
    assert rows["mine"]["state"] == "COMPLETED"
    assert rows["private"]["state"] == "UNREADABLE" and "permission denied" in rows["private"]["note"]


def test_diff_shows_config_and_code_differences(experiments_root, capsys, no_slurm):
    """Two runs' resolved configs and their code snapshots; an attempt by RUN@N; bad input in one line."""
    code_dirs = []
    for name, lr, line in (("a", 1e-6, "x = 1\n"), ("b", 3e-6, "x = 2\n")):
        m = make_run(experiments_root, "demo", name)
        m.data["attempts"][-1]["code"] = {"snapshot": f"hash{name}", "git_commit": "c0ffee", "git_dirty": True}
        m.save()
        (m.paths.run_dir / "config.yaml").write_text(f"run_name: {name}\ntraining:\n  learning_rate: {lr}\n")
        m.paths.configs.mkdir(exist_ok=True)
        (m.paths.attempt_config(1)).write_text(f"training:\n  learning_rate: {lr}\n")
        snapshot = experiments_root / "_code" / f"hash{name}" / "rlvr_vocab"
        snapshot.mkdir(parents=True)
        (snapshot / "train.py").write_text(line)
        (snapshot.parent / "code.json").write_text("{}")
        code_dirs.append(snapshot.parent)
    code, out = cli("diff", "a", "b", capsys=capsys)
    assert code == 0
    lines = out.out.splitlines()
    assert lines[:2] == ["config: 1 key differs:", "  training.learning_rate: 1e-06 -> 3e-06"]
    assert "  -x = 1" in lines and "  +x = 2" in lines and not any("code.json" in ln for ln in lines)
    code, out = cli("diff", "a@1", "a", capsys=capsys)
    assert code == 0 and out.out.splitlines() == ["config: 0 keys differ", "code: the same"]
    code, out = cli("diff", "a@3", "b", capsys=capsys)
    assert code == 2 and out.err == "error: a@3: has attempts 1 to 1\n"
    (experiments_root / "demo" / "b" / "configs" / "attempt-1.yaml").unlink()  # as an attempt that failed at start
    code, out = cli("diff", "a@1", "b@1", capsys=capsys)
    assert code == 0 and out.out.splitlines()[0] == "config: b@1 recorded none (it failed its checks at start)"


def test_gc_removes_only_snapshots_no_run_refers_to(experiments_root, capsys, no_slurm):
    """Snapshots an attempt ran or a pending submission will run stay, as does one taken a moment ago; an unreadable
    run file stops gc before anything is removed."""
    code_dir = experiments_root / "_code"
    for name in ("ran", "pending", "unused", "fresh"):
        (code_dir / name / "rlvr_vocab").mkdir(parents=True)
        if name != "fresh":
            os.utime(code_dir / name, (0, 0))
    m = make_run(experiments_root, "demo", "a")
    m.data["attempts"][-1]["code"] = {"snapshot": "ran"}
    m.save()
    make_run(experiments_root, "demo", "b")
    (experiments_root / "demo" / "b" / "submissions.json").write_text(json.dumps([{"job_id": "7", "code": "pending"}]))
    code, out = cli("gc", "--dry-run", capsys=capsys)
    assert code == 0 and out.out == f"would remove {code_dir / 'unused'}\n"
    manifest_b = experiments_root / "demo" / "b" / "run.json"
    good = manifest_b.read_text()
    manifest_b.write_text("{broken")
    code, out = cli("gc", capsys=capsys)
    assert code == 2 and "run.json: cannot be read" in out.err and (code_dir / "unused").is_dir()
    manifest_b.write_text(good)
    code, out = cli("gc", capsys=capsys)
    assert code == 0 and sorted(p.name for p in code_dir.iterdir()) == ["fresh", "pending", "ran"]


def test_resume_failed_picks_the_runs_that_failed_and_passes_over_live_ones():
    from types import SimpleNamespace as View

    from rlvr_vocab.launch.resume import select_targets

    runs = [View(run_name=n, state=s, recorded=r, job_id="9") for n, s, r in (
        ("failed", RunState.FAILED, RunState.FAILED), ("ending", RunState.RUNNING, RunState.FAILED),
        ("pending", RunState.PENDING, None), ("lost", RunState.LOST, RunState.RUNNING))]
    targets, skipped = select_targets(runs, failed=True)
    assert [t.run_name for t in targets] == ["failed", "lost"]
    assert skipped == ["skip ending: recorded FAILED but SLURM job 9 is still ending; resume it once "
                       "`rlvr-vocab status` shows it ended"]
    targets, skipped = select_targets(runs, failed=False)
    assert [t.run_name for t in targets] == ["failed", "lost"] and skipped[1] == "skip pending: PENDING as SLURM job 9"


def test_a_reader_that_leaves_early_ends_the_command_quietly(experiments_root, monkeypatch, capfd):
    """`rlvr-vocab show RUN | head`: the pipe closes under the command; no BrokenPipeError traceback."""
    from rlvr_vocab.cli import status

    def write_to_a_closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(status, "run", write_to_a_closed_pipe)
    saved = os.dup(1)
    try:
        assert main(["status"]) == 141
    finally:
        os.dup2(saved, 1)
    assert capfd.readouterr().err == ""


def test_a_live_run_of_a_teammate_is_theirs_to_cancel(experiments_root):
    from types import SimpleNamespace as View

    from rlvr_vocab.launch.resume import select_targets

    run_dir = experiments_root / "demo" / "theirs"
    run_dir.mkdir(parents=True)
    live = View(run_name="theirs", exp_name="demo", state=RunState.RUNNING, recorded=RunState.RUNNING, job_id="9",
                run_dir=run_dir)
    with pytest.raises(ConfigError, match=r"wait, or `rlvr-vocab cancel theirs` first"):
        select_targets([live], failed=False)
    os.chown(run_dir, 65534, 65534)  # nobody's (the tests run as root)
    with pytest.raises(ConfigError, match=r"it is nobody's run: wait for it, or ask nobody to cancel it"):
        select_targets([live], failed=False)


def test_a_running_run_waiting_for_its_service_says_so(experiments_root, capsys, no_slurm):
    from rlvr_vocab.job.services import record_on_attempt
    from rlvr_vocab.run.lease import RunLease

    m = make_run(experiments_root, "demo", "served", "running")
    lease = RunLease(RunPaths(experiments_root / "demo" / "served"))
    lease.acquire()  # the job's: the run is live
    try:
        record = record_on_attempt(m)
        record("vllm_server", {"state": "starting", "url": "http://n3:8000", "nodes": ["n3"],
                               "log": "services/vllm_server.log"})
        _, out = cli("status", "--json", capsys=capsys)
        [row] = json.loads(out.out)
        assert row["state"] == "RUNNING" and row["note"] == "service vllm_server starting"
        assert row["services"]["vllm_server"]["url"] == "http://n3:8000"
        record("vllm_server", {"state": "healthy"})
        _, out = cli("status", "--json", capsys=capsys)
        assert json.loads(out.out)[0]["note"] == ""
        _, out = cli("show", "served", capsys=capsys)
        assert "service vllm_server: healthy: http://n3:8000 on n3 (log services/vllm_server.log)" in out.out
    finally:
        lease.release()
