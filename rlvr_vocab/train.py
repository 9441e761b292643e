"""The training job: `python -m rlvr_vocab.train [hydra overrides]`.

`main()` is the thin Hydra entry; `train(cfg)` is the job every launch path runs unchanged.
"""

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from loguru import logger
from omegaconf import DictConfig

from rlvr_vocab import CONF_DIR, library_check
from rlvr_vocab.config import register_configs
from rlvr_vocab.errors import ConfigError
from rlvr_vocab.launch import register_hydra_plugins
from rlvr_vocab.logs import quiet_progress_bars_off_tty, setup_logging
from rlvr_vocab.run import checkpoints
from rlvr_vocab.run import signals as requeue
from rlvr_vocab.run.lease import RunLease, write_config_snapshot
from rlvr_vocab.run.manifest import CANCELLED, COMPLETED, FAILED, REQUEUED, Manifest
from rlvr_vocab.tracking import is_main_process
from rlvr_vocab.user_errors import exit_on_user_error, mark_logged, prefer_raised_hydra_errors
from rlvr_vocab.validate import Plan, check_name, validate


class Terminated(Exception):
    """SIGTERM (scancel, or the end of the time limit) reached the job."""


_terminated = False
# SIGTERM right after the stop signal: Slurm is taking the job down (preemption without grace time).
_terminated_after_stop = False


def _on_sigterm(signum, frame):
    global _terminated, _terminated_after_stop
    if requeue.current().requested:
        _terminated_after_stop = True
        return  # SLURM is already taking the job down for the requeue/preemption we are handling
    _terminated = True
    raise Terminated("terminated by SIGTERM (scancel or the time limit)")


def _task_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _open_run(cfg: DictConfig, plan: Plan) -> tuple[Manifest, RunLease | None]:
    """Rank 0 owns the run dir (lease, manifest, train.log); other ranks only read and train."""
    if not is_main_process():
        setup_logging()
        quiet_progress_bars_off_tty()
        return Manifest.load_or_create(plan.run_dir, cfg.exp_name, cfg.run_name, read_only=True), None
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    lease = RunLease(plan.run_dir)
    try:
        lease.acquire()
    except ConfigError:
        _remove_if_empty(plan.run_dir)
        raise
    setup_logging(plan.run_dir / "train.log")
    quiet_progress_bars_off_tty()
    manifest = Manifest.load_or_create(plan.run_dir, cfg.exp_name, cfg.run_name)
    write_config_snapshot(plan.run_dir, cfg, _task_overrides())
    manifest.data.update(
        sweep_id=cfg.sweep_id, overrides=_task_overrides(), max_steps=plan.grpo_kwargs["max_steps"]
    )
    manifest.start_attempt(world_size=plan.world_size)
    return manifest, lease


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def train(cfg: DictConfig) -> dict[str, Any]:
    """Validate, then run (or resume) GRPO in the run dir. Returns the run's outcome.

    Whatever happens after validation, the manifest's final state is written and W&B closed.
    On a timeout/preemption signal under SLURM the job checkpoints and requeues itself.
    """
    plan = _validate_or_record_failure(cfg)
    if cfg.dry_run:
        print(f"dry run: config is valid\n{plan.describe()}")  # noqa: T201
        return {"status": "dry_run", "run_dir": str(plan.run_dir)}

    manifest, lease = _open_run(cfg, plan)
    stop = requeue.install() if in_slurm_job() else None
    previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    wandb_run, exit_code, stopped = None, 1, False
    try:
        if _already_complete(manifest, plan):
            logger.info(f"{plan.run_dir} already reached step {manifest.data['last_step']}: nothing to do")
            manifest.end_attempt(COMPLETED, "already complete")
            exit_code = 0
            return _result(manifest)
        from rlvr_vocab.tracking import start_wandb

        wandb_run = start_wandb(cfg, manifest)
        _run_grpo(cfg, plan, manifest, stop)
        stopped = stop is not None and stop.requested
        if stopped:
            reason = requeue.stop_reason()
            manifest.end_attempt(reason, f"{signal.Signals(stop.signum).name} at step {manifest.data['last_step']}")
            manifest.update(status=REQUEUED)
        else:
            manifest.end_attempt(COMPLETED)
        exit_code = 0
    except BaseException as e:
        if _terminated_after_stop:
            # What broke first (e.g. W&B's service, killed by the same SIGTERM) is the stop, not a failure.
            what = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
            manifest.end_attempt(requeue.stop_reason(), f"{signal.Signals(stop.signum).name} then SIGTERM at step "
                                 f"{manifest.data['last_step']}, before the checkpoint ({what})")
            mark_logged(e)
            raise
        if _terminated:  # whatever broke first (e.g. W&B's service, killed by the same signal)
            manifest.end_attempt(CANCELLED, "terminated by SIGTERM (scancel or the time limit)")
            mark_logged(e)
            raise
        summary = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
        logger.opt(exception=e).error(f"run failed: {summary}")
        manifest.end_attempt(FAILED, summary)
        mark_logged(e)
        raise
    finally:
        from rlvr_vocab.tracking import finish_wandb

        finish_wandb(wandb_run, exit_code)
        signal.signal(signal.SIGTERM, previous_sigterm)
        if lease is not None:
            lease.release()
    if stopped and is_main_process():
        # Outside the try: under submitit this exits the process once the job is requeued.
        why_not = requeue.requeue(cfg.max_requeues)
        if why_not:
            final = manifest.data["attempts"][-1]["end_state"]
            manifest.update(status=final, error=f"not requeued: {why_not}; continue with `rlvr-vocab resume`")
            logger.warning(f"not requeued: {why_not}; the latest checkpoint is kept")
        requeue.uninstall()
    return _result(manifest)


def in_slurm_job() -> bool:
    return "SLURM_JOB_ID" in os.environ


def _validate_or_record_failure(cfg: DictConfig) -> Plan:
    """Validate; inside a SLURM job a failure is also recorded in the run dir, where `status` sees it.

    (At submission the same checks passed, so this is e.g. a data set removed since then.)
    """
    try:
        return validate(cfg)
    except ConfigError as e:
        if in_slurm_job() and cfg.run_name and _safe_name(cfg.exp_name) and _safe_name(cfg.run_name):
            run_dir = Path(cfg.experiments_root) / cfg.exp_name / cfg.run_name
            run_dir.mkdir(parents=True, exist_ok=True)
            setup_logging(run_dir / "train.log")
            logger.error(f"invalid config at job start: {e}")
            manifest = Manifest.load_or_create(run_dir, cfg.exp_name, cfg.run_name)
            manifest.data.update(sweep_id=cfg.sweep_id, overrides=_task_overrides())
            manifest.start_attempt()
            manifest.end_attempt(FAILED, f"ConfigError: {e}")
        raise


def _safe_name(name: str | None) -> bool:
    try:
        check_name("name", name)
    except ConfigError:
        return False
    return name is not None


def _already_complete(manifest: Manifest, plan: Plan) -> bool:
    return (
        manifest.data["status"] == COMPLETED
        and (plan.run_dir / "final").is_dir()
        and manifest.data["last_step"] >= plan.grpo_kwargs["max_steps"]
    )


def _result(manifest: Manifest) -> dict[str, Any]:
    d = manifest.data
    return {k: d.get(k) for k in ("status", "run_id", "run_dir", "last_step", "wandb_id", "metrics", "eval")}


def _run_grpo(cfg: DictConfig, plan: Plan, manifest: Manifest, stop: requeue.StopRequest | None) -> None:
    from accelerate import PartialState
    from transformers import PrinterCallback, set_seed
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_vocab.data import load_splits, to_prompts
    from rlvr_vocab.eval.heldout import held_out_eval, summary
    from rlvr_vocab.modeling import load_model_and_tokenizer, lora_config, model_path, save_final
    from rlvr_vocab.reasoning_vocab import ReasoningVocabGRPOTrainer, apply_reasoning_vocab
    from rlvr_vocab.rewards import build_reward_funcs
    from rlvr_vocab.run.callbacks import PeriodicEvalCallback, RunStateCallback, StopOnSignal, record_eval

    t0 = time.monotonic()
    set_seed(cfg.seed)
    checkpoint_dir = plan.run_dir / "checkpoints"
    if is_main_process():
        resume_from, skipped = checkpoints.latest_complete(checkpoint_dir)
        if skipped:
            manifest.update(skipped_checkpoints=manifest.data["skipped_checkpoints"] + skipped)
    # Every rank resumes from the checkpoint rank 0 chose, after it set incomplete ones aside.
    PartialState().wait_for_everyone()
    if not is_main_process():
        resume_from, _ = checkpoints.latest_complete(checkpoint_dir)

    # Rank 0 builds the embedded model alone: under torch.distributed, save_pretrained writes nothing on other ranks.
    with PartialState().main_process_first():
        path = model_path(cfg)
    model, tokenizer = load_model_and_tokenizer(cfg, path, plan.precision)
    # Before data, evals, the trainer and any resume: they all see the extended vocabulary.
    rv = apply_reasoning_vocab(model, tokenizer, cfg.model.reasoning_vocab)
    train_raw, test_raw = load_splits(cfg.dataset, cfg.seed)
    train_ds, test_ds = to_prompts(train_raw, tokenizer, cfg.dataset), to_prompts(test_raw, tokenizer, cfg.dataset)
    reward_funcs, _ = build_reward_funcs(cfg.reward)

    def evaluate(m) -> dict:
        return held_out_eval(m, tokenizer, test_ds, cfg, rv)

    evals = manifest.data["eval"]
    if cfg.eval.enabled and "initial" not in evals and is_main_process():
        initial = record_eval(manifest, "initial", evaluate(model), step=0)
        logger.info(f"held-out greedy accuracy before GRPO: {initial['accuracy']:.1%} ({summary(initial)})")
    periodic = ([PeriodicEvalCallback(manifest, evaluate, cfg.eval.eval_steps, summary)]
                if cfg.eval.enabled and cfg.eval.eval_steps else [])

    trainer_class, extra = (GRPOTrainer, {}) if rv is None else (ReasoningVocabGRPOTrainer, {"reasoning_vocab": rv})
    trainer = trainer_class(
        **extra,
        model=model,
        reward_funcs=reward_funcs,
        args=GRPOConfig(**plan.grpo_kwargs),
        train_dataset=train_ds,
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
        callbacks=[RunStateCallback(manifest, plan.keep_checkpoints), *periodic, StopOnSignal()],
    )
    # Metrics are logged as compact lines by RunStateCallback; the raw dict printer only adds noise.
    trainer.remove_callback(PrinterCallback)
    if resume_from is not None:
        logger.info(f"resumed from {resume_from.name}")
        manifest.data["attempts"][-1]["resumed_from_step"] = checkpoints.checkpoint_step(resume_from)
    args = trainer.args
    processes = f"{args.world_size} processes ({args.parallel_mode.value})" if args.world_size > 1 else "1 process"
    logger.info(f"start-up took {time.monotonic() - t0:.1f} s; training to step {plan.grpo_kwargs['max_steps']} "
                f"on {processes}")
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if stop is not None and stop.requested:
        return  # checkpointed for the requeue; the final model and eval come with the last attempt

    if not is_main_process():
        return
    final = save_final(trainer, tokenizer, plan.run_dir)
    manifest.data.update(final_model=str(final.relative_to(plan.run_dir)), last_step=trainer.state.global_step)
    manifest.data["metrics"].update(train_runtime=output.metrics.get("train_runtime"))
    if cfg.eval.enabled:
        after = record_eval(manifest, "final", evaluate(trainer.model), trainer.state.global_step)
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
