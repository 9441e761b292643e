"""The CLI steering real jobs on the local Slurm: states, cancel, resume, refusals, concurrent resumes."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import DEMO, DEMO_MODEL, REPO, manifest, run_module, run_train, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def cli(*args: str):
    return run_module(*args, module="rlvr_vocab")


def state_of(name: str) -> str:
    out = cli("status", "--json")
    assert out.returncode == 0, out.stderr
    rows = [r for r in json.loads(out.stdout) if r["run_name"] == name]
    return rows[0]["state"] if rows else "ABSENT"


def submissions(run_dir) -> list[dict]:
    return json.loads((run_dir / "submissions.json").read_text())


def test_lifecycle_pending_running_cancel_and_concurrent_resumes(demo_cache, experiments_root, step_gate):
    run_dir = experiments_root / "demo" / "lifecycle"
    step_gate.hold_at(3)  # RUNNING with checkpoint-2, held there: the cancel cannot race the job's last step
    submit = run_train("--multirun", "hydra/launcher=slurm_cpu", "run_name=lifecycle", "training.max_steps=6",
                        "training.save_steps=2", "logging=wandb", "logging.mode=offline",
                        "+hydra.launcher.additional_parameters.hold=true", *DEMO)
    assert submit.returncode == 0, submit.stderr[-2000:]
    assert "submitted sweep" in submit.stdout and "1 run as slurm job array" in submit.stdout
    job = submissions(run_dir)[-1]["job_id"]
    assert state_of("lifecycle") == "PENDING", "right after submission"
    subprocess.run(["scontrol", "release", job.split("_")[0]], check=True)  # a pending array: by its id
    assert step_gate.wait_held() == "3"
    assert state_of("lifecycle") == "RUNNING" and manifest(run_dir)["last_checkpoint"] == "checkpoints/checkpoint-2"

    refused = cli("resume", "lifecycle")
    assert refused.returncode == 2 and "is RUNNING" in refused.stderr and "two jobs" in refused.stderr

    assert cli("cancel", "lifecycle").returncode == 0
    wait_for(lambda: state_of("lifecycle") == "CANCELLED", 120, "CANCELLED")
    cancelled = manifest(run_dir)
    assert cancelled["attempts"][-1]["end_state"] == "CANCELLED"

    # Three `rlvr-vocab resume RUN &` at once: one job is submitted, the others are refused as a sequential one is.
    step_gate.hold_at(5)  # the resumed job stays RUNNING while the others decide
    racers = [subprocess.Popen([sys.executable, "-m", "rlvr_vocab", "resume", "lifecycle"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO) for _ in range(3)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in racers]
    assert sorted(code for code, _, _ in results) == [0, 2, 2], results
    refusals = [err for code, _, err in results if code == 2]
    assert all("two jobs must not write one run dir" in err and len(err.strip().splitlines()) == 1
               for err in refusals), refusals
    assert len(submissions(run_dir)) == 2, "the first submission and exactly one resume"
    assert step_gate.wait_held() == "5"
    sequential = cli("resume", "lifecycle")
    assert sequential.returncode == 2 and f"SLURM job {submissions(run_dir)[-1]['job_id']}" in sequential.stderr
    step_gate.release()
    wait_for(lambda: state_of("lifecycle") == "COMPLETED", 600, "the resumed run to complete")
    final = manifest(run_dir)
    assert final["last_step"] == 6
    assert [a["end_state"] for a in final["attempts"]] == ["CANCELLED", "COMPLETED"]
    assert final["attempts"][1]["resumed_from_step"] == 2
    assert final["wandb_id"] == cancelled["wandb_id"]
    assert len(submissions(run_dir)) == 2
    overrides = submissions(run_dir)[-1]["overrides"]
    assert sum(o.startswith("sweep_id=") for o in overrides) == 1 and "force_resume=true" not in overrides


def test_resume_sweep_resubmits_the_unfinished_as_one_array(demo_cache, experiments_root, tmp_path):
    good, doomed_a, doomed_b = tmp_path / "good.jsonl", tmp_path / "doomed_a.jsonl", tmp_path / "doomed_b.jsonl"
    good.write_text("".join(f'{{"question": "{i}+1", "answer": "{i + 1}"}}\n' for i in range(30)))
    for doomed in (doomed_a, doomed_b):
        shutil.copy(good, doomed)
    sweep = run_train("--multirun", "hydra/launcher=slurm_cpu", f"dataset.path={good},{doomed_a},{doomed_b}",
                      "dataset.embedded=null", "dataset.test_split=null", "dataset.test_size=5",
                      "training.max_steps=2", "sweep_id=resume-failed",
                      "+hydra.launcher.additional_parameters.hold=true",
                      *DEMO_MODEL)
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    runs = {p.name: p for p in (experiments_root / "demo").iterdir()}
    assert len(runs) == 3
    for doomed in (doomed_a, doomed_b):
        doomed.unlink()
    jobs = [submissions(p)[-1]["job_id"] for p in runs.values()]
    subprocess.run(["scontrol", "release", *{j.split("_")[0] for j in jobs}], check=True)
    # What a user waits for: `status` (a job that recorded its failure may still be exiting: then it is RUNNING).
    wait_for(lambda: sorted(r["state"] for r in json.loads(cli("status", "--json").stdout)) ==
             ["COMPLETED", "FAILED", "FAILED"], 600, "status to show one run completed and two failed")
    for doomed in (doomed_a, doomed_b):
        shutil.copy(good, doomed)
    again = cli("resume", "--sweep", "resume-failed")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "as one array" in again.stdout and "2 runs as slurm job array" in again.stdout, again.stdout
    wait_for(lambda: all(manifest(p).get("status") == "COMPLETED" for p in runs.values()), 600, "all complete")
    resubmitted = [submissions(p) for p in runs.values() if len(submissions(p)) == 2]
    assert len(resubmitted) == 2 and len({s[-1]["job_id"].split("_")[0] for s in resubmitted}) == 1, "one array"
    assert all(s[-1]["sweep_id"] == "resume-failed" for s in resubmitted)
