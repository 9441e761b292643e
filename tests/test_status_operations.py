"""What `status` shows and does for operations: a run whose heartbeat stopped is STALLED and notified once, and
`--wide` shows each run dir's disk use."""

import json
import time

from test_cli import cli, make_run, no_slurm  # noqa: F401 - no_slurm is a fixture
from test_notify import ENV, webhook  # noqa: F401 - webhook is a fixture

from rlvr_vocab.ops.notify import sent_notifications, wait_for_pending
from rlvr_vocab.run.layout import NOTIFIED_DIR, RunPaths
from rlvr_vocab.run.lease import RunLease


def _beat(run_dir, idle_s: float, step: int = 3, phase: str = "reward") -> None:
    RunPaths(run_dir).heartbeat.write_text(json.dumps({"time": time.time() - idle_s, "step": step, "phase": phase,
                                                       "stall_after_s": 60, "pid": 1}))


def test_a_run_without_progress_is_stalled_and_notified_once(experiments_root, capsys, no_slurm, webhook):  # noqa: F811
    # Local runs whose lease this live process holds, so they are RUNNING; one heartbeat stopped 10 minutes ago.
    m = make_run(experiments_root, "demo", "stuck", "running")
    m.paths.config.write_text(f"notify:\n  events: [stalled]\n  webhook_env: {ENV}\n")
    _beat(m.paths.run_dir, idle_s=600)
    moving = make_run(experiments_root, "demo", "moving", "running")
    _beat(moving.paths.run_dir, idle_s=5)
    quiet = make_run(experiments_root, "demo", "quiet", "running")  # stalled too, but notifies failures only
    quiet.paths.config.write_text(f"notify:\n  events: [failed]\n  webhook_env: {ENV}\n")
    _beat(quiet.paths.run_dir, idle_s=600)
    for run in (m, moving, quiet):
        RunLease(run.paths).acquire()

    for _ in range(2):  # the same `status` twice: one notification
        code, out = cli("status", "--json", capsys=capsys)
        wait_for_pending(10)
        rows = {r["run_name"]: r for r in json.loads(out.out)}
        assert code == 0 and rows["stuck"]["state"] == "STALLED" and rows["moving"]["state"] == "RUNNING"
        assert rows["stuck"]["note"] == "no progress for 10 min in phase reward (step 3)"
    assert len(webhook.requests) == 1 and "STALLED" in json.dumps(webhook.requests[0])
    assert [n["event"] for n in sent_notifications(m.paths.run_dir)] == ["stalled"]
    assert sent_notifications(moving.paths.run_dir) == []
    # Weighed once: a marker says it was not to be sent, so later refreshes do not read the run's config again.
    assert sent_notifications(quiet.paths.run_dir) == [] and (quiet.paths.run_dir / NOTIFIED_DIR / "1-stalled").exists()

    _, out = cli("status", capsys=capsys)  # the table says so too
    assert "STALLED" in out.out and "no progress for 10 min" in out.out


def test_wide_status_shows_disk_use(experiments_root, capsys, no_slurm):  # noqa: F811
    m = make_run(experiments_root, "demo", "a", "completed")
    m.data["disk_bytes"] = {"total": 1_500_000_000}
    m.save()
    make_run(experiments_root, "demo", "b", "completed")
    _, out = cli("status", "--wide", capsys=capsys)
    header, *rows = out.out.splitlines()
    assert header.split()[-1] == "disk"
    assert rows[0].split()[-2:] == ["1.5", "GB"] and rows[1].split()[-1] == "-"
    _, out = cli("status", capsys=capsys)
    assert "disk" not in out.out.splitlines()[0]


def test_a_suspended_job_is_not_stalled(experiments_root):
    """`scontrol suspend` stops the job's progress by design: its run stays RUNNING, said to be suspended."""
    from rlvr_vocab.registry.run_view import RunView
    from rlvr_vocab.registry.slurm_view import SlurmView
    from rlvr_vocab.slurm.client import SacctRow

    m = make_run(experiments_root, "demo", "paused", "running", job="77")
    _beat(m.paths.run_dir, idle_s=3600)
    for state, shown in (("SUSPENDED", "RUNNING"), ("RUNNING", "STALLED")):
        view = RunView(m.paths.run_dir, m.data, [])
        view.resolve(SlurmView({"77": SacctRow("77", state, "0:0", "vm", time.time() - 4000, None)}))
        assert view.state == shown, state
    view = RunView(m.paths.run_dir, m.data, [])
    view.resolve(SlurmView({"77": SacctRow("77", "SUSPENDED", "0:0", "vm", time.time() - 4000, None)}))
    assert view.note == "job 77 is suspended"


def test_a_stalled_rows_step_is_its_heartbeats(experiments_root, capsys, no_slurm):  # noqa: F811
    """The manifest's step moves at logging steps; the heartbeat's at every step: the row says the later one."""
    m = make_run(experiments_root, "demo", "ahead", "running", step=5)
    _beat(m.paths.run_dir, idle_s=600, step=9)
    RunLease(m.paths).acquire()
    code, out = cli("status", "--json", capsys=capsys)
    (row,) = json.loads(out.out)
    assert code == 0 and row["state"] == "STALLED" and row["last_step"] == 9 and "(step 9)" in row["note"]
