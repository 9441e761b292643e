"""Trainer callbacks that keep the run's manifest and checkpoints trustworthy."""

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accelerate import PartialState
from loguru import logger
from transformers import TrainerCallback

from rlvr_vocab.run import checkpoints
from rlvr_vocab.run import signals as requeue
from rlvr_vocab.run.manifest import Manifest

METRICS_NAME = "metrics.jsonl"
# Metric writes between checkpoints are throttled: run.json is for humans and `status`, not a log.
_METRICS_EVERY_S = 15.0
# The compact progress line logged at each logging step (all metrics go to run.json and W&B).
_SHOWN = ("reward", "reward_std", "loss", "completions/mean_length", "train_runtime")


class RunStateCallback(TrainerCallback):
    """Marks checkpoints complete, rotates old ones, and records progress in run.json (rank 0)."""

    def __init__(self, manifest: Manifest, keep_checkpoints: int | None):
        self.manifest = manifest
        self.keep = keep_checkpoints
        self._last_write = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.manifest.update(max_steps=state.max_steps, last_step=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        numbers = {k: v for k, v in logs.items() if isinstance(v, int | float) and math.isfinite(v)}
        self.manifest.data["metrics"].update(numbers, step=state.global_step)
        # The run's own metric history (plots work offline, without W&B); appended, one line a step.
        if self.manifest.read_only:
            return
        with (self.manifest.run_dir / METRICS_NAME).open("a") as f:
            f.write(json.dumps({"step": state.global_step, "time": time.time(), **numbers}) + "\n")
        shown = " ".join(f"{k}={numbers[k]:.4g}" for k in _SHOWN if k in numbers)
        if shown:
            logger.info(f"step {state.global_step}/{state.max_steps} {shown}")
        self.manifest.data["last_step"] = state.global_step
        if time.monotonic() - self._last_write > _METRICS_EVERY_S:
            self._last_write = time.monotonic()
            self.manifest.save()

    def on_save(self, args, state, control, **kwargs):
        # Every rank must have written its part before the checkpoint counts as complete.
        PartialState().wait_for_everyone()
        if not state.is_world_process_zero:
            return
        checkpoint_dir = Path(args.output_dir)
        path = checkpoint_dir / f"checkpoint-{state.global_step}"
        checkpoints.mark_complete(path)
        checkpoints.rotate(checkpoint_dir, self.keep)
        # Only complete ones: a directory another rank or a killed save left behind cannot be resumed from.
        kept = [
            {"step": checkpoints.checkpoint_step(p), "path": str(p.relative_to(self.manifest.run_dir))}
            for p in checkpoints.complete_checkpoints(checkpoint_dir)
        ]
        self.manifest.update(checkpoints=kept, last_step=state.global_step,
                             last_checkpoint=str(path.relative_to(self.manifest.run_dir)))
        logger.info(f"checkpoint-{state.global_step} complete")


def record_eval(manifest: Manifest, key: str, result: dict[str, Any], step: int) -> dict[str, Any]:
    """Keep a held-out evaluation in the manifest (`initial`, `final` or one `history` entry) and in W&B."""
    entry = {**result, "step": step}
    evals = manifest.data["eval"]
    if key == "history":
        # A step evaluated again after a resume replaces the lost attempt's entry.
        evals["history"] = [e for e in evals.get("history", []) if e.get("step") != step] + [entry]
        evals["history"].sort(key=lambda e: e["step"])
    else:
        evals[key] = entry
    manifest.save()
    import wandb

    if wandb.run is not None:
        # transformers' W&B callback plots everything against train/global_step.
        wandb.log({**{f"eval/{k}": v for k, v in result.items()}, "train/global_step": step})
    return entry


class PeriodicEvalCallback(TrainerCallback):
    """Held-out evaluation every `every` steps (rank 0), into the manifest's eval.history, the trainer's log
    history and W&B. The last step is left to the final evaluation after training."""

    def __init__(self, manifest: Manifest, evaluate: Callable[[Any], dict[str, Any]], every: int, describe):
        self.manifest, self.evaluate, self.every, self.describe = manifest, evaluate, every, describe

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        if step % self.every or step >= state.max_steps or not state.is_world_process_zero:
            return
        result = self.evaluate(model)
        record_eval(self.manifest, "history", result, step)
        state.log_history.append({**{f"eval/{k}": v for k, v in result.items()}, "step": step})
        logger.info(f"step {step}/{state.max_steps} held-out: {self.describe(result)}")


class StopOnSignal(TrainerCallback):
    """Turns a recorded stop request (`requeue.install`) into "save a checkpoint now and stop" at the step's end."""

    def on_step_end(self, args, state, control, **kwargs):
        if requeue.any_rank_requested(args.world_size):
            control.should_save = True
            control.should_training_stop = True
        return control
