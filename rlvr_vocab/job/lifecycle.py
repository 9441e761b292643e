"""The job's lifecycle in a run dir, as one context manager: lease, identity, attempt record, signals, the end.

    with JobLifecycle(cfg, plan, overrides) as job:
        if job.already_complete is None:
            ...train, calling job.finish_training(step) once the last step is trained...

On entry (rank 0): take the run dir's lease, check the config's identity against the run's, settle how the previous
attempt ended, and either find the run already complete (nothing is touched) or start an attempt with its own config
snapshot. While inside: SIGUSR2 (Slurm's lead before the time limit, or preemption) asks the trainer to checkpoint
and stop at the end of the step; SIGTERM ends the job. On exit, whatever happened: the attempt's end is recorded, W&B
is closed, the lease released, and a stopped job requeued (or recorded as not requeued, saying why).
"""

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger
from omegaconf import DictConfig, OmegaConf

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.logs import quiet_progress_bars_off_tty, setup_logging
from rlvr_vocab.core.secrets import redact_obj, redact_override
from rlvr_vocab.core.states import Event, RunState
from rlvr_vocab.job import ranks
from rlvr_vocab.job.failure import one_line_summary
from rlvr_vocab.job.stop import StopRequest, requeue_job
from rlvr_vocab.ops import retry, supervisor
from rlvr_vocab.ops.watchdog import Watchdog
from rlvr_vocab.run import checkpoints, claims
from rlvr_vocab.run.fsio import atomic_write_text
from rlvr_vocab.run.identity import Identity, attempt_config_of, changes, fingerprint, flatten, resolved
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.lease import LeaseLost, RunLease
from rlvr_vocab.run.manifest import Manifest, parse_iso
from rlvr_vocab.run.overrides import run_overrides
from rlvr_vocab.slurm import client as slurm_client

STOP_SIGNAL = signal.SIGUSR2
# A stop signal this close to the time limit means "timing out"; earlier means preemption.
_TIMEOUT_WINDOW_S = 15 * 60


class Terminated(Exception):
    """SIGTERM (scancel, or the end of the time limit) reached the job."""


class RetryBudgetUsedUp(Exception):
    """Slurm requeued the job after a failure whose retry budget is used up: this attempt does not train."""


# The exit code of a job the watchdog ended (it shows in sacct).
STALLED_EXIT_CODE = 86


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class JobLifecycle:
    def __init__(self, cfg: DictConfig, run_dir: Path, max_steps: int, world_size: int, overrides: list[str],
                 search_trial: int | None = None):
        """`search_trial`: the trial this attempt trains for a search worker, recorded in the attempt: its end stands
        while the worker's job goes on to other trials (rlvr_vocab.run.manifest.end_stands)."""
        self.cfg, self.max_steps, self.world_size = cfg, max_steps, world_size
        self.search_trial = search_trial
        self.paths = RunPaths(run_dir)
        self.overrides = overrides
        self.main = is_main_process()
        self.lease: RunLease | None = None
        self.manifest: Manifest | None = None
        self.stop = StopRequest()
        self.already_complete: int | None = None
        self.training_finished = False
        # Why a search's pruner stopped the run (rlvr_vocab.job.search_callback): it ends PRUNED, never requeued.
        self.pruned: str | None = None
        self._terminated = False
        self._terminated_after_stop = False
        self._exiting = False  # in __exit__: a SIGTERM then is noted, not raised (it would lose the end being recorded)
        # A failure the retry policy retries: the job asks Slurm for the requeue last (`_requeue_for_retry`).
        self._retry_due = False
        self._closers: list[Callable[[int], None]] = []
        self.watchdog: Watchdog | None = None
        self.supervisor = None  # rank 0's: ends this process if it freezes (ops/supervisor.py)
        self._previous_handlers: dict[int, Any] = {}

    # ------------------------------------------------------------------ entry

    def __enter__(self) -> "JobLifecycle":
        if not self.main:
            setup_logging()
            quiet_progress_bars_off_tty()
            self.manifest = Manifest.load(self.paths, read_only=True) or Manifest.new(
                self.paths, self.cfg.exp_name, self.cfg.run_name, "", read_only=True)
            self._install_signals()
            self._start_watchdog()
            return self
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        self.lease = RunLease(self.paths)
        try:
            self.lease.acquire()
        except ConfigError:
            _remove_if_empty(self.paths.run_dir)
            raise
        try:
            self._open()
        except BaseException:
            self.lease.release()
            raise
        return self

    def _open(self) -> None:
        quiet_progress_bars_off_tty()
        identity = Identity.of(self.cfg)
        claimed = claims.claim(self.paths, identity, force=self.cfg.force_resume, replace_if_forced=True)
        manifest = Manifest.load(self.paths) or Manifest.new(self.paths, self.cfg.exp_name, self.cfg.run_name,
                                                             identity.fingerprint)
        manifest.guard = self.lease.check
        self.manifest = manifest
        manifest.settle_last_attempt()
        done = self._complete_step(manifest)
        if done is not None:
            self.already_complete = done
            logger.info(f"{self.paths.run_dir} is already complete at step {done} (max_steps {self.max_steps}): "
                        "nothing to do")
            return
        # Only a run that starts an attempt gets anything written, its log included.
        setup_logging(self.paths.train_log)
        if self.lease.taken_over:
            logger.info(f"taking over the run dir's lease: {self.lease.taken_over}")
        n = len(manifest.data["attempts"]) + 1
        shown = " ".join(run_overrides(self.overrides)) or "(none)"
        logger.info(f"run {self.cfg.exp_name}/{self.cfg.run_name}, attempt {n}; overrides: {shown}")
        if claimed == claims.FORCED:
            logger.warning(f"force_resume=true: the run continues with a changed config ({self.paths.identity})")
        config, changed = self._write_config_snapshots(n)
        manifest.data.update(sweep_id=self.cfg.sweep_id or manifest.data.get("sweep_id"),
                             overrides=run_overrides(self.overrides), max_steps=self.max_steps,
                             identity=identity.fingerprint)
        refusal = self._retry_budget_refusal()
        trial = {} if self.search_trial is None else {"search_trial": self.search_trial}
        manifest.start_attempt(world_size=self.world_size, config_fingerprint=fingerprint(config),
                               config_changes=changed, forced=claimed == claims.FORCED, **trial)
        if refusal is not None:
            manifest.end_attempt(Event.FAIL, RunState.FAILED, refusal)
            raise RetryBudgetUsedUp(refusal)
        self._install_signals()
        self._start_watchdog()
        self._back_off()

    def _retry_budget_refusal(self) -> str | None:
        """Slurm requeues a preempted or node-failed job on its own: past the class's budget, this attempt must
        not train (nothing is retried past its budget)."""
        attempts = self.manifest.data["attempts"]
        klass = retry.STATE_CLASS.get(attempts[-1].get("end_state") or "") if attempts else None
        if klass not in (retry.PREEMPTION, retry.NODE_FAIL) or attempts[-1].get("retry"):
            return None
        attempts[-1]["failure_class"] = klass
        ok, why = retry.decide(self.cfg.retry, klass, attempts)
        attempts[-1]["retry"] = why
        return None if ok else f"{why}; continue with `rlvr-vocab resume` (the retry.{klass}.budget)"

    def _back_off(self) -> None:
        """A retried failure's backoff, waited here: a requeued job's start time cannot be set from inside it."""
        attempts = self.manifest.data["attempts"]
        previous = attempts[-2] if len(attempts) > 1 else {}
        klass = previous.get("failure_class")
        ended = parse_iso(previous.get("ended"))
        if not klass or not ended or not str(previous.get("retry", "")).startswith("requeued"):
            return
        wait = self.cfg.retry[klass].backoff_s - (time.time() - ended)
        if wait > 0:
            logger.info(f"backing off {wait:.0f} s after the {klass.replace('_', ' ')} of attempt {previous['n']}")
            # Waiting is progress: the watchdog must not end the job for it, nor `status` show it STALLED.
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                self.beat(0, "backoff")
                time.sleep(min(left, 1.0))
            self.beat(0, "startup")

    def _start_watchdog(self) -> None:
        self.watchdog = Watchdog(self.cfg.watchdog, self.paths.run_dir, self.main, self._stalled)
        self.watchdog.start()
        if self.main:
            self.supervisor = supervisor.start(self.paths.run_dir, self.cfg.watchdog)

    def beat(self, step: int, phase: str) -> None:
        """Progress for the watchdog and `status`: at `step`, now in `phase`."""
        if self.watchdog is not None:
            self.watchdog.beat(step, phase)

    def _stalled(self, phase: str, idle: float, where: str) -> None:
        """The watchdog saw no progress (its thread; the main thread is stuck): record it, let the retry policy
        decide, and end this process (the other ranks go with the job)."""
        if self.main and self.manifest is not None and not self.manifest.read_only:
            step = self.watchdog.step
            reason = f"no progress for {idle:.0f} s in phase {phase} (step {step}); stacks in {where}"
            requeued = self._retry(retry.STALL, RunState.STALLED, reason)
            logger.error(f"stalled: {reason}; {'requeued' if requeued else 'not requeued'}")
            from rlvr_vocab.ops.notify import wait_for_pending

            self._notify(RunState.STALLED, reason)
            wait_for_pending(self.cfg.notify.timeout_s + 1)
            if requeued:
                self._requeue_for_retry()
        logger.complete()
        os._exit(STALLED_EXIT_CODE)

    def _retry(self, klass: str, attempt_state: RunState, reason: str) -> bool:
        """After a failure of this class: the run REQUEUED if the retry policy allows, else FAILED; whether a requeue
        is due (`_requeue_for_retry`, asked for last)."""
        return retry.record_failure(self.cfg.retry, self.manifest, klass, attempt_state, reason)

    def _requeue_for_retry(self) -> None:
        """Ask Slurm to requeue this job for the retry recorded; refused, the run is FAILED saying why (notified)."""
        attempt = self.manifest.last_attempt
        try:
            slurm_client.requeue(os.environ["SLURM_JOB_ID"])
        except slurm_client.SlurmError as e:
            from rlvr_vocab.ops.notify import wait_for_pending

            attempt["retry"] = f"not requeued: {e}"
            self.manifest.set_state(Event.FAIL, RunState.FAILED, f"{attempt.get('reason')}; not requeued: {e}")
            self.manifest.save()
            logger.error(self.manifest.data["error"])
            self._notify(RunState.FAILED, self.manifest.data["error"])
            wait_for_pending(self.cfg.notify.timeout_s + 1)

    def _notify(self, event: RunState, reason: str | None) -> None:
        """Tell the user (notify.events, a webhook) once per event; never blocks or fails the job."""
        from rlvr_vocab.ops.notify import notify

        notify(self.cfg.notify, self.paths.run_dir, event.value.lower(), self.manifest.last_attempt.get("n", 1),
               reason or "", {"step": self.manifest.data.get("last_step"), "job": os.environ.get("SLURM_JOB_ID")})

    def _complete_step(self, manifest: Manifest) -> int | None:
        """The step a COMPLETED run finished at when there is nothing more to train, else None."""
        if manifest.state != RunState.COMPLETED:
            return None
        final = checkpoints.final_step(self.paths)
        last = manifest.data.get("last_step") or 0
        return last if final is not None and final >= self.max_steps and last >= self.max_steps else None

    def _write_config_snapshots(self, n: int) -> tuple[dict[str, Any], list[str]]:
        """configs/attempt-N.yaml (this attempt's resolved config), config.yaml (the latest), overrides.yaml;
        returns this attempt's flattened config and what changed since the previous attempt."""
        container = OmegaConf.to_container(self.cfg, resolve=True)
        container.pop("hydra", None)
        text = OmegaConf.to_yaml(OmegaConf.create(redact_obj(container)))
        previous = self.paths.attempt_config(n - 1) if n > 1 else None
        if previous is not None and not previous.exists():
            previous = self.paths.config  # a run dir from before per-attempt configs
        config = attempt_config_of(resolved(self.cfg))
        changed: list[str] = []
        if previous is not None and previous.exists():
            before = attempt_config_of(flatten(OmegaConf.to_container(OmegaConf.load(previous))))
            changed = [f"{k}: {a} -> {b}" for k, a, b in changes(before, attempt_config_of(
                flatten(OmegaConf.to_container(OmegaConf.create(redact_obj(container))))))]
        self.paths.configs.mkdir(exist_ok=True)
        atomic_write_text(self.paths.attempt_config(n), text)
        atomic_write_text(self.paths.config, text)
        overrides = [redact_override(o) for o in self.overrides]
        atomic_write_text(self.paths.overrides, OmegaConf.to_yaml(OmegaConf.create(overrides)))
        return config, changed

    # ------------------------------------------------------------------ signals

    def _install_signals(self) -> None:
        self._previous_handlers[STOP_SIGNAL] = signal.signal(STOP_SIGNAL, self._on_stop)
        self._previous_handlers[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _restore_signals(self) -> None:
        for signum, handler in self._previous_handlers.items():
            if signum != STOP_SIGNAL:  # submitit's handler is called by `_requeue` when it is needed
                signal.signal(signum, handler)

    def _on_stop(self, signum, frame) -> None:
        if self.training_finished:
            self.stop.ignored = True
            logger.warning(f"received {signal.Signals(signum).name} after the last step: ignored, the final save "
                           "and evaluation go on")
            return
        if not self.stop.requested:
            self.stop.signum, self.stop.received_at = signum, time.time()
            logger.warning(f"received {signal.Signals(signum).name}: checkpointing after this step, then requeueing")

    def _on_sigterm(self, signum, frame) -> None:
        if self.stop.requested and not self.training_finished:
            self._terminated_after_stop = True
            return  # Slurm is already taking the job down for the requeue/preemption being handled
        self._terminated = True
        if not self._exiting:
            raise Terminated("terminated by SIGTERM (scancel or the time limit)")

    # ------------------------------------------------------------------ while training

    def on_exit(self, close: Callable[[int], None]) -> None:
        """Call `close(exit_code)` when the job ends (e.g. W&B's finish), whatever happens."""
        self._closers.append(close)

    def finish_training(self, step: int) -> None:
        """The last step is trained: stop signals from now on are ignored (the final save and eval go on)."""
        self.training_finished = step >= self.max_steps

    @property
    def stopped(self) -> bool:
        return self.stop.requested and not self.training_finished

    def record_checkpoint(self, path: Path, save_s: float, kept: list[dict]) -> None:
        self._copy_benchmarks()
        self.manifest.update(checkpoints=kept, last_step=checkpoints.checkpoint_step(path),
                             last_checkpoint=self.paths.relative(path), last_save_s=round(save_s, 2))

    def _copy_benchmarks(self) -> None:
        """run.json summarises the benchmark results evaluation jobs wrote (evals.json) so far."""
        from rlvr_vocab.eval.results import read_summary

        summary = read_summary(self.paths)
        if summary:
            self.manifest.data["benchmarks"] = summary

    # ------------------------------------------------------------------ exit

    def __exit__(self, exc_type, exc, tb) -> bool:
        exit_code = 0 if exc is None else 1
        stopped = False
        # srun or torchrun SIGTERMs this rank as another one fails: from here it is noted, never raised.
        self._exiting = True
        try:
            if self.watchdog is not None:
                self.watchdog.stop()
            supervisor.stop(self.supervisor)
            if self.main and self.already_complete is None and self.manifest is not None:
                stopped = self._record_end(exc)
                if not isinstance(exc, LeaseLost):
                    self._notify(self.manifest.state, self.manifest.data.get("error")
                                 or self.manifest.last_attempt.get("reason"))
            elif not self.main and exc is not None:
                ranks.record(self.paths.run_dir, one_line_summary(exc))  # for rank 0 to name the first cause
        finally:
            for close in self._closers:
                try:
                    close(exit_code)
                except Exception as e:  # closing a tracker must not hide how the job ended
                    logger.warning(f"closing failed: {one_line_summary(e)}")
            self._restore_signals()
            try:
                if self.main:
                    from rlvr_vocab.ops.notify import wait_for_pending

                    wait_for_pending(self.cfg.notify.timeout_s + 1)
                if stopped:
                    self._requeue()  # last: under submitit it exits the process once the job is requeued
                elif self._retry_due:
                    self._requeue_for_retry()  # last: Slurm may kill the job at once
            finally:
                if self.lease is not None:
                    self.lease.release()
        if not self.main and exc is not None:
            # Hydra's run_job would catch it and the task exit 0: `srun --kill-on-bad-exit` must see this rank fail.
            logger.opt(exception=exc).error(f"rank {ranks.rank()} failed: {one_line_summary(exc)}")
            logger.complete()
            os._exit(1)
        return False

    def _record_end(self, exc: BaseException | None) -> bool:
        """Record the attempt's end; True if the job stopped on the signal and should be requeued."""
        from rlvr_vocab.validation.user_errors import mark_logged

        manifest, step = self.manifest, self.manifest.data.get("last_step")
        try:
            on_disk = Manifest.load(self.paths, read_only=True)
        except ConfigError:
            on_disk = None  # unreadable: this process's record replaces it
        if manifest.state == RunState.RUNNING and on_disk is not None and on_disk.state != RunState.RUNNING:
            # The job's supervisor ended this attempt while the process was frozen: its record stands.
            logger.warning(f"attempt {manifest.last_attempt.get('n')} was recorded {on_disk.state.value} meanwhile "
                           f"({on_disk.last_attempt.get('reason')}): left as recorded")
            manifest.data = on_disk.data
            return False
        self._copy_benchmarks()
        if isinstance(exc, LeaseLost):
            logger.error(str(exc))
            mark_logged(exc)
            return False
        if exc is not None:
            mark_logged(exc)
            if self._terminated_after_stop:
                # What broke first (e.g. W&B's service, killed by the same SIGTERM) is the stop, not a failure.
                manifest.end_attempt(Event.STOP_END, self._stop_reason(),
                                     f"{self._signal_name()} then SIGTERM at step {step}, before the checkpoint "
                                     f"({one_line_summary(exc)})")
            elif self._terminated:
                peer = ranks.ended_by_peer(self.paths.run_dir) if self.world_size > 1 else None
                if peer is None:
                    manifest.end_attempt(Event.TERMINATE, RunState.CANCELLED,
                                         "terminated by SIGTERM (scancel or the time limit)")
                else:
                    logger.error(f"run failed: {peer}")
                    self._retry_due = self._retry(self._classify(peer), RunState.FAILED, peer)
            elif isinstance(exc, RetryBudgetUsedUp):
                logger.error(str(exc))
            else:
                summary = one_line_summary(exc)
                logger.opt(exception=exc).error(f"run failed: {summary}")
                reason, klass = (ranks.attribute(self.paths.run_dir, summary, self._classify) if self.world_size > 1
                                 else (summary, self._classify(summary)))
                self._retry_due = self._retry(klass, RunState.FAILED, reason)
            return False
        if self.pruned is not None:
            manifest.end_attempt(Event.PRUNE, RunState.PRUNED, self.pruned)
            manifest.update(error=self.pruned)  # the pruner's reason, where `status` shows a run's note
            return False
        if self.stopped:
            end = self._stop_reason()
            attempt = manifest.last_attempt
            attempt["failure_class"] = retry.STATE_CLASS[end.value]
            ok, why = retry.decide(self.cfg.retry, attempt["failure_class"], manifest.data["attempts"])
            attempt["retry"] = why
            if not ok:
                manifest.end_attempt(Event.STOP_END, end, f"{self._signal_name()} at step {step}")
                manifest.update(error=f"{why}; continue with `rlvr-vocab resume`")
                return False
            # Recorded before the requeue: once Slurm requeues the job it may kill it at any moment.
            manifest.end_attempt(Event.STOP_REQUEUE, RunState.REQUEUED, f"{self._signal_name()} at step {step}",
                                 attempt_state=end)
            return True
        why_not = checkpoints.incompleteness(self.paths.final)
        if why_not is not None:
            manifest.end_attempt(Event.FAIL, RunState.FAILED, f"final/ is not complete: {why_not}")
            return False
        manifest.end_attempt(Event.FINISH, RunState.COMPLETED)
        return False

    def _classify(self, summary: str) -> str:
        return retry.classify_exception(self.cfg.retry, summary)

    def _signal_name(self) -> str:
        return signal.Signals(self.stop.signum).name if self.stop.signum else "stop signal"

    def _stop_reason(self) -> RunState:
        """TIMEOUT if the signal came near the time limit, else PREEMPTED."""
        job = os.environ.get("SLURM_JOB_ID")
        left = slurm_client.time_left_s(job) if job else None
        return RunState.TIMEOUT if left is not None and left <= _TIMEOUT_WINDOW_S else RunState.PREEMPTED

    def _requeue(self) -> None:
        """Put this job back in the queue; if it cannot be, the run ends TIMEOUT/PREEMPTED saying why."""
        why_not = requeue_job(self._previous_handlers.get(STOP_SIGNAL), self.stop.signum)
        if why_not:
            self.manifest.set_state(Event.STOP_END, RunState(self.manifest.last_attempt["end_state"]))
            self.manifest.update(error=f"not requeued: {why_not}; continue with `rlvr-vocab resume`")
            logger.warning(f"not requeued: {why_not}; the latest checkpoint is kept")
            from rlvr_vocab.ops.notify import wait_for_pending

            self._notify(self.manifest.state, self.manifest.data["error"])
            wait_for_pending(self.cfg.notify.timeout_s + 1)

    def result(self) -> dict[str, Any]:
        d = self.manifest.data if self.manifest is not None else {}
        return {k: d.get(k) for k in ("status", "run_id", "run_dir", "last_step", "wandb_id", "metrics", "eval")}

    # ------------------------------------------------------------------ a start that cannot run

    @staticmethod
    def record_invalid_start(cfg: DictConfig, run_dir: Path, error: ConfigError, overrides: list[str]) -> None:
        """Inside a SLURM job, a config that no longer validates (e.g. a data set removed since submission) is
        recorded in the run dir, where `status` sees it; the job is not requeued."""
        paths = RunPaths(run_dir)
        paths.run_dir.mkdir(parents=True, exist_ok=True)
        lease = RunLease(paths)
        lease.acquire()
        try:
            setup_logging(paths.train_log)
            logger.error(f"invalid config at job start: {error}")
            stored = claims.stored_identity(paths)
            manifest = Manifest.load(paths) or Manifest.new(paths, cfg.exp_name, cfg.run_name,
                                                            stored.fingerprint if stored else "")
            manifest.guard = lease.check
            manifest.settle_last_attempt()
            manifest.data.update(sweep_id=cfg.sweep_id or manifest.data.get("sweep_id"),
                                 overrides=run_overrides(overrides))
            manifest.start_attempt()
            manifest.end_attempt(Event.FAIL, RunState.FAILED, f"ConfigError: {error}")
        finally:
            lease.release()


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
