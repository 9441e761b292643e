"""Every config composes, and validates, as users select it."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.validation.plan import validate

CONF = Path(__file__).resolve().parent.parent / "conf"
register_configs()


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("experiment", names("experiment"))
def test_every_experiment_composes(experiment):
    cfg = compose_cfg(f"experiment={experiment}")
    assert cfg.exp_name == experiment
    assert cfg.training["_target_"] == "trl.GRPOConfig"
    assert cfg.reward, "an experiment needs at least one reward"


def test_experiment_files_start_with_their_command():
    for path in (CONF / "experiment").glob("*.yaml"):
        first_comment = [ln for ln in path.read_text().splitlines() if not ln.startswith("# @package")][0]
        assert first_comment.startswith("# ") and ("rlvr_vocab.train" in first_comment or "sbatch" in first_comment)


@pytest.mark.parametrize("group", ["model", "dataset", "training", "logging"])
def test_every_group_option_composes(group):
    for option in names(group):
        cfg = compose_cfg(f"{group}={option}")
        assert cfg[group] is not None


def test_demo_validates_and_plans_without_writing(experiments_root):
    cfg = compose_cfg("run_name=plan-only")
    plan = validate(cfg)
    assert plan.run_dir == experiments_root / "demo" / "plan-only"
    assert plan.rewards == ["accuracy", "format"]
    assert plan.precision == "fp32"  # CPU here
    assert not experiments_root.exists()


def test_user_overrides_as_typed():
    cfg = compose_cfg(
        "training.learning_rate=3e-6", "model.model_kwargs.torch_dtype=bfloat16",
        'dataset.system_prompt="Be brief."', "seed=1",
    )
    assert cfg.training.learning_rate == 3e-6
    assert cfg.model.model_kwargs.torch_dtype == "bfloat16"
    assert cfg.dataset.system_prompt == "Be brief."
    assert cfg.seed == 1


def test_experiments_root_follows_env(monkeypatch):
    monkeypatch.setenv("RLVR_EXPERIMENTS_ROOT", "/somewhere/else")
    assert compose_cfg().experiments_root == "/somewhere/else"


def test_baseline_is_qwen3_on_deepscaler():
    cfg = compose_cfg("experiment=baseline")
    assert cfg.model.name_or_path == "Qwen/Qwen3-0.6B"
    assert cfg.dataset.path == "agentica-org/DeepScaleR-Preview-Dataset"


@pytest.mark.parametrize("sweep", names("sweep"))
def test_every_sweep_file_composes_with_its_grid(sweep):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=[f"+sweep={sweep}"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params and cfg.sweep_id


def test_reasoning_vocab_differs_from_baseline_only_in_the_vocabulary():
    base, rv = compose_cfg("experiment=baseline"), compose_cfg("experiment=reasoning_vocab")
    assert rv.model.reasoning_vocab.size == 75000 and base.model.reasoning_vocab.size == 0
    rv.model.reasoning_vocab = base.model.reasoning_vocab
    rv.exp_name = base.exp_name
    assert rv == base
