"""Trustworthy runs against the real local Slurm: array logs, sbatch-wrapper resumes, a refused requeue."""

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import (
    DEMO,
    REPO,
    documented_local_cluster_commands,
    manifest,
    run_module,
    sacct_states,
    wait_for,
)

from rlvr_vocab.run.overrides import name_of_overrides

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

LITERAL_SECRET = "hf_wrapperLiteralSecret0123456789"
WRAPPER_JOB = ["--gpus-per-node=0", "--mem=4G", "--cpus-per-task=1", "--time=30"]
TINY = ["model=tiny", "dataset=arithmetic", "training=grpo_local", "logging=none", "eval.enabled=false", *DEMO]


def cli(*args: str):
    return run_module(*args, module="rlvr_vocab")


def row(name: str) -> dict:
    out = cli("status", "--json")
    assert out.returncode == 0, out.stderr
    return next((r for r in json.loads(out.stdout) if r["run_name"] == name), {"state": "ABSENT"})


def sbatch(*args: str, env: dict) -> str:
    out = subprocess.run(["sbatch", "--parsable", *WRAPPER_JOB, *args], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, **env}, check=True)
    return out.stdout.strip()


def test_a_wrapper_run_resumes_through_sbatch(demo_cache, experiments_root, job_env, step_gate):
    """The docs' local-cluster wrapper command as shown (shortened by overrides), cancelled, then resumed."""
    documented = next(c for c in documented_local_cluster_commands() if c.startswith("sbatch "))
    step_gate.hold_at(3)  # checkpoint-2 written; cancelled there, it cannot have finished
    out = subprocess.run(["sbatch", "--parsable", *shlex.split(documented)[1:], *TINY, "training.max_steps=6",
                          "training.save_steps=2", f"+model.model_kwargs.token={LITERAL_SECRET}"],
                         cwd=REPO, capture_output=True, text=True, env={**os.environ, **job_env})
    assert out.returncode == 0, out.stderr
    job = out.stdout.strip()
    # Named by what the command sets (not the job id, and never the secret's value).
    run = "model=tiny,dataset=arithmetic,training=grpo_local,warm_start_steps=60,bs=16,n_test=20"
    run_dir = experiments_root / "baseline" / run
    assert step_gate.wait_held() == "3"
    subprocess.run(["scancel", job], check=True)
    wait_for(lambda: row(run)["state"] == "CANCELLED", 120, "CANCELLED")
    step_gate.release()

    resumed = cli("resume", run, f"+model.model_kwargs.token={LITERAL_SECRET}")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "through sbatch" in resumed.stdout and "slurm/train_baseline.sh" in resumed.stdout
    new_job = resumed.stdout.split("submitted as SLURM job ")[1].split()[0]
    assert new_job != job and row(run)["state"] in ("PENDING", "RUNNING")
    final = wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED" and manifest(run_dir), 600,
                     "the resumed wrapper run to complete")
    first, second = final["attempts"]
    assert first["end_state"] == "CANCELLED" and second["slurm_job_id"] == new_job
    assert second["resumed_from_step"] == 2 and final["last_step"] == 6
    assert second["sbatch"]["script"] == first["sbatch"]["script"]
    assert first["code"]["snapshot"] and second["code"] == first["code"], "each job runs a snapshot of the code"
    assert (experiments_root / "_slurm" / f"{job}.code").read_text().strip() == first["code"]["snapshot"]
    assert second["sbatch"]["options"]["cpus-per-task"] == "1" and second["sbatch"]["options"]["gpus-per-node"] == "0"
    wait_for(lambda: sacct_states(new_job) == ["COMPLETED"], 120, "sacct to record the resumed job")
    assert (run_dir / "final").is_dir() and first["sbatch"]["script"].endswith("slurm/train_baseline.sh")
    for attempt, job_id in ((first, job), (second, new_job)):  # output under the root, none in the checkout
        assert attempt["stdout"] == str(experiments_root / "_slurm" / f"rlvr-baseline-{job_id}.out")
        assert "rlvr: job" in Path(attempt["stdout"]).read_text()
        assert not (REPO / f"slurm-{job_id}.out").exists() and not list((REPO / "experiments").glob(f"*{job_id}*"))
    # The same command submitted again finds the run complete: no second run, no training.
    again = subprocess.run(["sbatch", "--parsable", "--wait", *shlex.split(documented)[1:], *TINY,
                            "training.max_steps=6", "training.save_steps=2",
                            f"+model.model_kwargs.token={LITERAL_SECRET}"],
                           cwd=REPO, capture_output=True, text=True, env={**os.environ, **job_env}, timeout=600)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in (experiments_root / "baseline").iterdir()] == [run]
    assert len(manifest(run_dir)["attempts"]) == 2
    said = (experiments_root / "_slurm" / f"rlvr-baseline-{again.stdout.strip()}.out").read_text()
    assert "already complete at step 6" in said, said[-2000:]
    leaks = [p for p in experiments_root.rglob("*") if p.is_file() and LITERAL_SECRET.encode() in p.read_bytes()]
    assert not leaks, leaks


def test_a_refused_requeue_does_not_leave_the_run_requeued(demo_cache, experiments_root, job_env, step_gate):
    step_gate.hold_at(3)
    job = sbatch("--no-requeue", "slurm/train_baseline.sh", *TINY, "training.max_steps=6", "training.save_steps=2",
                 env=job_env)
    run = name_of_overrides(["experiment=baseline", *TINY, "training.max_steps=6", "training.save_steps=2"])
    run_dir = experiments_root / "baseline" / run
    assert step_gate.wait_held() == "3"
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    step_gate.release()
    m = wait_for(lambda: manifest(run_dir).get("status") in ("PREEMPTED", "TIMEOUT") and manifest(run_dir), 300,
                 "the stop to be recorded as not requeued")
    assert "not requeued: scontrol requeue failed" in m["error"] and m["last_checkpoint"].endswith("checkpoint-3")
    wait_for(lambda: sacct_states(job) == ["COMPLETED"], 120, "the job to end")
    shown = row(run)
    assert shown["state"] == m["status"] and "not requeued" in shown["note"]
