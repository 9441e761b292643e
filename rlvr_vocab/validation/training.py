"""What trl.GRPOConfig cannot check alone, and its arguments as the framework completes them."""

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.validation.typed import REQUIRED_TRAINING, SAMPLING_KEYS


def check_training(training: Any, n_rewards: int, ws: int, fields: dict[str, Any]) -> dict[str, Any]:
    """What GRPOConfig cannot check alone, once check_types passed (`fields`: GRPOConfig's, with their defaults);
    returns the node's values without `_target_`."""
    values = {**{k: fields[k] for k in REQUIRED_TRAINING},
              **{k: v for k, v in OmegaConf.to_container(training, resolve=True).items() if k != "_target_"}}
    num_gen = values["num_generations"]
    gen_batch = values.get("generation_batch_size") or values["per_device_train_batch_size"] * ws * (
        values.get("steps_per_generation") or values.get("gradient_accumulation_steps", 1)
    )
    if gen_batch % num_gen:
        raise ConfigError(
            "training.per_device_train_batch_size",
            f"the generation batch ({gen_batch}) is not divisible by num_generations ({num_gen})",
            "make per_device_train_batch_size x processes x steps_per_generation a multiple of num_generations",
        )
    deepspeed = values.get("deepspeed")
    if isinstance(deepspeed, str) and not Path(deepspeed).is_file():
        raise ConfigError("training.deepspeed", f"{deepspeed} does not exist",
                          "use conf/deepspeed/zero1.json or zero3.json, or your own DeepSpeed config")
    weights = values.get("reward_weights")
    if weights is not None and len(weights) != n_rewards:
        raise ConfigError(
            "training.reward_weights",
            f"has {len(weights)} weights for {n_rewards} rewards",
            "set one weight per reward, or null and use reward.<name>.weight",
        )
    return values


# Seconds a job needs after the stop signal to finish its step and write a checkpoint.
CHECKPOINT_SAVE_S = 60


def check_time_limit(timeout_min: float | None, signal_delay_s: float | None) -> None:
    """The stop signal comes `signal_delay_s` before the limit: the limit must leave room to save after it."""
    if not timeout_min or signal_delay_s is None:
        return
    if signal_delay_s <= 0:
        raise ConfigError("hydra.launcher.signal_delay_s", f"must be positive, got {signal_delay_s}",
                          "the job checkpoints when this signal comes; e.g. 300")
    if timeout_min * 60 < signal_delay_s + CHECKPOINT_SAVE_S:
        raise ConfigError(
            "hydra.launcher.timeout_min",
            f"{timeout_min} min is shorter than the stop signal's lead (signal_delay_s={signal_delay_s}) plus "
            f"{CHECKPOINT_SAVE_S} s to save a checkpoint",
            f"raise timeout_min to at least {-(-(signal_delay_s + CHECKPOINT_SAVE_S) // 60):g} or lower signal_delay_s",
        )


def build_grpo_kwargs(
    cfg: DictConfig, values: dict[str, Any], paths: RunPaths, precision: str, has_gpu: bool
) -> dict[str, Any]:
    """GRPOConfig arguments: the `training` node plus what the framework owns."""
    gen = OmegaConf.to_container(cfg.model.generation_kwargs, resolve=True)
    sampling = {k: gen.pop(k) for k in SAMPLING_KEYS if k in gen}
    return {
        # Progress bars only on a terminal (SLURM output files get the compact step lines instead).
        "disable_tqdm": not sys.stderr.isatty(),
        **values,
        **sampling,
        "generation_kwargs": {**(values.get("generation_kwargs") or {}), **gen} or None,
        "output_dir": str(paths.checkpoints),
        "run_name": paths.run_dir.name,
        "seed": cfg.seed,
        "report_to": ["wandb"] if cfg.logging.backend == "wandb" else [],
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        # Without it, ranks on a GPU-less machine would each train alone instead of as one gloo DDP job.
        "use_cpu": not has_gpu,
        # Rotation is ours (rlvr_vocab.run.checkpoints.rotate): only after a newer checkpoint is complete.
        "save_total_limit": None,
    }
