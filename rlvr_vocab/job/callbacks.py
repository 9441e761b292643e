"""Trainer callbacks through which training reports to its `JobLifecycle`: progress, checkpoints, stop, evaluation.

Order matters within a step end: `JobControlCallback` (lease, step gate, stop agreed by all ranks) runs first, the
periodic evaluation then skips itself when the job is stopping, and `SaveTimerCallback` runs last so a checkpoint's
measured save time is the save alone.
"""

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accelerate import PartialState
from loguru import logger
from transformers import TrainerCallback

from rlvr_vocab.job.lifecycle import JobLifecycle
from rlvr_vocab.run import checkpoints
from rlvr_vocab.run.manifest import Manifest

# Metric writes between checkpoints are throttled: run.json is for humans and `status`, not a log.
_METRICS_EVERY_S = 15.0
# The compact progress line logged at each logging step (all metrics go to run.json and W&B).
_SHOWN = ("reward", "reward_std", "loss", "completions/mean_length", "train_runtime")
# Tests and debugging hold a job at a known point: while the file named here exists and holds a step number N, rank 0
# waits at the end of every step from N on; holding `final`, it waits after the last step, before the final save. It
# says where it waits in `<file>.at`, so a test can act on the job at exactly that point (nothing races the job).
STEP_GATE_ENV = "RLVR_STEP_GATE"


class RunStateCallback(TrainerCallback):
    """Records progress in run.json and metrics.jsonl; marks checkpoints complete and rotates old ones (rank 0)."""

    def __init__(self, job: JobLifecycle, keep_checkpoints: int | None, chain=None):
        self.job = job
        self.keep = keep_checkpoints
        # rlvr_vocab.job.chain.EvalChain: evaluation jobs for milestone checkpoints (None: none).
        self.chain = chain
        self._last_write = 0.0

    @property
    def manifest(self) -> Manifest:
        return self.job.manifest

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
        with self.job.paths.metrics.open("a") as f:
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
        path = self.job.paths.checkpoint(state.global_step)
        save_s = time.monotonic() - (getattr(state, "rlvr_save_started", None) or time.monotonic())
        checkpoints.mark_complete(path, save_s=round(save_s, 2))
        protected = None
        if self.chain is not None and self.chain.enabled:
            from rlvr_vocab.job.chain import needed_by_evaluation

            self.chain.on_checkpoint(path, state.global_step, state.max_steps)
            protected = needed_by_evaluation
        retention = self.job.cfg.retention
        checkpoints.rotate(self.job.paths.checkpoints, self.keep, protected, retention.milestone_every_steps)
        checkpoints.prune_set_aside(self.job.paths, retention.incomplete_grace_h)
        self.manifest.data["disk_bytes"] = checkpoints.disk_use(self.job.paths)
        # Only complete ones: a directory another rank or a killed save left behind cannot be resumed from.
        kept = [{"step": checkpoints.checkpoint_step(p), "path": self.job.paths.relative(p),
                 "save_s": checkpoints.marker(p).get("save_s")}
                for p in checkpoints.complete_checkpoints(self.job.paths.checkpoints)]
        self.job.record_checkpoint(path, save_s, kept)
        logger.info(f"checkpoint-{state.global_step} complete (saved in {save_s:.1f} s)")


class JobControlCallback(TrainerCallback):
    """The job's progress for the watchdog; at each step end: stop if the lease was lost; wait at the step gate; stop
    with a checkpoint when any rank got the stop signal."""

    def __init__(self, job: JobLifecycle):
        self.job = job

    def on_step_begin(self, args, state, control, **kwargs):
        self.job.beat(state.global_step + 1, "generation")

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.job.beat(state.global_step + 1, "optimizer")

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            if self.job.lease is not None:
                self.job.lease.check()
            wait_at_step_gate(state.global_step)
        if self.job.stop.agree(args.world_size):
            control.should_save = True
            control.should_training_stop = True
        self.job.beat(state.global_step, "checkpoint" if control.should_save else "generation")
        return control


class HeartbeatReward:
    """A reward function that tells the watchdog the job is computing rewards (a stuck reward call, e.g. a remote
    verifier, is the hang users see most), and where a test injects its fault (rlvr_vocab.ops.faults)."""

    def __init__(self, fn: Callable, job: JobLifecycle):
        from trl.trainer.utils import get_callable_name

        self.fn, self.job = fn, job
        self.__name__ = get_callable_name(fn)  # TRL names the reward's metrics by it

    def __call__(self, *args, **kwargs):
        from rlvr_vocab.ops.faults import maybe_inject

        step = self.job.watchdog.step if self.job.watchdog is not None else 0
        self.job.beat(step, "reward")
        maybe_inject(step, self.job.manifest.last_attempt.get("n", 1) if self.job.main else 1)
        return self.fn(*args, **kwargs)


def wait_at_step_gate(step: int | None) -> None:
    """Hold here while the step gate says so (`step` None: after the last step, before the final save)."""
    gate = os.environ.get(STEP_GATE_ENV)
    if not gate:
        return
    gate_path, logged = Path(gate), False
    while True:
        try:
            held_at = gate_path.read_text().strip()
        except OSError:
            return
        if step is None and held_at != "final" or step is not None and not (held_at.isdigit() and step >= int(held_at)):
            return
        if not logged:
            where = "after the last step" if step is None else f"at step {step}"
            logger.info(f"held {where} by the step gate {gate_path}")
            Path(f"{gate}.at").write_text("final" if step is None else str(step))
            logged = True
        time.sleep(0.2)


class DiskFull(Exception):
    """The next checkpoint would not fit: said before the save starts, never as a torn write."""


class DiskSpaceCallback(TrainerCallback):
    """Before each save, the free space where checkpoints go against the last complete checkpoint's size: a warning
    when two more would not fit, the attempt ended (its cause: the disk) when one would not."""

    def __init__(self, job: JobLifecycle):
        self.job = job

    def on_step_end(self, args, state, control, **kwargs):
        if not (control.should_save and state.is_world_process_zero):
            return
        complete = checkpoints.complete_checkpoints(self.job.paths.checkpoints)
        if not complete:
            return  # the first save: no size to go by
        needed = sum(checkpoints.marker(complete[-1]).get("files", {}).values())
        free = shutil.disk_usage(self.job.paths.checkpoints).free
        said = f"checkpoint-{state.global_step} needs about {needed / 2**20:.0f} MiB, {free / 2**20:.0f} MiB free"
        if free < needed * 1.1:
            raise DiskFull(f"disk full at {self.job.paths.checkpoints}: {said}; free space, or lower "
                           "training.save_total_limit, then `rlvr-vocab resume`")
        if free < 2 * needed:
            logger.warning(f"disk nearly full at {self.job.paths.checkpoints}: {said}")


class SaveTimerCallback(TrainerCallback):
    """Notes when a step's end hands over to the checkpoint save (last of the step-end callbacks)."""

    def on_step_end(self, args, state, control, **kwargs):
        state.rlvr_save_started = time.monotonic() if control.should_save else None


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
    history and W&B. The last step is left to the final evaluation after training; a stopping job skips it (its
    checkpoint must not wait behind an evaluation)."""

    def __init__(self, job: JobLifecycle, evaluate: Callable[[Any], dict[str, Any]], every: int, describe):
        self.job, self.evaluate, self.every, self.describe = job, evaluate, every, describe

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        if step % self.every or step >= state.max_steps or not state.is_world_process_zero:
            return
        if self.job.stop.agreed:
            logger.info(f"step {step}/{state.max_steps}: held-out evaluation skipped, the job is stopping")
            return
        self.job.beat(step, "eval")
        result = self.evaluate(model)
        record_eval(self.job.manifest, "history", result, step)
        state.log_history.append({**{f"eval/{k}": v for k, v in result.items()}, "step": step})
        logger.info(f"step {step}/{state.max_steps} held-out: {self.describe(result)}")
