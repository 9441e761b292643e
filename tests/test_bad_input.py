"""Bad input: one line naming the key or path and the fix, exit code 2, no traceback, no run dir."""

import sys

import pytest
from conftest import run_module

from rlvr_vocab.train import main

CASES = {
    "typo in a GRPO key": (["training.learnin_rate=3e-6"], "training.learnin_rate", "training.learning_rate"),
    "typo in our own key": (["model.model_kwarg.x=1"], "model.model_kwarg", "model_kwargs"),
    "typo added with +": (["+training.learnin_rate=3e-6"], "training.learnin_rate", "learning_rate"),
    "wrong type": (["seed=abc"], "seed", "abc"),
    "unknown group option": (["model=qwen3"], "model/qwen3", "qwen3_0.6b"),
    "too few generations": (["training.num_generations=1"], "training.num_generations", ">= 2"),
    "batch not divisible": (
        ["training.per_device_train_batch_size=6", "training.num_generations=4"],
        "training.per_device_train_batch_size", "divisible",
    ),
    "zero completion length": (["training.max_completion_length=0"], "training.max_completion_length", "positive"),
    "reward weight count": (["+training.reward_weights=[1.0]"], "training.reward_weights", "2 rewards"),
    "unknown reward option": (["reward=[accurcy]"], "reward/accurcy", "accuracy"),
    "unknown reward name": (["+reward.acuracy.weight=1"], "reward.acuracy", "accuracy"),
    "missing local dataset": (
        ["dataset.path=./no/such/data.jsonl", "dataset.embedded=null"], "dataset.path", "does not exist",
    ),
    "missing local model": (["model.name_or_path=./no/such/model", "model.embedded=null"], "model.name_or_path",
                            "does not exist"),
    "hub model not cached offline": (["model=qwen3_0.6b"], "model.name_or_path", "HF_HUB_OFFLINE"),
    "bad W&B run id": (["logging=wandb", "logging.run_id=a/b"], "logging.run_id", "cannot contain"),
    "run name escaping the root": (["run_name=../evil"], "run_name", "path separators"),
    "run name with a slash": (["run_name=a/b"], "run_name", "'/'"),
    "sampling in the wrong place": (["+training.temperature=0.7"], "training.temperature",
                                    "model.generation_kwargs.temperature"),
    "framework-owned GRPO key": (["+training.output_dir=/tmp/x"], "training.output_dir", "run dir"),
    "a secret in the trainer's arguments": (["+training.hub_token=hf_abcdefghijklmnop"], "training.hub_token",
                                            "HF_TOKEN"),
    "bf16 without a GPU": (["precision=bf16"], "precision", "GPU"),
    "missing DeepSpeed config": (["+training.deepspeed=./no/such/zero3.json"], "training.deepspeed", "does not exist"),
    "key below a null node": (["dataset.embedded=null", "dataset.embedded.n_test=5"], "overrides", "null"),
    "bad cosine parameter": (["+reward=cosine", "reward.cosine.max_len=-1"], "reward.cosine.max_len", ""),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_one_line_and_exit_2(case, monkeypatch, capsys, experiments_root):
    overrides, key, hint = CASES[case]
    monkeypatch.setattr(sys, "argv", ["rlvr_vocab.train", *overrides])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and key in err[0] and hint in err[0], err[0]
    assert "Traceback" not in err[0]
    assert not experiments_root.exists() or not any(experiments_root.rglob("run.json"))


def test_bad_input_from_the_shell(experiments_root):
    """The real command line, in a fresh process: no traceback, exit 2, nothing written."""
    result = run_module("training.learnin_rate=3e-6")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: training.learnin_rate: unknown key; did you mean 'training.learning_rate'? "
        "(add a new key with +training.learnin_rate=...)"
    ]
    late = run_module("training.num_generations=3", "training.per_device_train_batch_size=16")
    assert late.returncode == 2, late.stderr
    assert len(late.stderr.strip().splitlines()) == 1, late.stderr
    assert not experiments_root.exists()


def test_dry_run_prints_the_plan_and_writes_nothing(experiments_root):
    result = run_module("dry_run=true", "run_name=planned")
    assert result.returncode == 0, result.stderr
    for expected in ("run dir:", "demo/planned", "model:", "data:", "rewards:", "accuracy x1", "batch:"):
        assert expected in result.stdout
    assert not experiments_root.exists()
