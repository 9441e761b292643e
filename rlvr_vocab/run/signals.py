"""Job side of timeouts and preemption: checkpoint at the next step end, then requeue.

SLURM sends USR2 some minutes before the time limit (`--signal=USR2@<lead>`) and, with
`preempt_send_user_signal`, on preemption. Saving from inside a signal handler would catch
the trainer mid-step, so the handler only records the request; `callbacks.StopOnSignal` makes
the trainer save a checkpoint and stop after the current step, and `requeue()` then puts the job
back in the queue: through submitit's own handler when submitit launched us (it keeps its
timeout budget), else with `scontrol requeue` (the sbatch wrappers).
"""

import os
import signal
import subprocess
import time
from dataclasses import dataclass

from loguru import logger

from rlvr_vocab.run.manifest import PREEMPTED, TIMEOUT

STOP_SIGNAL = signal.SIGUSR2
# A signal this close to the time limit means "timing out"; earlier means preemption.
_TIMEOUT_WINDOW_S = 15 * 60


@dataclass
class StopRequest:
    signum: int | None = None
    received_at: float | None = None
    previous_handler: object = None

    @property
    def requested(self) -> bool:
        return self.signum is not None


_request = StopRequest()


def _record(signum, frame) -> None:
    if not _request.requested:
        _request.signum, _request.received_at = signum, time.time()
        logger.warning(f"received {signal.Signals(signum).name}: checkpointing after this step, then requeueing")


def current() -> StopRequest:
    return _request


def install() -> StopRequest:
    """Take over the stop signal (keeping submitit's handler, if any, for the requeue itself)."""
    _request.signum = _request.received_at = None
    _request.previous_handler = signal.signal(STOP_SIGNAL, _record)
    return _request


def uninstall() -> None:
    if _request.previous_handler is not None:
        signal.signal(STOP_SIGNAL, _request.previous_handler)


def any_rank_requested(world_size: int) -> bool:
    """All ranks must stop at the same step, or the next collective hangs: agree on the flag."""
    if world_size <= 1:
        return _request.requested
    import torch as th
    import torch.distributed as dist

    flag = th.tensor([int(_request.requested)], device="cuda" if th.cuda.is_available() else "cpu")
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _time_left_s() -> float | None:
    """Seconds until this job's time limit, from one squeue call (None if unknown)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout.strip()
    if out.returncode or not text or text in ("UNLIMITED", "NOT_SET", "INVALID"):
        return None
    days, _, hms = text.rpartition("-")
    parts = [int(p) for p in hms.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return int(days or 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


def stop_reason() -> str:
    """TIMEOUT if the signal came near the time limit, else PREEMPTED."""
    left = _time_left_s()
    return TIMEOUT if left is not None and left <= _TIMEOUT_WINDOW_S else PREEMPTED


def _submitit_handler():
    handler = _request.previous_handler
    owner = getattr(handler, "__self__", None)
    return handler if owner is not None and type(owner).__module__.startswith("submitit") else None


def requeue(max_requeues: int) -> str | None:
    """Put this job back in the queue; returns why not, if it was not requeued.

    Under submitit this does not return: submitit requeues and exits the process.
    """
    handler = _submitit_handler()
    if handler is not None:
        import submitit

        try:
            handler(_request.signum, None)  # checkpoint() -> requeue -> sys.exit
        except submitit.core.utils.UncompletedJobError as e:
            return str(e)
        return "submitit did not requeue"
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return "not running under SLURM"
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    if restarts >= max_requeues:
        return f"requeue budget used up ({restarts} of max_requeues={max_requeues})"
    result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if result.returncode:
        return f"scontrol requeue failed: {result.stderr.strip()}"
    logger.info(f"requeued SLURM job {job} (restart {restarts + 1} of at most {max_requeues})")
    return None
