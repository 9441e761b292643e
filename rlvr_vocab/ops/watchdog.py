"""The hang watchdog: a heartbeat of the job's progress, and a thread that ends a job that makes none.

Every rank notes its progress (the step, and the phase: startup, backoff, generation, reward, optimizer, checkpoint,
eval, final) in memory; rank 0 also writes it to the run dir's heartbeat file at most once a second, where `rlvr-vocab
status` reads it to show a RUNNING run as STALLED after `watchdog.stall_after_s` without progress. When a rank sees
no progress for `watchdog.kill_after_s`, it dumps every thread's Python stack (faulthandler) into its log; rank 0
then records the attempt as STALLED with the phase and ends the job, and the retry policy decides what follows.

Time the process did not run (Slurm suspended the job, or gang scheduling stopped it) is not time without progress:
the watchdog thread sees it as a gap between its own checks and does not count it.
"""

import faulthandler
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.run.layout import RunPaths

PHASES = ("startup", "backoff", "generation", "reward", "optimizer", "checkpoint", "eval", "final")
# Asks every rank of the job for its stacks (faulthandler): SIGUSR2 is the stop signal, SIGUSR1 is free.
DUMP_SIGNAL = signal.SIGUSR1
_WRITE_EVERY_S = 1.0


@dataclass
class WatchdogConfig:
    """`watchdog`: hang detection. The defaults suit GPU steps of seconds to a few minutes."""

    enabled: bool = True
    # `status` shows a RUNNING run as STALLED after this long without progress.
    stall_after_s: int = 900
    # The job dumps its stacks and ends after this long without progress (0: never).
    kill_after_s: int = 3600
    # Seconds between the watchdog thread's checks.
    check_every_s: float = 10.0


def check_watchdog(cfg) -> None:
    for key in ("stall_after_s", "check_every_s"):
        if cfg[key] <= 0:
            raise ConfigError(f"watchdog.{key}", f"must be positive, got {cfg[key]}")
    if cfg.kill_after_s < 0:
        raise ConfigError("watchdog.kill_after_s", f"must be >= 0 (0: never), got {cfg.kill_after_s}")
    if cfg.kill_after_s and cfg.kill_after_s < cfg.stall_after_s:
        raise ConfigError("watchdog.kill_after_s", f"{cfg.kill_after_s} s is shorter than stall_after_s "
                          f"({cfg.stall_after_s} s)", "a job is shown STALLED before it is ended: raise kill_after_s")


class Watchdog:
    """This rank's progress and its watchdog thread."""

    def __init__(self, cfg, run_dir: Path, main: bool, on_stall: Callable[[str, float, str], None]):
        self.cfg, self.run_dir, self.main = cfg, Path(run_dir), main
        self.on_stall = on_stall  # (phase, seconds without progress, where the stacks went)
        self.step, self.phase = 0, "startup"
        self.clock = time.monotonic  # the monotonic clock runs on while the process is stopped
        self.progress_at = self.clock()
        self._written_at, self._dirty = 0.0, False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # Every rank dumps its stacks on the signal (to its own stderr: the job's per-task log).
        faulthandler.register(DUMP_SIGNAL, file=sys.stderr, all_threads=True, chain=False)
        self.beat(0, "startup")
        if self.cfg.enabled:
            self._thread = threading.Thread(target=self._watch, name="rlvr-watchdog", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        faulthandler.unregister(DUMP_SIGNAL)

    def beat(self, step: int, phase: str) -> None:
        """Progress: the job is at `step`, now in `phase`."""
        moved = (step, phase) != (self.step, self.phase)
        self.step, self.phase, self.progress_at = step, phase, self.clock()
        self._dirty = True
        # A new step or phase is written at once: a process frozen right after (SIGSTOP stops this thread too) leaves
        # the job's supervisor its true last phase. The same one again, at most once a second.
        if self.main and (moved or time.monotonic() - self._written_at >= _WRITE_EVERY_S):
            self._write()

    def _write(self) -> None:
        # No fsync: a heartbeat lost in a crash is no loss, and this runs several times a step.
        self._written_at, self._dirty = time.monotonic(), False
        path = RunPaths(self.run_dir).heartbeat
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        progressed = time.time() - (self.clock() - self.progress_at)  # wall time of the last progress
        tmp.write_text(json.dumps({"time": progressed, "step": self.step, "phase": self.phase,
                                   "stall_after_s": self.cfg.stall_after_s, "pid": os.getpid()}))
        os.replace(tmp, path)

    def _watch(self) -> None:
        # Ranks other than 0 wait longer than rank 0 and its supervisor (ops/supervisor.py): those record the stall
        # and end the job for all of them.
        limit = self.cfg.kill_after_s + (0 if self.main else 3 * self.cfg.check_every_s + 60)
        checked = self.clock()
        while not self._stop.wait(self.cfg.check_every_s):
            now = self.clock()
            stopped = now - checked - self.cfg.check_every_s
            if stopped > max(5.0, self.cfg.check_every_s):  # this process did not run: suspended, not stalled
                logger.info(f"the job was stopped for {stopped:.0f} s (suspended?): not counted as time without "
                            "progress")
                self.progress_at += stopped
                self._dirty = True  # the heartbeat's progress time moves on by as much
            checked = now
            if self.main and self._dirty:  # a phase change the throttled beat did not write yet
                self._write()
            idle = now - self.progress_at
            if not self.cfg.kill_after_s or idle < limit:
                continue
            logger.error(f"no progress for {idle:.0f} s in phase {self.phase} (step {self.step}): dumping every "
                         "thread's stack and ending the job")
            where = self._dump_stacks()
            self.on_stall(self.phase, idle, where)
            return

    def _dump_stacks(self) -> str:
        """Every thread's stack of every rank: this process's into train.log (rank 0) and stderr, the job's other
        ranks' into their own logs (asked by signal)."""
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        where = "the job's stderr"
        if self.main:
            log = RunPaths(self.run_dir).train_log
            with log.open("a") as f:
                f.write(f"--- stacks of every thread, pid {os.getpid()}, phase {self.phase}, step {self.step} ---\n")
                f.flush()
                faulthandler.dump_traceback(file=f, all_threads=True)
            where = f"{log} and the job's stderr"
            job = os.environ.get("SLURM_JOB_ID")
            if job and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
                from rlvr_vocab.slurm import client as slurm_client
                try:
                    slurm_client.signal_job(job, DUMP_SIGNAL.name.removeprefix("SIG"))
                    time.sleep(2)  # the other ranks write their stacks before the job ends
                except slurm_client.SlurmError as e:
                    logger.warning(f"could not ask the other ranks for their stacks: {e}")
        return where
