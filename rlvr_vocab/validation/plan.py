"""`validate(cfg)`: every pre-flight check in order, and the Plan it returns (shown by a dry run, used by the
job). Each failure is a ConfigError naming the key or path and the fix; nothing here writes to disk.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.model.data_check import check_data
from rlvr_vocab.model.precision import choose_precision, cuda_here
from rlvr_vocab.ops.notify import check_notify
from rlvr_vocab.ops.retry import check_retry
from rlvr_vocab.ops.watchdog import check_watchdog
from rlvr_vocab.run import checkpoints
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.validation.library_check import LibraryCheck
from rlvr_vocab.validation.names import check_name, default_run_name
from rlvr_vocab.validation.run_dir import check_identity, check_recorded_checkpoint, check_world_size
from rlvr_vocab.validation.sections import (
    chat_check,
    check_dataset,
    check_eval,
    check_logging,
    check_model,
    check_offline_cache,
    check_retention,
)
from rlvr_vocab.validation.services import check_services, describe_services, trainer_world_size
from rlvr_vocab.validation.training import build_grpo_kwargs, check_training
from rlvr_vocab.validation.typed import check_types


@dataclass
class Plan:
    """What a validated config will do: shown by dry_run, used by the job."""

    run_dir: Path
    run_name: str
    model: str
    dataset: str
    rewards: list[str]
    reward_weights: list[float]
    grpo_kwargs: dict[str, Any]
    effective_batch: int
    resume_from: Path | None
    world_size: int
    precision: str
    keep_checkpoints: int | None
    # What the chained evaluation jobs will run (None: no chained evaluation).
    evaluation: str | None = None
    # The services started in the allocation and what the trainers get from them (None: no services).
    services: str | None = None

    def describe(self) -> str:
        args = self.grpo_kwargs
        rewards = ", ".join(f"{n} x{w:g}" for n, w in zip(self.rewards, self.reward_weights, strict=True))
        lines = [
            f"run dir:         {self.run_dir}",
            f"model:           {self.model}",
            f"data:            {self.dataset}",
            f"rewards:         {rewards}",
            f"batch:           {self.effective_batch} completions per step "
            f"({args['per_device_train_batch_size']} per device x {self.world_size} processes x "
            f"{args.get('gradient_accumulation_steps', 1)} accumulation; "
            f"{args['num_generations']} generations per prompt)",
            f"steps:           {args.get('max_steps')}, lr {args.get('learning_rate')}, "
            f"checkpoint every {args.get('save_steps')}",
            f"resume from:     {self.resume_from or 'nothing (fresh start)'}",
        ]
        if self.evaluation:
            lines.append(f"evaluation:      {self.evaluation}")
        if self.services:
            lines.append(f"services:        {self.services}")
        return "\n".join(lines)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def validate(
    cfg: DictConfig, target_has_gpu: bool | None = None, target_world_size: int | None = None,
    libraries: LibraryCheck | None = None,
) -> Plan:
    """All pre-flight checks. Raises ConfigError. A null `run_name` is planned as `default_run_name()` (the config
    is not changed: `name_run` does that, where a job names itself).

    `target_has_gpu` describes the machine the job will run on when that is not this one
    (a login node validating a SLURM submission); None means this machine. `libraries` asks TRL,
    transformers and peft (in this process by default).
    """
    libraries = libraries or LibraryCheck()
    check_types(cfg, libraries)
    # Under a Slurm launcher the services' nodes run no trainer.
    ws = trainer_world_size(cfg, target_world_size) or world_size()
    check_name("exp_name", cfg.exp_name)
    check_name("run_name", cfg.run_name)
    run_name = cfg.run_name or default_run_name()
    check_name("sweep_id", cfg.sweep_id)
    check_logging(cfg.logging)
    model_desc = check_model(cfg.model, libraries, target_has_gpu)
    data_desc = check_dataset(cfg.dataset)
    check_data(cfg.dataset, chat_check(cfg.model, libraries))
    check_offline_cache(cfg)
    from rlvr_vocab.reasoning_vocab.config import check_config

    check_config(cfg.model.reasoning_vocab, bool(cfg.training.get("use_vllm")))
    rewards = list(cfg.reward)
    values = check_training(cfg.training, len(rewards), ws, libraries.grpo_fields())
    weights = values.get("reward_weights") or [float(cfg.reward[n].weight) for n in rewards]
    check_eval(cfg.eval)
    check_watchdog(cfg.watchdog)
    check_retry(cfg.retry)
    check_notify(cfg.notify)
    check_retention(cfg.retention)
    check_services(cfg, libraries.grpo_fields())

    paths = RunPaths.of(cfg.experiments_root, cfg.exp_name, run_name)
    run_dir = paths.run_dir
    check_identity(paths, cfg)
    resume_from = checkpoints.peek_latest_complete(paths)
    if resume_from is None and not cfg.force_resume:
        check_recorded_checkpoint(paths, values["max_steps"])
    if resume_from is not None and not cfg.force_resume:
        check_world_size(paths, ws, resume_from.name)
    if resume_from is not None and values.get("save_only_model"):
        raise ConfigError(
            "training.save_only_model",
            f"is true but {run_dir} would resume from {resume_from.name}, which needs optimizer state",
            "set training.save_only_model=false, or start a new run_name",
        )
    values["reward_weights"] = weights
    keep = values.pop("save_total_limit", None)
    precision = choose_precision(cfg.precision, target_has_gpu)
    has_gpu = target_has_gpu if target_has_gpu is not None else cuda_here()
    grpo_kwargs = build_grpo_kwargs(cfg, values, paths, precision, has_gpu)
    if target_has_gpu is None:
        libraries.check_grpo(grpo_kwargs)
    else:
        # GPU-only settings can't be instantiated here (no GPU, maybe no deepspeed): check the rest.
        libraries.check_grpo({**grpo_kwargs, "bf16": False, "fp16": False, "deepspeed": None})
    effective = values["per_device_train_batch_size"] * ws * values.get("gradient_accumulation_steps", 1)
    return Plan(run_dir, run_name, model_desc, data_desc, rewards, weights, grpo_kwargs, effective,
                resume_from, ws, precision, keep, describe_evaluation(cfg, run_dir),
                services=describe_services(cfg, run_dir))


def describe_evaluation(cfg: DictConfig, run_dir: Path) -> str | None:
    """The chained evaluation jobs, with the exact command each runs."""
    ev = cfg.eval
    if not (ev.chain and ev.benchmarks):
        return None
    every = "every checkpoint" if ev.every_checkpoints == 1 else f"every {ev.every_checkpoints}th checkpoint"
    names = ",".join(ev.benchmarks)
    return (f"{', '.join(ev.benchmarks)} on the initial weights, {every} and final/, as jobs of "
            f"hydra/launcher={ev.launcher}, backend {ev.backend}: python -m rlvr_vocab.job.evaluate {run_dir} "
            f"--benchmarks {names} --checkpoints <initial|step|final> --backend {ev.backend}")
