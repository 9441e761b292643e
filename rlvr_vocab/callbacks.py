"""Trainer callbacks that keep the run's manifest and checkpoints trustworthy."""

import json
import math
import time
from pathlib import Path

from accelerate import PartialState
from loguru import logger
from transformers import TrainerCallback

from rlvr_vocab import checkpoints
from rlvr_vocab.manifest import Manifest

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
        kept = [
            {"step": checkpoints.checkpoint_step(p), "path": str(p.relative_to(self.manifest.run_dir))}
            for p in checkpoints.list_checkpoints(checkpoint_dir)
        ]
        self.manifest.update(checkpoints=kept, last_step=state.global_step, last_checkpoint=kept[-1]["path"])
        logger.info(f"checkpoint-{state.global_step} complete")
