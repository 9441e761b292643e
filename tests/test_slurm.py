"""Launching on the real local Slurm (slurm/local_cluster.sh): sweeps, wrappers, requeue, failures."""

import json
import os
import subprocess

import pytest
from conftest import DEMO, DEMO_MODEL, REPO, manifest, release, run_module, sacct_states, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_sweep_is_one_array_and_resubmission_submits_nothing(demo_cache, experiments_root):
    args = ["--multirun", "hydra/launcher=slurm_cpu", "hydra.launcher.wait=true", "training.learning_rate=1e-4,2e-4",
            "seed=0,1", "training.max_steps=4", *DEMO]
    dry = run_module(*args, "dry_run=true")
    first = run_module(*args, timeout=900)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    assert "4 runs as slurm job array" in first.stdout
    sweep = first.stdout.split("submitted sweep ")[1].split(":")[0]
    assert f"sweep {sweep}:" in dry.stdout, "a dry run names the sweep as the submission does"
    runs = sorted((experiments_root / "demo").iterdir())
    assert [r.name for r in runs] == ["lr=0.0001,seed=0", "lr=0.0001,seed=1", "lr=0.0002,seed=0", "lr=0.0002,seed=1"]
    job_ids = {json.loads((r / "submissions.json").read_text())[-1]["job_id"] for r in runs}
    assert len({j.split("_")[0] for j in job_ids}) == 1, "one array for the whole sweep"
    assert sacct_states(next(iter(job_ids))) == ["COMPLETED"] * 4
    for run in runs:
        m = manifest(run)
        assert m["status"] == "COMPLETED" and m["last_step"] == 4 and (run / "final" / "rlvr_complete.json").exists()
        assert m["attempts"][-1]["slurm_array_id"] in job_ids

    again = run_module(*args, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 to submit" in again.stdout and "nothing to submit" in again.stdout
    assert again.stdout.count("completed at step 4") == 4


def test_preemption_signal_requeues_and_resumes(demo_cache, experiments_root, step_gate):
    run_dir = experiments_root / "demo" / "preempted"
    step_gate.hold_at(5)
    submit = run_module("--multirun", "hydra/launcher=slurm_cpu", "run_name=preempted", "training.max_steps=8",
                        "training.save_steps=5", "logging=wandb", "logging.mode=offline", *DEMO)
    assert submit.returncode == 0, submit.stderr[-2000:]
    job = json.loads((run_dir / "submissions.json").read_text())[-1]["job_id"]
    assert step_gate.wait_held() == "5"
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    step_gate.release()  # the job stops at the end of step 5, with a checkpoint
    wait_for(lambda: manifest(run_dir).get("status") == "REQUEUED", 120, "the job to checkpoint and requeue")
    release(job)
    final = wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED" and manifest(run_dir), 600,
                     "the resumed job to complete")
    assert final["last_step"] == 8
    assert [a["end_state"] for a in final["attempts"]] == ["PREEMPTED", "COMPLETED"]
    assert final["attempts"][1]["resumed_from_step"] == 5
    assert final["attempts"][1]["slurm_restart_count"] == 1
    assert "resumed from checkpoint-5" in (run_dir / "train.log").read_text()
    wandb_runs = {p.name.rsplit("-", 1)[-1] for p in (run_dir / "wandb").glob("offline-run-*")}
    assert wandb_runs == {final["wandb_id"]}, "one W&B run across both attempts"


def test_sbatch_wrapper_runs_the_job(demo_cache, experiments_root, job_env):
    experiments_root.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["sbatch", "--wait", "--gpus-per-node=0", "--mem=4G", "--cpus-per-task=1", "--time=30",
         "slurm/train_baseline.sh", "model=tiny", "dataset=arithmetic", "training=grpo_local", "logging=none",
         "training.max_steps=3", "eval.max_new_tokens=24", *DEMO],
        cwd=REPO, capture_output=True, text=True, timeout=900, env={**os.environ, **job_env},
    )
    assert result.returncode == 0, result.stderr
    job = result.stdout.split()[-1]
    run_dir = experiments_root / "baseline" / f"job{job}"
    m = manifest(run_dir)
    assert m["status"] == "COMPLETED" and m["last_step"] == 3 and (run_dir / "final").is_dir()
    attempt = m["attempts"][0]
    assert attempt["slurm_job_id"] == job and attempt["sbatch"]["script"].endswith("slurm/train_baseline.sh")
    # The job's output lands under the experiments root ($RLVR_EXPERIMENTS_ROOT), not in the checkout.
    assert attempt["stdout"] == str(experiments_root / "_slurm" / f"rlvr-baseline-{job}.out")
    assert "rlvr: job" in (experiments_root / "_slurm" / f"rlvr-baseline-{job}.out").read_text()
    assert not (REPO / f"slurm-{job}.out").exists() and not list((REPO / "experiments").glob(f"*{job}*"))
    assert sacct_states(job) == ["COMPLETED"]


def test_data_removed_before_start_fails_without_requeue(demo_cache, experiments_root, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(f'{{"question": "{i}+1", "answer": "{i + 1}"}}\n' for i in range(30)))
    run_dir = experiments_root / "demo" / "vanishing"
    submit = run_module("--multirun", "hydra/launcher=slurm_cpu", "run_name=vanishing", f"dataset.path={data}",
                        "dataset.embedded=null", "dataset.test_split=null", "dataset.test_size=5",
                        "+hydra.launcher.additional_parameters.hold=true", *DEMO_MODEL)
    assert submit.returncode == 0, submit.stderr[-2000:]
    job = json.loads((run_dir / "submissions.json").read_text())[-1]["job_id"]
    data.unlink()
    subprocess.run(["scontrol", "release", job.split("_")[0]], check=True)  # a pending array: by its id
    wait_for(lambda: manifest(run_dir).get("status") == "FAILED", 300, "the job to fail")
    m = manifest(run_dir)
    assert "dataset.path" in m["error"] and "does not exist" in m["error"]
    assert "does not exist" in (run_dir / "train.log").read_text()
    wait_for(lambda: sacct_states(job) == ["FAILED"], 60, "sacct to show FAILED")
    assert len(manifest(run_dir)["attempts"]) == 1 and sacct_states(job) == ["FAILED"], "not requeued"


def test_two_tasks_per_node_train_as_one_distributed_job(demo_cache, experiments_root):
    """slurm_multi_gpu's launch path on CPUs: srun starts 2 tasks, one torch.distributed (gloo) job."""
    submit = run_module("--multirun", "hydra/launcher=slurm_cpu", "hydra.launcher.wait=true",
                        "hydra.launcher.tasks_per_node=2", "run_name=two-tasks", "training.max_steps=2",
                        "eval.enabled=false", *DEMO, timeout=900)
    assert submit.returncode == 0, submit.stdout[-2000:] + submit.stderr[-3000:]
    m = manifest(experiments_root / "demo" / "two-tasks")
    assert m["status"] == "COMPLETED" and m["last_step"] == 2
    assert [a["world_size"] for a in m["attempts"]] == [2]
    assert "on 2 processes (distributed)" in (experiments_root / "demo" / "two-tasks" / "train.log").read_text()


def test_a_sweep_larger_than_max_array_size_is_split(demo_cache, experiments_root):
    """The local cluster's MaxArraySize is 201: 205 points go as two arrays, every point recorded, none lost."""
    submit = run_module("--multirun", "hydra/launcher=slurm_cpu", "seed=range(0,205)", "training.max_steps=1",
                        "+hydra.launcher.additional_parameters.hold=true", *DEMO, timeout=900)
    assert submit.returncode == 0, submit.stdout[-2000:] + submit.stderr[-2000:]
    runs = list((experiments_root / "demo").iterdir())
    jobs = [json.loads((r / "submissions.json").read_text())[-1]["job_id"] for r in runs]
    arrays = {j.split("_")[0] for j in jobs}
    try:
        assert len(runs) == len(set(jobs)) == 205 and len(arrays) == 2, arrays
        assert "205 runs as slurm job arrays" in submit.stdout
    finally:
        subprocess.run(["scancel", *arrays], check=False)
