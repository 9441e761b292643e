"""The job's supervisor: a small process beside rank 0 that ends a training process the watchdog cannot.

The watchdog (`ops/watchdog.py`) is a thread of the training process: a process frozen by SIGSTOP, or stuck in a
call that never releases the GIL, stops it too, and the job would hold its allocation until Slurm's time limit. The
supervisor reads rank 0's heartbeat file instead. When it has not moved for `watchdog.kill_after_s` plus a grace that
lets the watchdog act first (and dump the stacks, which only it can), the supervisor records the attempt STALLED at
the heartbeat's phase and step, lets the retry policy decide (a requeue, as the watchdog would ask for), and kills
the training process.

Started by the job with a pipe on its stdin: the pipe closes when the training process ends, however it ends, and
the supervisor with it. Time the supervisor itself did not run (Slurm suspended the job: it stops every process of
the job, this one too) is not counted, as in the watchdog.

    python -m rlvr_vocab.ops.supervisor RUN_DIR PID
"""

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from loguru import logger
from omegaconf import OmegaConf

from rlvr_vocab.core.logs import setup_logging
from rlvr_vocab.core.states import Event, RunState
from rlvr_vocab.ops import retry
from rlvr_vocab.ops.notify import notify, wait_for_pending
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.lease import current_holder
from rlvr_vocab.run.manifest import Manifest
from rlvr_vocab.slurm import client as slurm_client

# After kill_after_s, the watchdog's time to dump the stacks and end the job itself: the supervisor acts last.
_GRACE_CHECKS, _GRACE_S = 2, 30


def start(run_dir: Path, watchdog_cfg) -> subprocess.Popen | None:
    """The supervisor of this process (rank 0 of the job), or None when the watchdog never ends a job."""
    if not watchdog_cfg.enabled or not watchdog_cfg.kill_after_s:
        return None
    return subprocess.Popen([sys.executable, "-m", "rlvr_vocab.ops.supervisor", str(run_dir), str(os.getpid())],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=None)


def stop(process: subprocess.Popen | None) -> None:
    if process is not None:
        process.stdin.close()  # its cue; it exits within a check
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def _heartbeat(paths: RunPaths) -> dict:
    try:
        return json.loads(paths.heartbeat.read_text())
    except (OSError, ValueError):
        return {}


def _ended(pid: int, check_every_s: float) -> bool:
    """Whether the training process has ended: its end of the pipe closed, or this process was handed to another
    parent (a child the training process forked may keep the pipe open); waits up to one check for it."""
    ready, _, _ = select.select([sys.stdin], [], [], check_every_s)
    return (bool(ready) and not sys.stdin.buffer.read1(1)) or os.getppid() != pid


def supervise(run_dir: Path, pid: int) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C of a local run is the training process's to handle
    paths = RunPaths(run_dir)
    setup_logging(paths.train_log)  # what it does is in the run's log and the job's stderr
    cfg = OmegaConf.load(paths.config)
    watchdog = cfg.watchdog
    limit = watchdog.kill_after_s + _GRACE_CHECKS * watchdog.check_every_s + min(_GRACE_S, watchdog.kill_after_s)
    seen, progress_at = None, time.monotonic()
    checked = progress_at
    while not _ended(pid, watchdog.check_every_s):
        now = time.monotonic()
        stopped = now - checked - watchdog.check_every_s
        if stopped > max(5.0, watchdog.check_every_s):  # this process did not run either: the job was suspended
            progress_at += stopped
        checked = now
        holder = current_holder(paths)
        if holder is None or holder[1].get("pid") != pid:
            return 0  # the process gave up the run dir (its lease): nothing of the run's left to supervise
        beat = _heartbeat(paths)
        moved = (beat.get("time"), beat.get("step"), beat.get("phase"))
        if moved != seen:
            seen, progress_at = moved, now
        if now - progress_at >= limit:
            _end_stalled(cfg, paths, pid, beat, now - progress_at)
            return 1
    return 0


def _process_state(pid: int) -> str:
    """The kernel's word for the process: `T (stopped)`, `S (sleeping)`, ..."""
    try:
        return next(line.split(":", 1)[1].strip() for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("State:"))
    except (OSError, StopIteration):
        return "unknown"


def _end_stalled(cfg, paths: RunPaths, pid: int, beat: dict, idle: float) -> None:
    """Record the stall as the watchdog would have (before the kill: Slurm may end this process with the job), ask
    for the requeue the retry policy allows, and kill the training process."""
    # From the record to the kill, a SIGTERM (the requeue asked for, Slurm's SIGCONT+SIGTERM to the job) must not end
    # this process first: the training process could wake and write over the record.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    state = _process_state(pid)
    phase, step = beat.get("phase", "startup"), beat.get("step", 0)
    reason = (f"no progress for {idle:.0f} s in phase {phase} (step {step}); the training process ({state}) did "
              "not end itself, so the job's supervisor ended it (no stacks: its watchdog never ran)")
    logger.error(f"supervisor: {reason}")
    requeue = False
    manifest = Manifest.load(paths)
    recorded = manifest is not None and manifest.state == RunState.RUNNING
    if recorded:
        requeue = retry.record_failure(cfg.retry, manifest, retry.STALL, RunState.STALLED, reason)
    if recorded:  # once per event, as the watchdog would (a webhook)
        notify(cfg.notify, paths.run_dir, RunState.STALLED.value.lower(), manifest.last_attempt.get("n", 1), reason,
               {"step": step, "job": os.environ.get("SLURM_JOB_ID")})
        wait_for_pending(cfg.notify.timeout_s + 1)
    if requeue:
        try:
            slurm_client.requeue(os.environ["SLURM_JOB_ID"])  # ends every process of the job, this one included
        except slurm_client.SlurmError as e:
            manifest.last_attempt["retry"] = f"not requeued: {e}"
            manifest.set_state(Event.FAIL, RunState.FAILED, f"{reason}; not requeued: {e}")
            manifest.save()
    if not recorded:
        return  # the run's end was recorded already (its watchdog is ending it): nothing of ours to kill
    try:
        os.kill(pid, signal.SIGKILL)  # a stopped process dies of SIGKILL too
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1]), int(sys.argv[2])))
