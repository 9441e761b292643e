"""Every leaf of the config against what it is declared to take: our structured configs, trl.GRPOConfig's
annotations, transformers' generation options, peft.LoraConfig, the rewards' signatures. First of all checks:
nothing else computes with a value of the wrong type.
"""

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlvr_vocab.config.schema import leaf_specs
from rlvr_vocab.config.services import service_configs
from rlvr_vocab.core.config_types import DOMAINS, GRPO_CHOICES, MODEL_KWARGS, Spec, check_value
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.secrets import is_secret_key
from rlvr_vocab.model.markers import check_markers
from rlvr_vocab.model.rewards import REWARDS, check_reward_config, reward_specs
from rlvr_vocab.validation.library_check import LibraryCheck
from rlvr_vocab.validation.names import suggest

# GRPOConfig fields whose value comes from somewhere else: key -> where to set it instead.
FRAMEWORK_OWNED = {
    "output_dir": "the run dir is <experiments_root>/<exp_name>/<run_name>; set those instead",
    "run_name": "use the top-level run_name",
    "seed": "use the top-level seed",
    "report_to": "use logging=wandb or logging=none",
    "bf16": "use precision=bf16 (or precision=auto)",
    "fp16": "use precision=fp16 (or precision=auto)",
    "use_cpu": "the device follows the machine; precision=fp32 for full precision",
    "resume_from_checkpoint": "runs resume automatically from their run dir's latest complete checkpoint",
}


SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


# GRPOConfig fields every run reads: checked at GRPOConfig's default when the config leaves them out.
REQUIRED_TRAINING = ("per_device_train_batch_size", "max_completion_length", "max_steps", "save_steps",
                     "num_generations")


def misplaced_training_key(key: str) -> ConfigError | None:
    """Why a GRPOConfig field is not set under `training` (the framework sets it, it would store a secret, sampling
    lives with the model), or None. Also the hint for such a key typed without `+` (validation.user_errors)."""
    if key in FRAMEWORK_OWNED:
        return ConfigError(f"training.{key}", "is set by the framework", FRAMEWORK_OWNED[key])
    if is_secret_key(key):
        return ConfigError(f"training.{key}", "would be saved in every checkpoint (training_args.bin)",
                           "set HF_TOKEN in the environment instead: the hub libraries read it there")
    if key in SAMPLING_KEYS:
        return ConfigError(f"training.{key}", "sampling lives with the model", f"use model.generation_kwargs.{key}")
    return None


def check_types(cfg: DictConfig, libraries: LibraryCheck) -> None:
    """Every leaf of the config against what it is declared to take (`declared`), before any other check computes with
    it; first the keys of the sections another library declares (a key unknown there is named with the known ones)."""
    # Before the whole config resolves: a service's command naming a null key is refused naming the key to set.
    service_configs(cfg.get("services"))
    values = OmegaConf.to_container(cfg, resolve=True)
    values.pop("hydra", None)
    # Before the rewards, which take the prompt's markers by interpolation: a bad marker is named where it is set.
    check_markers("prompt", values["prompt"])
    check_reward_config(values.get("reward"))
    training = values.get("training")
    _check_training_keys(training, libraries)
    for key in values["model"]["generation_kwargs"]:
        if key not in SAMPLING_KEYS and key not in libraries.generation_types():
            options = [*SAMPLING_KEYS, *sorted(libraries.generation_types())]
            raise ConfigError(f"model.generation_kwargs.{key}", "is not a generation option", suggest(key, options))
    fields = libraries.grpo_fields()
    for key, value in _leaves({**values, "training": {**{k: fields[k] for k in REQUIRED_TRAINING}, **training}}):
        spec = declared(key, libraries)
        if spec is not None:
            check_value(key, value, spec)


def _leaves(node: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every value in the tree, mappings included (and then what they hold)."""
    for key, value in node.items():
        yield f"{prefix}{key}", value
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{prefix}{key}.")


def declared(key: str, libraries: LibraryCheck) -> Spec | None:
    """What the value at dotted `key` takes, from where its section is declared: ours by our structured configs
    (config.schema), `training.*` by trl.GRPOConfig's annotations, `model.generation_kwargs.*` by transformers'
    GenerationConfig (sampling keys become GRPOConfig fields: GRPOConfig's), `model.model_kwargs.*` by MODEL_KWARGS,
    `reward.*` by the rewards' signatures; numbers with their domain from DOMAINS. None where nothing declares it:
    a name below a mapping (eval.benchmark_paths.<name>, inside a DeepSpeed dict), a key peft.LoraConfig does not
    have (peft names it when check_model instantiates the node), a from_pretrained option passed on to the model's
    config. `model.lora.*` by peft.LoraConfig's annotations."""
    section, _, name = key.partition(".")
    if key == "training._target_":
        return _TRAINING_TARGET
    if section == "training":
        spec = libraries.grpo_types().get(name)
        if spec is not None and name in REQUIRED_TRAINING:
            spec = replace(spec, nullable=False)  # every run reads them
        if spec is not None and key in GRPO_CHOICES:
            spec = replace(spec, choices=GRPO_CHOICES[key])
        return spec and spec.with_domain(DOMAINS.get(key))
    if key.startswith("model.generation_kwargs."):
        name = key.removeprefix("model.generation_kwargs.")
        if name in SAMPLING_KEYS:
            return declared(f"training.{name}", libraries)
        spec = libraries.generation_types().get(name)
        return spec and spec.with_domain(DOMAINS.get(key))
    if key.startswith("model.model_kwargs."):
        return MODEL_KWARGS.get(key.removeprefix("model.model_kwargs."))
    if key == "model.lora._target_":
        return _LORA_TARGET
    if key.startswith("model.lora."):
        return libraries.lora_types().get(key.removeprefix("model.lora."))
    if section == "reward":
        reward, _, parameter = name.partition(".")
        return reward_specs(reward).get(parameter) if reward in REWARDS else None
    return leaf_specs().get(key)


# What the `training` and `model.lora` nodes are handed to.
_TRAINING_TARGET = Spec(("str",), choices=("trl.GRPOConfig",))


_LORA_TARGET = Spec(("str",), choices=("peft.LoraConfig",))


def _check_training_keys(training: Any, libraries: LibraryCheck) -> None:
    if not isinstance(training, Mapping):
        raise ConfigError("training", "must be a trl.GRPOConfig node", "select training=grpo_local|grpo_cluster")
    if not _TRAINING_TARGET.accepts(training.get("_target_")):
        raise ConfigError("training._target_", f"got {training.get('_target_')!r}, takes trl.GRPOConfig",
                          "select training=grpo_local|grpo_cluster")
    fields = libraries.grpo_fields()
    for key in training:
        if key == "_target_":
            continue
        if problem := misplaced_training_key(key):
            raise problem
        if key not in fields:
            raise ConfigError(f"training.{key}", "is not a trl.GRPOConfig field", suggest(key, sorted(fields)))
