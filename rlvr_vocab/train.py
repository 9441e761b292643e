"""The training job: `python -m rlvr_vocab.train [hydra overrides]`.

`main()` is the thin Hydra entry; `train(cfg)` is the job every launch path runs unchanged.
"""

import os
import sys
import time
from typing import TYPE_CHECKING, Any

import hydra
from loguru import logger
from omegaconf import DictConfig

from rlvr_vocab import CONF_DIR
from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.logs import setup_logging
from rlvr_vocab.core.secrets import move_secrets_to_env
from rlvr_vocab.job.lifecycle import JobLifecycle, is_main_process
from rlvr_vocab.launch import register_hydra_plugins
from rlvr_vocab.launch.distributed import export_from_slurm
from rlvr_vocab.run import checkpoints
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.validation import library_check
from rlvr_vocab.validation.names import check_name, name_run
from rlvr_vocab.validation.plan import Plan, validate
from rlvr_vocab.validation.user_errors import exit_on_user_error, prefer_raised_hydra_errors

if TYPE_CHECKING:
    from rlvr_vocab.launch.search_report import TrialReporter


def _task_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def train(cfg: DictConfig, overrides: list[str] | None = None, trial: "TrialReporter | None" = None,
          search_trial: int | None = None) -> dict[str, Any]:
    """Validate, then run (or resume) GRPO in the run dir. Returns the run's outcome.

    Whatever happens after validation, the attempt's end is recorded and W&B closed (`JobLifecycle`). A run that is
    already complete is left untouched; under SLURM a timeout/preemption signal checkpoints and requeues the job.

    `overrides`: the run's as typed (default: this Hydra job's). A config with a `search` section makes this job a
    search worker, which trains the search's trials through here: trial number `search_trial`, and its `trial`
    reporter where this run's evaluations go to the study.
    """
    overrides = _task_overrides() if overrides is None else overrides
    if cfg.get("search") is not None:
        return _search_worker(cfg, overrides)
    name_run(cfg, overrides)
    plan = _validate_or_record_failure(cfg, overrides)
    if cfg.dry_run:
        print(f"dry run: config is valid\n{plan.describe()}")  # noqa: T201
        return {"status": "dry_run", "run_dir": str(plan.run_dir)}

    with JobLifecycle(cfg, plan.run_dir, plan.grpo_kwargs["max_steps"], plan.world_size, overrides,
                      search_trial) as job:
        if job.already_complete is None:
            from rlvr_vocab.job.tracking import finish_wandb, start_wandb

            wandb_run = start_wandb(cfg, job.manifest)
            job.on_exit(lambda code: finish_wandb(wandb_run, code))
            _run_grpo(cfg, plan, job, trial)
    return job.result()


def _search_worker(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """Check the search and validate its trials' configs; a dry run prints the plan, else train trials until the
    budget is spent (one task of the search's job array, or this process)."""
    from hydra.core.hydra_config import HydraConfig

    from rlvr_vocab.launch.search_plan import plan_search
    from rlvr_vocab.launch.search_worker import run_worker
    from rlvr_vocab.validation.plan import world_size

    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    name = (hydra.runtime.choices.get("search") if hydra is not None else None) or "search"
    plan = plan_search(cfg, overrides, name, validate, world_size())
    if cfg.dry_run:
        print(f"dry run: nothing trained\n{plan.describe()}")  # noqa: T201
        return {"status": "dry_run", "search_id": plan.sweep_id}
    # The array task's index: workers that start together draw different trials.
    return run_worker(cfg, plan, train, worker=(hydra.job.get("num") or 0) if hydra is not None else 0)


def in_slurm_job() -> bool:
    return "SLURM_JOB_ID" in os.environ


def _validate_or_record_failure(cfg: DictConfig, overrides: list[str]) -> Plan:
    """Validate; inside a SLURM job a failure is also recorded in the run dir, where `status` sees it.

    (At submission the same checks passed, so this is e.g. a data set removed since then.)
    """
    try:
        return validate(cfg)
    except ConfigError as e:
        if in_slurm_job() and cfg.run_name and _safe_name(cfg.exp_name) and _safe_name(cfg.run_name):
            run_dir = RunPaths.of(cfg.experiments_root, cfg.exp_name, cfg.run_name).run_dir
            JobLifecycle.record_invalid_start(cfg, run_dir, e, overrides)
        raise


def _safe_name(name: str | None) -> bool:
    try:
        check_name("name", name)
    except ConfigError:
        return False
    return name is not None


def _run_grpo(cfg: DictConfig, plan: Plan, job: JobLifecycle, trial: "TrialReporter | None") -> None:
    from accelerate import PartialState
    from transformers import PrinterCallback, set_seed
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_vocab.core.private_api import load_checkpoint_weights
    from rlvr_vocab.eval.heldout import held_out_eval, summary
    from rlvr_vocab.job.callbacks import (
        DiskSpaceCallback,
        HeartbeatReward,
        JobControlCallback,
        PeriodicEvalCallback,
        RunStateCallback,
        SaveTimerCallback,
        record_eval,
        wait_at_step_gate,
    )
    from rlvr_vocab.job.chain import EvalChain
    from rlvr_vocab.job.services import record_on_attempt, start_services
    from rlvr_vocab.model.data import load_splits, to_prompts
    from rlvr_vocab.model.modeling import extended_model, load_model_and_tokenizer, lora_config, model_path, save_final
    from rlvr_vocab.model.rewards import build_reward_funcs
    from rlvr_vocab.reasoning_vocab.surgery import apply_reasoning_vocab
    from rlvr_vocab.reasoning_vocab.trainer import ReasoningVocabGRPOTrainer

    t0 = time.monotonic()
    set_seed(cfg.seed)
    paths, manifest = job.paths, job.manifest
    if is_main_process():
        resume_from, skipped = checkpoints.latest_complete(paths)
        if skipped:
            manifest.update(skipped_checkpoints=manifest.data["skipped_checkpoints"] + skipped)
    # Every rank resumes from the checkpoint rank 0 chose, after it set incomplete ones aside.
    PartialState().wait_for_everyone()
    if not is_main_process():
        resume_from = checkpoints.peek_latest_complete(paths)
    resume_step = checkpoints.checkpoint_step(resume_from) if resume_from is not None else 0

    # Rank 0 builds the embedded (and the extended) model alone: other ranks then find it complete.
    with PartialState().main_process_first():
        path = model_path(cfg)
        if cfg.model.reasoning_vocab.size:
            path = extended_model(cfg, path, paths, plan.precision)
    # Once what they serve is on disk; their addresses reach the rewards and GRPOConfig built below.
    services = start_services(cfg, plan.grpo_kwargs, paths.run_dir, path, is_main_process(),
                              lambda: job.beat(resume_step, "startup"), record_on_attempt(manifest))
    job.on_exit(lambda code: services.stop())
    chain = EvalChain(cfg, paths, manifest, plan.grpo_kwargs["save_steps"]) if is_main_process() else None
    if chain is not None:
        chain.on_start()  # the initial weights are on disk now: their evaluation runs beside training
    job.beat(resume_step, "startup")  # each part of the start-up is progress for the watchdog
    model, tokenizer = load_model_and_tokenizer(cfg, path, plan.precision)
    # Before data, evals, the trainer and any resume: they all see the extended vocabulary.
    rv = apply_reasoning_vocab(model, tokenizer, cfg.model.reasoning_vocab)
    train_raw, test_raw = load_splits(cfg.dataset, cfg.seed)
    train_ds, test_ds = to_prompts(train_raw, tokenizer, cfg.dataset), to_prompts(test_raw, tokenizer, cfg.dataset)
    reward_funcs = [HeartbeatReward(fn, job) for fn in build_reward_funcs(cfg.reward, cfg.remote_rewards)[0]]
    job.beat(resume_step, "startup")

    def evaluate(m) -> dict:
        return held_out_eval(m, tokenizer, test_ds, cfg, rv)

    evals = manifest.data["eval"]
    if cfg.eval.enabled and "initial" not in evals and is_main_process():
        job.beat(resume_step, "eval")
        initial = record_eval(manifest, "initial", evaluate(model), step=0)
        logger.info(f"held-out greedy accuracy before GRPO: {initial['accuracy']:.1%} ({summary(initial)})")
    periodic = ([PeriodicEvalCallback(job, evaluate, cfg.eval.eval_steps, summary)]
                if cfg.eval.enabled and cfg.eval.eval_steps else [])
    reporting = []
    if trial is not None:
        from rlvr_vocab.job.search_callback import TrialCallback

        reporting.append(TrialCallback(job, trial))

    trainer_class, extra = (GRPOTrainer, {}) if rv is None else (ReasoningVocabGRPOTrainer, {"reasoning_vocab": rv})
    trainer = trainer_class(
        **extra,
        model=model,
        reward_funcs=reward_funcs,
        args=GRPOConfig(**plan.grpo_kwargs),
        train_dataset=train_ds,
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
        # A trial reports after the step's evaluation is recorded.
        callbacks=[RunStateCallback(job, plan.keep_checkpoints, chain), JobControlCallback(job), *periodic,
                   *reporting, DiskSpaceCallback(job), SaveTimerCallback()],
    )
    # Metrics are logged as compact lines by RunStateCallback; the raw dict printer only adds noise.
    trainer.remove_callback(PrinterCallback)
    if resume_from is not None:
        logger.info(f"resumed from {resume_from.name}")
        manifest.data["attempts"][-1]["resumed_from_step"] = resume_step
    args = trainer.args
    processes = f"{args.world_size} processes ({args.parallel_mode.value})" if args.world_size > 1 else "1 process"
    logger.info(f"start-up took {time.monotonic() - t0:.1f} s; training to step {plan.grpo_kwargs['max_steps']} "
                f"on {processes}")
    runtime = None
    if resume_step >= plan.grpo_kwargs["max_steps"]:
        # Stopped right after its last step's checkpoint: train nothing more, only finish.
        load_checkpoint_weights(trainer, resume_from)
        step = resume_step
    else:
        output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        step, runtime = trainer.state.global_step, output.metrics.get("train_runtime")
    job.finish_training(step)
    if job.stopped or job.pruned is not None or not is_main_process():
        return  # checkpointed for the requeue, or pruned; the final model and eval come with the last attempt
    job.beat(step, "final")
    wait_at_step_gate(None)
    save_final(trainer, tokenizer, paths, step)
    manifest.data.update(final_model=paths.relative(paths.final), last_step=step)
    chain.on_final()
    manifest.data["metrics"].update(train_runtime=runtime)
    if cfg.eval.enabled:
        after = record_eval(manifest, "final", evaluate(trainer.model), step)
        initial = evals.get("initial", {}).get("accuracy")
        change = f" (before: {initial:.1%})" if initial is not None else ""
        logger.info(f"held-out greedy accuracy after GRPO: {after['accuracy']:.1%}{change} ({summary(after)})")
    manifest.save()


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> dict[str, Any]:
    setup_logging()
    # Inside the task too: Hydra would otherwise print its own "Error executing job" line.
    with exit_on_user_error():
        return train(cfg)


def main() -> None:
    """Console entry: Hydra errors and ConfigErrors become one line and exit code 2."""
    # Literal secrets typed as overrides reach the job through its environment: no config, record or job file
    # (Hydra's, submitit's) ever holds them.
    sys.argv[1:], secret_env = move_secrets_to_env(sys.argv[1:])
    os.environ.update(secret_env)
    # An sbatch wrapper's `srun` over several tasks (nodes): one torch.distributed job, set up before anything
    # (validation included) touches accelerate's state.
    export_from_slurm()
    library_check.start_early(sys.argv[1:])
    register_configs()
    register_hydra_plugins()
    prefer_raised_hydra_errors()
    with exit_on_user_error():
        _hydra_main()


if __name__ == "__main__":
    # Run the importable module's main, not this __main__ copy: submitit pickles the task
    # function, and a __main__ function would travel by value, with its own copy of the logger.
    from rlvr_vocab.train import main as importable_main

    sys.exit(importable_main())
