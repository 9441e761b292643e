"""Faults and bad input against the real local Slurm: no training progress lost beyond one
checkpoint interval, no run recorded wrongly, no duplicate W&B run, and a clear error for every
bad input before anything is queued.

Every job here runs with WANDB_API_KEY and HF_TOKEN in its environment; each test that runs
jobs ends by checking that neither value reached any file under the experiments root.
Disruptive steps (a node set down, daemons stopped) restore the cluster in `finally`.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    DEMO,
    DEMO_MODEL,
    REPO,
    checkout_copy,
    edit_train,
    manifest,
    release,
    run_cli,
    run_module,
    run_train,
    sacct_states,
    wait_for,
)

from rlvr_vocab.launch.resume import command
from rlvr_vocab.registry import Registry
from rlvr_vocab.run.checkpoints import COMPLETE_MARKER

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SECRETS = {"WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567", "HF_TOKEN": "hf_reliabilityTestTokenXyZ0987"}
# Typed on the command line: a nested key that reads a secret from the environment, or a literal one.
LITERAL_SECRET = "hf_literalOverrideToken0123456789"
SECRET_FROM_ENV = ["+model.model_kwargs.token=${oc.env:HF_TOKEN}"]
SECRET_LITERAL = [f"+model.model_kwargs.token={LITERAL_SECRET}"]
# Tiny jobs: the demo, shortened, without the held-out evaluations.
FAST = [*DEMO, "eval.enabled=false"]
SLURM_CPU = ["--multirun", "hydra/launcher=slurm_cpu"]


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def jobs():
    """SLURM jobs a test started: cancelled at its end, whatever happened."""
    started: list[str] = []
    yield started
    if started:
        subprocess.run(["scancel", *{j.split("_")[0] for j in started}], capture_output=True)


def cli(*args: str) -> tuple[int, str, str]:
    """`rlvr-vocab ARGS` in this process: (exit code, stdout, stderr)."""
    done = run_cli(*args)
    return done.returncode, done.stdout, done.stderr


def train(*args: str) -> tuple[int, str, str]:
    """`python -m rlvr_vocab.train ARGS` in this process: (exit code, stdout, stderr)."""
    done = run_train(*args)
    return done.returncode, done.stdout, done.stderr


def submit(run_dir: Path, jobs: list[str], *args: str) -> str:
    code, out, err = train(*SLURM_CPU, *args)
    assert code == 0 and "submitted sweep" in out, out + err
    job = submissions(run_dir)[-1]["job_id"]
    jobs.append(job)
    return job


def submissions(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "submissions.json").read_text())


def row(name: str) -> dict:
    code, out, err = cli("status", "--json")
    assert code == 0, err
    rows = [r for r in json.loads(out) if r["run_name"] == name]
    return rows[0] if rows else {"state": "ABSENT"}


def state_of(name: str) -> str:
    return row(name)["state"]


def states_until(name: str, wanted: str, timeout: float) -> set[str]:
    """Every state `status` shows for the run until it shows `wanted` (accounting may lag a little)."""
    seen: set[str] = set()
    wait_for(lambda: seen.add(state_of(name)) or wanted in seen, timeout, f"{name} to be {wanted}", interval=1.0)
    return seen


def slurm_runs(job: str) -> list[str]:
    """States of every run of a job, requeues included (sacct -D), oldest first."""
    out = subprocess.run(["sacct", "-n", "-X", "-D", "-P", "-o", "State", "-j", job],
                         capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def queue_state(job: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def wandb_ids(run_dir: Path) -> set[str]:
    return {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}


def assert_no_secrets(root: Path) -> None:
    """No secret value in any file under the root: run dirs, submitit's job folders and logs, the registry."""
    scripts = list(root.rglob("*_submission.sh"))
    assert scripts, "no submitit job folder under the experiments root"
    # The jobs inherited the submitting environment (no --export), secrets included.
    assert not any("--export" in s.read_text() for s in scripts)
    files = [p for p in root.rglob("*") if p.is_file()]
    values = {**SECRETS, "the literal override": LITERAL_SECRET}
    leaks = [f"{p} holds {name}" for p in files for name, value in values.items() if value.encode() in p.read_bytes()]
    assert not leaks, leaks


def test_timeout_requeues_resumes_then_stops_when_its_budget_is_used_up(demo_cache, experiments_root, jobs,
                                                                         step_gate):
    """Scenario 1 (and the resume refusals of scenario 9): the lead signal before the time limit."""
    run_dir = experiments_root / "demo" / "timed"
    step_gate.hold_at(5)
    # A limit <= 10 min makes submitit count the signal as a timeout; max_requeues=1: one requeue.
    job = submit(run_dir, jobs, "run_name=timed", "training.max_steps=40", "training.save_steps=5",
                 "hydra.launcher.timeout_min=10", "max_requeues=1", "logging=wandb", "logging.mode=offline", *FAST,
                 *SECRET_FROM_ENV)
    assert step_gate.wait_held() == "5"
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # the lead signal, as Slurm sends it
    step_gate.hold_at(8)  # released from step 5 (where it stops); the next attempt holds at step 8
    first = wait_for(lambda: manifest(run_dir).get("status") == "REQUEUED" and manifest(run_dir), 120, "a requeue")
    stop1 = first["last_step"]
    assert stop1 == 5 and first["attempts"][0]["end_state"] == "TIMEOUT"
    assert first["last_checkpoint"] == "checkpoints/checkpoint-5", "checkpointed at the step it stopped"
    assert state_of("timed") == "REQUEUED"

    release(job)
    assert step_gate.wait_held() == "8"
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # the second timeout uses the budget up
    step_gate.release()
    second = wait_for(lambda: manifest(run_dir).get("status") == "TIMEOUT" and manifest(run_dir), 180,
                      "the second timeout")
    stop2 = second["last_step"]
    attempt = second["attempts"][1]
    assert attempt["end_state"] == "TIMEOUT" and attempt["resumed_from_step"] == stop1 and stop2 == 8
    assert attempt["slurm_restart_count"] == 1
    assert "not requeued" in second["error"] and "rlvr-vocab resume" in second["error"]
    assert (run_dir / second["last_checkpoint"] / COMPLETE_MARKER).exists(), "the checkpoint is kept"
    wait_for(lambda: not subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip(),
             120, "the job to leave the queue")
    timed = row("timed")
    assert timed["state"] == "TIMEOUT" and "not requeued" in timed["note"]

    # Resuming with what the checkpoint cannot take is refused before anything is queued (scenario 9):
    # through the real command line, and in this process with the exact command `resume` runs.
    changed = subprocess.Popen([sys.executable, "-m", "rlvr_vocab", "resume", "timed", "model.embedded.hidden_size=32"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    target = next(r for r in Registry(experiments_root).runs() if r.run_name == "timed")
    refusals = {
        "world size": ["hydra.launcher.tasks_per_node=2"],
        "training.save_only_model": ["training.save_only_model=true"],
    }
    for expected, extra in refusals.items():
        code, _, err = train(*command(target, extra, force=False, launcher=None)[3:])
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    code, out, err = train(*command(target, ["model.embedded.hidden_size=32", "dry_run=true"], force=True,
                                    launcher=None)[3:])
    assert code == 0 and "nothing submitted" in out, err  # --force lets it through
    out, err = changed.communicate(timeout=300)
    assert changed.returncode == 2, out + err
    assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err
    assert "model.embedded.hidden_size: 64 -> 32" in err and "force_resume=true" in err
    (run_dir / "checkpoints").rename(run_dir / "moved-away")
    code, _, err = train(*command(target, [], force=False, launcher=None)[3:])
    assert code == 2 and "does not exist" in err and "force_resume" in err, err  # not a silent restart at step 0
    (run_dir / "moved-away").rename(run_dir / "checkpoints")
    assert len(submissions(run_dir)) == 1, "none of them submitted anything"

    resumed = subprocess.run([sys.executable, "-m", "rlvr_vocab", "resume", "timed"],
                             capture_output=True, text=True, cwd=REPO)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    jobs.append(submissions(run_dir)[-1]["job_id"])
    final = wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED" and manifest(run_dir), 600,
                     "the resumed run to complete")
    assert final["last_step"] == 40
    assert [a["end_state"] for a in final["attempts"]] == ["TIMEOUT", "TIMEOUT", "COMPLETED"]
    assert final["attempts"][2]["resumed_from_step"] == stop2
    assert wandb_ids(run_dir) == {final["wandb_id"]}, "one W&B run across three attempts"
    assert_no_secrets(experiments_root)


def test_preemption_by_a_higher_priority_partition(demo_cache, experiments_root, jobs, step_gate, tmp_path):
    """Scenario 2: a job on partition `high` needs the whole node; ours is preempted (USR2, then SIGTERM). Submitted
    from a checkout that moves on while the job waits to be requeued: the requeue runs the code submitted."""
    run_dir = experiments_root / "demo" / "bumped"
    step_gate.hold_at(6)  # checkpoint-5 written; the preemption cannot race the end of the run
    checkout = checkout_copy(tmp_path / "checkout")
    submitted = run_module(*SLURM_CPU, "run_name=bumped", "training.max_steps=8", "training.save_steps=5",
                           "logging=wandb", "logging.mode=offline", *FAST, *SECRET_LITERAL, cwd=checkout)
    assert submitted.returncode == 0 and "submitted sweep" in submitted.stdout, submitted.stderr[-2000:]
    job = submissions(run_dir)[-1]["job_id"]
    jobs.append(job)
    step_gate.wait_held()
    blocker = subprocess.run(["sbatch", "--parsable", "-p", "high", "--exclusive", "--mem=100M", "-J", "rlvr-blocker",
                              "-o", "/dev/null", "--wrap", "sleep 2"], capture_output=True, text=True, check=True)
    jobs.append(blocker.stdout.strip())
    wait_for(lambda: "PREEMPTED" in slurm_runs(job) and queue_state(job) == "PENDING", 120,
             "Slurm to preempt and requeue the job")
    wait_for(lambda: sacct_states(blocker.stdout.strip()) == ["COMPLETED"], 120, "the blocker to finish")
    at_preemption = manifest(run_dir)
    newest = at_preemption["checkpoints"][-1]["step"]
    assert states_until("bumped", "REQUEUED", 60) <= {"PREEMPTED", "REQUEUED"}, "never FAILED"
    edit_train(checkout, "EDITED BEFORE THE REQUEUE")  # the checkout moves on while the job waits

    step_gate.release()
    release(job)
    final = wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED" and manifest(run_dir), 600,
                     "the requeued job to complete")
    first, second = final["attempts"]
    assert first["end_state"] == "PREEMPTED", first
    assert second["resumed_from_step"] == newest == 5 and second["slurm_restart_count"] == 1
    assert second["code"] == first["code"] and first["code"]["snapshot"], "the requeue runs the submitted snapshot"
    assert "EDITED BEFORE THE REQUEUE" not in Path(submissions(run_dir)[-1]["stderr"]).read_text()
    assert final["last_step"] == 8 and "resumed from checkpoint-5" in (run_dir / "train.log").read_text()
    wait_for(lambda: slurm_runs(job) == ["PREEMPTED", "COMPLETED"], 60, "Slurm to record both runs of the job")
    assert wandb_ids(run_dir) == {final["wandb_id"]}, "one W&B run across the preemption"
    assert_no_secrets(experiments_root)


def test_killed_mid_checkpoint_and_duplicate_submissions(demo_cache, experiments_root, jobs, step_gate):
    """Scenarios 3 and 8: SIGKILL while a checkpoint is written; a second job for a live run is refused."""
    run_dir = experiments_root / "demo" / "killed"
    args = ["run_name=killed", "training.max_steps=40", "training.save_steps=2", "training.save_total_limit=1", *FAST]
    job = submit(run_dir, jobs, *args, "+hydra.launcher.additional_parameters.hold=true")

    # Pending: resume and re-launch are refused, nothing is submitted twice.
    assert state_of("killed") == "PENDING"
    code, _, err = cli("resume", "killed")
    assert code == 2 and "is PENDING" in err and "two jobs" in err
    code, _, err = train(*SLURM_CPU, *args)  # the same named run submitted again: refused as a resume is
    assert code == 2 and f"is pending as SLURM job {job}" in err and len(err.strip().splitlines()) == 1, err
    assert len(submissions(run_dir)) == 1

    step_gate.hold_at(29)  # checkpoint-28 written, checkpoint-30 not begun
    subprocess.run(["scontrol", "release", job.split("_")[0]], check=True)
    step_gate.wait_held()
    # checkpoint-30's last file is a FIFO nobody reads: the job blocks while saving it, deterministically.
    blocked = run_dir / "checkpoints" / "checkpoint-30"
    blocked.mkdir()
    os.mkfifo(blocked / "trainer_state.json")
    step_gate.release()
    wait_for(lambda: (blocked / "optimizer.pt").exists(), 300, "the job to be writing checkpoint-30")
    complete = [p.name for p in (run_dir / "checkpoints").glob("checkpoint-*") if (p / COMPLETE_MARKER).exists()]
    assert complete == ["checkpoint-28"], "rotation (keep 1) kept the newest complete one while 30 is incomplete"

    # Running: resume, re-launch and a local run on the same run dir are all refused.
    running = row("killed")
    assert running["state"] == "RUNNING" and running["last_checkpoint"] == "checkpoint-28", "not the one in writing"
    code, _, err = cli("resume", "killed")
    assert code == 2 and "is RUNNING" in err
    code, _, err = train(*SLURM_CPU, *args)
    assert code == 2 and f"is running as SLURM job {job}" in err, err
    before = (run_dir / "run.json").read_bytes()
    code, _, err = train(*args)
    assert code == 2 and "in use by pid" in err and f"SLURM job {job}" in err, err
    assert len(err.strip().splitlines()) == 1 and (run_dir / "run.json").read_bytes() == before

    os.kill(manifest(run_dir)["attempts"][-1]["pid"], signal.SIGKILL)
    wait_for(lambda: sacct_states(job) == ["FAILED"], 120, "Slurm to record the killed job")
    killed = row("killed")
    assert killed["state"] == "FAILED" and "before it could record" in killed["note"]
    _, shown, _ = cli("show", "killed")  # one source of truth: the attempt ended as `status` says
    attempt_line = next(line for line in shown.splitlines() if line.strip().startswith("#1 "))
    assert "FAILED" in attempt_line and "running" not in attempt_line
    # The dead job's lease stays behind; make its holder look like another node's, where no pid can be
    # checked and its heartbeat is fresh: only Slurm can tell that it is dead.
    [holder] = (run_dir / ".lease").glob("gen-*.json")
    holder.write_text(json.dumps({**json.loads(holder.read_text()), "host": "another-node", "heartbeat": time.time()}))

    resumed = subprocess.run([sys.executable, "-m", "rlvr_vocab", "resume", "killed"], capture_output=True, text=True,
                             cwd=REPO)
    assert resumed.returncode == 0 and len(submissions(run_dir)) == 2, resumed.stdout + resumed.stderr
    assert "resumes from checkpoint-28" in resumed.stdout, "the newest complete one, not the newest"
    jobs.append(submissions(run_dir)[-1]["job_id"])
    final = wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED" and manifest(run_dir), 600,
                     "the resumed run to complete")
    assert final["last_step"] == 40 and final["attempts"][1]["resumed_from_step"] == 28
    assert final["attempts"][0]["end_state"] == "FAILED" and "recorded no end" in final["attempts"][0]["reason"]
    skipped = final["skipped_checkpoints"]
    assert [s["checkpoint"] for s in skipped] == ["checkpoint-30"] and "marker" in skipped[0]["reason"]
    assert Path(skipped[0]["moved_to"]).exists(), "set aside, not deleted"
    _, logs, _ = cli("logs", "killed")
    assert f"taking over the run dir's lease: its SLURM job {job} is" in logs
    _, table, _ = cli("status")
    assert "skipped incomplete checkpoint-30" in table
    _, shown, _ = cli("show", "killed")
    assert "skipped checkpoint-30: no completion marker" in shown
    assert_no_secrets(experiments_root)


def test_python_exception_fails_without_requeue(demo_cache, experiments_root, jobs, tmp_path):
    """Scenario 5: an exception in the job (a data file that is not JSON lines)."""
    data = tmp_path / "broken.jsonl"
    data.write_text('{"question": "1+1", "answer": "2"}\n{"question": 2+2, oops\n' * 20)
    run_dir = experiments_root / "demo" / "broken"
    job = submit(run_dir, jobs, "run_name=broken", f"dataset.path={data}", "dataset.embedded=null",
                 "dataset.test_split=null", "dataset.test_size=5", "eval.enabled=false", *DEMO_MODEL)
    m = wait_for(lambda: manifest(run_dir).get("status") == "FAILED" and manifest(run_dir), 600, "the job to fail")
    wait_for(lambda: sacct_states(job) == ["FAILED"], 60, "sacct to show FAILED")
    time.sleep(5)
    assert slurm_runs(job) == ["FAILED"] and len(manifest(run_dir)["attempts"]) == 1, "not requeued"
    broken = row("broken")
    assert broken["state"] == "FAILED" and broken["note"] == m["error"] and m["error"].split(":")[0] in broken["note"]
    _, table, _ = cli("status")
    assert m["error"][:60] in table
    code, logs, _ = cli("logs", "broken")
    assert code == 0 and "Traceback (most recent call last)" in logs and m["error"].split(":")[0] in logs
    assert_no_secrets(experiments_root)


def test_status_while_slurm_daemons_are_down(demo_cache, experiments_root, jobs):
    """Scenario 6: slurmdbd, then slurmctld, stopped under `status`: UNKNOWN (stale) with the reason."""
    run_dir = experiments_root / "demo" / "waiting"
    job = submit(run_dir, jobs, "run_name=waiting", "+hydra.launcher.additional_parameters.hold=true", *FAST)
    wait_for(lambda: sacct_states(job) == ["PENDING"], 60, "the job in accounting")
    assert state_of("waiting") == "PENDING"
    cluster = ["bash", str(REPO / "slurm" / "local_cluster.sh")]
    try:
        for daemon, reason in (("slurmdbd", "Problem talking to the database"), ("slurmctld", "is DOWN")):
            subprocess.run([*cluster, "stop", daemon], check=True, capture_output=True)
            down = row("waiting")
            assert down["state"] == "UNKNOWN" and down["stale"] and reason in down["note"], down
            assert "last known PENDING" in down["note"] or "last known SUBMITTED" in down["note"]
            _, table, _ = cli("status")
            assert "UNKNOWN (stale)" in table and reason in table
            subprocess.run([*cluster, "start"], check=True, capture_output=True, timeout=300)
            wait_for(lambda: state_of("waiting") == "PENDING", 60, f"PENDING again once {daemon} is back")
    finally:
        subprocess.run([*cluster, "start"], capture_output=True, timeout=300)


WRITER = """
import os, signal, sys
from pathlib import Path
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import Manifest
from rlvr_vocab.core.states import Event, RunState

task = int(os.environ["SLURM_ARRAY_TASK_ID"])
name = f"w{task:03d}"
paths = RunPaths(Path(sys.argv[1]) / "writers" / name)
paths.run_dir.mkdir(parents=True, exist_ok=True)
m = Manifest.new(paths, "writers", name, "0" * 16)
m.start_attempt(world_size=1)
for step in range(1, 6):
    m.update(last_step=step, metrics={"blob": "x" * 20000})
if task % 10 == 9:  # killed mid-write: its new run.json is written but not yet in place
    os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
m.end_attempt(Event.FINISH, RunState.COMPLETED)
"""


def test_a_hundred_writers_while_status_loops(slurm_cluster, experiments_root, jobs, tmp_path):
    """Scenario 7: a 100-task array writes manifests while `status` reads them in a loop."""
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    experiments_root.mkdir(parents=True)
    array = subprocess.run(["sbatch", "--parsable", "--array=0-99", "-c", "1", "--mem=200M", "-J", "rlvr-writers",
                            "-o", str(tmp_path / "%A_%a.out"), "--wrap",
                            f"{sys.executable} {writer} {experiments_root}"],
                           capture_output=True, text=True, check=True).stdout.strip()
    jobs.append(array)
    loops = 0
    while subprocess.run(["squeue", "-h", "-j", array], capture_output=True, text=True).stdout.strip():
        code, out, err = cli("status", "--json", "--exp", "writers")
        assert code == 0, err
        json.loads(out)
        for path in experiments_root.glob("writers/*/run.json"):
            json.loads(path.read_text())  # never a partial file
        loops += 1
        time.sleep(0.5)  # the loop shares the 2 CPUs with the writers
    assert loops >= 3
    wait_for(lambda: len(sacct_states(array)) == 100 and all(s in ("COMPLETED", "FAILED") for s in sacct_states(array)),
             120, "every task in accounting")
    runs = {r["run_name"]: r for r in json.loads(cli("status", "--json", "--exp", "writers")[1])}
    assert len(runs) == 100, "nothing lost"
    killed = {f"w{t:03d}" for t in range(9, 100, 10)}
    assert {n for n, r in runs.items() if r["state"] == "COMPLETED"} == set(runs) - killed
    for name in killed:
        previous = manifest(experiments_root / "writers" / name)
        assert previous["status"] == "RUNNING" and previous["last_step"] == 5, "the previous manifest, intact"
        assert runs[name]["state"] == "FAILED" and "before it could record" in runs[name]["note"]


BAD_INPUT = {
    "mistyped key": (["training.learnin_rate=3e-6"], "training.learnin_rate", "training.learning_rate"),
    "mistyped launcher key": (["hydra.launcher.timeout_mn=30"], "hydra.launcher.timeout_mn", "timeout_min"),
    "wrong type": (["seed=abc"], "seed", "abc"),
    "wrong launcher type": (["hydra.launcher.timeout_min=soon"], "hydra.launcher.timeout_min", "Integer"),
    "time limit under the signal lead plus a save": (["hydra.launcher.timeout_min=1"], "hydra.launcher.timeout_min",
                                                     "signal_delay_s=60"),
    "unknown partition": (["hydra.launcher.partition=nope"], "hydra.launcher", "invalid partition specified: nope"),
    "unknown account": (["hydra.launcher.account=nope"], "hydra.launcher", "Invalid account"),
    "more GPUs than the partition has": (["hydra.launcher.gpus_per_node=2"], "hydra.launcher.gpus_per_node",
                                         "at most 0"),
    "explicit checkpoint to resume from": (["+training.resume_from_checkpoint=/no/such/checkpoint-5"],
                                           "training.resume_from_checkpoint", "resume automatically"),
    "refused by trl.GRPOConfig": (["+training.auto_find_batch_size=true"], "training",
                                  "trl.GRPOConfig rejected it: auto_find_batch_size"),
    "run name with a path separator": (["run_name=a/b"], "run_name", "'/'"),
    "experiment name with '..'": (["exp_name=../up"], "exp_name", "path separators"),
    "run name with a W&B-forbidden character": (["run_name='a#b'"], "run_name", "'#'"),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_is_refused_before_sbatch(case, slurm_cluster, experiments_root):
    """Scenario 9: one line, exit 2, nothing queued or written (resume refusals: the timeout test)."""
    overrides, key, hint = BAD_INPUT[case]
    code, _, err = train(*SLURM_CPU, *overrides)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: {key}") and hint in lines[0] and "Traceback" not in err, lines[0]
    assert not experiments_root.exists(), "nothing written, nothing submitted"


def test_bad_input_from_the_shell_names_slurms_own_words(slurm_cluster, experiments_root):
    result = run_train(*SLURM_CPU, "hydra.launcher.partition=nope", "hydra.launcher.account=nope")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Slurm refuses the job" in result.stderr and "nope" in result.stderr
    assert not experiments_root.exists()
