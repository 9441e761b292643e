"""The retry policy and the watchdog on the real local Slurm: each failure class provoked, retried or not."""

import json
import subprocess

import pytest
from conftest import DEMO, manifest, release, run_module, run_train, sacct_states, wait_for
from test_notify import Webhook

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# Short backoffs keep the suite quick; the waits are still taken (and beat the watchdog while they last).
SUBMIT = ["--multirun", "hydra/launcher=slurm_cpu", "training.max_steps=5", "training.save_steps=1",
          "eval.enabled=false", "retry.stall.backoff_s=30", "retry.transient.backoff_s=5", *DEMO]
NOTIFY = "notify.events=[failed,stalled,completed,requeued]"


@pytest.fixture
def hook():
    """A webhook on 127.0.0.1 that the jobs (on this machine) post to; its URL reaches them in the environment."""
    webhook = Webhook()
    yield webhook
    webhook.close()


def notified(hook: Webhook, run: str) -> list[str]:
    """The events posted for `run`, in order ("run demo/stuck: STALLED (attempt 1): ...")."""
    texts = [r["body"]["text"] for r in hook.requests]
    return [t.split(": ")[1].split()[0] for t in texts if t.startswith(f"run demo/{run}:")]


def submitted(run_dir) -> str:
    return json.loads((run_dir / "submissions.json").read_text())[-1]["job_id"]


def cli(*args: str):
    return run_module(*args, module="rlvr_vocab")


def test_a_stall_is_dumped_retried_once_and_the_run_completes(demo_cache, experiments_root, hook):
    """A hung reward (the watchdog ends the job) and, beside it, a frozen process (`kill -STOP` stops the watchdog
    too: the job's supervisor ends it): both recorded STALLED, requeued once, completed."""
    run_dir, frozen_dir = experiments_root / "demo" / "stuck", experiments_root / "demo" / "frozen"
    watchdog = ["watchdog.stall_after_s=6", "watchdog.kill_after_s=25", "watchdog.check_every_s=1"]
    submit = run_train(*SUBMIT, NOTIFY, "run_name=stuck", *watchdog,
                       env={"RLVR_INJECT_FAULT": "hang:3", "RLVR_NOTIFY_WEBHOOK": hook.url})
    assert submit.returncode == 0, submit.stderr[-2000:]
    frozen = run_train(*SUBMIT, NOTIFY, "run_name=frozen", *watchdog,
                       env={"RLVR_INJECT_FAULT": "freeze:3", "RLVR_NOTIFY_WEBHOOK": hook.url})
    assert frozen.returncode == 0, frozen.stderr[-2000:]
    job, frozen_job = submitted(run_dir), submitted(frozen_dir)
    row = wait_for(lambda: next((r for r in json.loads(cli("status", "--json").stdout)
                                 if r["run_name"] == "stuck" and r["state"] == "STALLED"), None), 300,
                   "status to show the run STALLED")
    assert "in phase reward" in row["note"]
    wait_for(lambda: manifest(run_dir).get("status") == "REQUEUED", 300, "the watchdog to end and requeue the job")
    log = (run_dir / "train.log").read_text()
    assert "injected_blocking_reward" in log, "the stack dump names the blocking function"
    release(job)
    final = wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED" and manifest(run_dir), 600,
                     "the retried run to complete")
    first, second = final["attempts"]
    assert first["end_state"] == "STALLED" and first["failure_class"] == "stall"
    assert first["retry"] == "requeued: stall 1 of 1" and second["resumed_from_step"] == 2
    assert "backing off" in (run_dir / "train.log").read_text()  # longer than kill_after_s, and not a stall
    shown = cli("show", "stuck").stdout
    assert "stall: requeued: stall 1 of 1" in shown
    wait_for(lambda: notified(hook, "stuck") == ["STALLED", "COMPLETED"], 60, "the job's notifications")
    # Accounting counts both runs of the requeued job (one Slurm job id, two runs in sacct).
    used = wait_for(lambda: next((r for r in json.loads(cli("usage", "--json").stdout)["runs"]
                                  if r["run_name"] == "stuck" and r["slurm_runs"] == 2), None), 120, "sacct's two runs")
    assert used["attempts"] == 2 and used["slurm_jobs"] == [job] and used["cpu_h"] > 0
    assert all(hook.url not in p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file())

    # The frozen one: ended by its supervisor well before Slurm's time limit, requeued, resumed.
    wait_for(lambda: manifest(frozen_dir).get("status") in ("REQUEUED", "COMPLETED"), 300, "the supervisor's requeue")
    release(frozen_job)
    final = wait_for(lambda: manifest(frozen_dir).get("status") == "COMPLETED" and manifest(frozen_dir), 600,
                     "the frozen run's retry to complete")
    first, second = final["attempts"]
    assert first["end_state"] == "STALLED" and "in phase reward (step 3)" in first["reason"], first
    assert "T (stopped)" in first["reason"] and "supervisor" in first["reason"]
    assert first["retry"] == "requeued: stall 1 of 1" and second["resumed_from_step"] == 2
    wait_for(lambda: notified(hook, "frozen") == ["STALLED", "COMPLETED"], 60, "the frozen run's notifications")


def test_a_transient_error_is_retried_and_a_bug_is_not(demo_cache, experiments_root, hook):
    flaky, buggy = experiments_root / "demo" / "flaky", experiments_root / "demo" / "buggy"
    url = {"RLVR_NOTIFY_WEBHOOK": hook.url}
    # Retention on the way: the last checkpoint kept, and every 2nd step as a weights-only milestone.
    flaky_job = run_train(*SUBMIT, NOTIFY, "run_name=flaky", "training.save_total_limit=1",
                           "retention.milestone_every_steps=2", env={"RLVR_INJECT_FAULT": "transient:3", **url})
    assert flaky_job.returncode == 0, flaky_job.stderr[-2000:]
    assert run_train(*SUBMIT, NOTIFY, "run_name=buggy", env={"RLVR_INJECT_FAULT": "bug:3", **url}).returncode == 0
    wait_for(lambda: manifest(flaky).get("status") == "REQUEUED", 300, "the transient error to requeue the job")
    release(submitted(flaky))
    final = wait_for(lambda: manifest(flaky).get("status") == "COMPLETED" and manifest(flaky), 600,
                     "the retried run to complete")
    assert [(a["end_state"], a.get("failure_class")) for a in final["attempts"]] == [
        ("FAILED", "transient"), ("COMPLETED", None)]
    assert final["attempts"][0]["retry"] == "requeued: transient 1 of 2"
    assert sorted(p.name for p in (flaky / "checkpoints").glob("checkpoint-*")) == ["checkpoint-5"]
    milestones = sorted((flaky / "milestones").glob("checkpoint-*"))
    assert [p.name for p in milestones] == ["checkpoint-2", "checkpoint-4"]
    assert all(not list(p.glob("optimizer*")) and list(p.glob("*.safetensors")) for p in milestones)
    assert "  disk " in cli("show", "flaky").stdout

    failed = wait_for(lambda: manifest(buggy).get("status") == "FAILED" and manifest(buggy), 300, "the bug")
    wait_for(lambda: sacct_states(submitted(buggy)) == ["FAILED"], 120, "Slurm to record the failure")
    assert len(failed["attempts"]) == 1 and failed["attempts"][0]["failure_class"] == "code_error"
    assert "never retried" in failed["attempts"][0]["retry"]
    assert "code error: not requeued" in cli("show", "buggy").stdout
    wait_for(lambda: notified(hook, "flaky") == ["REQUEUED", "COMPLETED"] and notified(hook, "buggy") == ["FAILED"],
             60, "one notification per event")


def test_a_node_failure_past_its_budget_is_not_retried(demo_cache, experiments_root, step_gate):
    run_dir = experiments_root / "demo" / "fragile"
    step_gate.hold_at(2)
    assert run_train(*SUBMIT, "run_name=fragile", "retry.node_fail.budget=0").returncode == 0
    job = submitted(run_dir)
    step_gate.wait_held()
    node = subprocess.run(["sinfo", "-h", "-N", "-p", "debug", "-o", "%N"], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    try:
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=down", "reason=rlvr-retry-test"], check=True)
        wait_for(lambda: subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True,
                                        text=True).stdout.strip() == "PENDING", 120, "Slurm to requeue the job")
    finally:
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True)
        wait_for(lambda: subprocess.run(["sinfo", "-h", "-n", node, "-o", "%t"], capture_output=True,
                                        text=True).stdout.strip() in ("idle", "mix", "alloc"), 120, "the node back")
    step_gate.release()
    wait_for(lambda: subprocess.run(["pgrep", "-f", f"slurmstepd: \\[{job}\\."]).returncode == 1, 60,
             "the old job step to exit")
    release(job)
    final = wait_for(lambda: manifest(run_dir).get("status") == "FAILED" and manifest(run_dir), 600,
                     "the next attempt to refuse to train")
    first, second = final["attempts"]
    assert first["end_state"] == "NODE_FAIL" and first["retry"].startswith("not requeued: a node fail is never")
    assert second["end_state"] == "FAILED" and "retry.node_fail" in final["error"]
