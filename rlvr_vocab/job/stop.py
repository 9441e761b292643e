"""Stopping a job: the stop signal agreed on by every rank, and requeueing the job (through submitit or Slurm)."""

import os

from loguru import logger

from rlvr_vocab.job.failure import one_line_summary
from rlvr_vocab.slurm import client as slurm_client


class StopRequest:
    """The stop signal as this process received it, and what all ranks agreed on at the last step end."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.received_at: float | None = None
        self.agreed = False
        self.ignored = False  # training had finished: the final save and evaluation go on

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def agree(self, world_size: int) -> bool:
        """All ranks must stop at the same step, or the next collective hangs: agree on the flag."""
        if world_size <= 1:
            self.agreed = self.requested
            return self.agreed
        import torch as th
        import torch.distributed as dist

        flag = th.tensor([int(self.requested)], device="cuda" if th.cuda.is_available() else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.agreed = bool(flag.item())
        return self.agreed


def _submitit_handler(previous_handler):
    owner = getattr(previous_handler, "__self__", None)
    return previous_handler if owner is not None and type(owner).__module__.startswith("submitit") else None


def requeue_job(previous_handler, signum: int | None) -> str | None:
    """Requeue this job (the retry policy allowed it): through submitit's own handler when submitit launched us (it
    keeps its timeout budget, max_requeues), else with `scontrol requeue` (the sbatch wrappers). Returns why not, if
    it was not requeued.

    Under submitit this does not return: submitit requeues and exits the process.
    """
    handler = _submitit_handler(previous_handler)
    if handler is not None:
        import submitit

        try:
            handler(signum, None)  # checkpoint() -> requeue -> sys.exit
        except submitit.core.utils.UncompletedJobError as e:
            return str(e).strip().splitlines()[0]
        except Exception as e:  # noqa: BLE001 - any failure of submitit's requeue leaves the run not requeued
            return one_line_summary(e)
        return "submitit did not requeue"
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return "not running under SLURM"
    try:
        slurm_client.requeue(job)
    except slurm_client.SlurmError as e:
        return str(e)
    logger.info(f"requeued SLURM job {job} (restart {int(os.environ.get('SLURM_RESTART_COUNT', '0')) + 1})")
    return None
