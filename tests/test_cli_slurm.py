"""The CLI steering real jobs on the local Slurm: states, cancel, resume, refusals."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import DEMO, DEMO_MODEL, manifest, run_module, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def cli(*args: str):
    return run_module(*args, module="rlvr_vocab")


def state_of(name: str) -> str:
    out = cli("status", "--json")
    assert out.returncode == 0, out.stderr
    rows = [r for r in json.loads(out.stdout) if r["run_name"] == name]
    return rows[0]["state"] if rows else "ABSENT"


def test_lifecycle_pending_running_cancel_resume(demo_cache, experiments_root):
    run_dir = experiments_root / "demo" / "lifecycle"
    submit = run_module("--multirun", "hydra/launcher=slurm_cpu", "run_name=lifecycle", "training.max_steps=14",
                        "training.save_steps=2", "logging=wandb", "logging.mode=offline",
                        "+hydra.launcher.additional_parameters.hold=true", *DEMO)
    assert submit.returncode == 0, submit.stderr[-2000:]
    job = json.loads((run_dir / "submissions.json").read_text())[-1]["job_id"]
    assert state_of("lifecycle") == "PENDING"
    subprocess.run(["scontrol", "release", job.split("_")[0]], check=True)  # a pending array: by its id
    wait_for(lambda: state_of("lifecycle") == "RUNNING" and manifest(run_dir).get("checkpoints"), 300,
             "RUNNING with a checkpoint")

    refused = cli("resume", "lifecycle")
    assert refused.returncode == 2 and "is RUNNING" in refused.stderr and "two jobs" in refused.stderr

    assert cli("cancel", "lifecycle").returncode == 0
    wait_for(lambda: state_of("lifecycle") == "CANCELLED", 120, "CANCELLED")
    cancelled = manifest(run_dir)
    assert cancelled["attempts"][-1]["end_state"] == "CANCELLED"

    resumed = cli("resume", "lifecycle")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    wait_for(lambda: state_of("lifecycle") == "COMPLETED", 600, "the resumed run to complete")
    final = manifest(run_dir)
    assert final["last_step"] == 14
    assert [a["end_state"] for a in final["attempts"]] == ["CANCELLED", "COMPLETED"]
    assert final["attempts"][1]["resumed_from_step"] >= 2
    assert final["wandb_id"] == cancelled["wandb_id"]
    assert len(json.loads((run_dir / "submissions.json").read_text())) == 2


def test_resume_failed_resubmits_only_the_failed(demo_cache, experiments_root, tmp_path):
    good, doomed = tmp_path / "good.jsonl", tmp_path / "doomed.jsonl"
    good.write_text("".join(f'{{"question": "{i}+1", "answer": "{i + 1}"}}\n' for i in range(30)))
    shutil.copy(good, doomed)
    sweep = run_module("--multirun", "hydra/launcher=slurm_cpu", f"dataset.path={good},{doomed}",
                       "dataset.embedded=null", "dataset.test_split=null", "dataset.test_size=5",
                       "training.max_steps=2", "sweep_id=resume-failed",
                       "+hydra.launcher.additional_parameters.hold=true",
                       *DEMO_MODEL)
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    runs = {p.name: p for p in (experiments_root / "demo").iterdir()}
    assert len(runs) == 2
    doomed.unlink()
    jobs = [json.loads((p / "submissions.json").read_text())[-1]["job_id"] for p in runs.values()]
    subprocess.run(["scontrol", "release", *{j.split("_")[0] for j in jobs}], check=True)
    wait_for(lambda: sorted(manifest(p).get("status", "") for p in runs.values()) == ["COMPLETED", "FAILED"], 600,
             "one run to complete and one to fail")
    shutil.copy(good, doomed)
    again = cli("resume", "--sweep", "resume-failed", "--failed")
    assert again.returncode == 0, again.stderr[-2000:]
    wait_for(lambda: all(manifest(p).get("status") == "COMPLETED" for p in runs.values()), 600, "both complete")
    submissions = {name: len(json.loads((p / "submissions.json").read_text())) for name, p in runs.items()}
    assert sorted(submissions.values()) == [1, 2], submissions
    assert sys.executable  # the jobs ran with this venv's python
