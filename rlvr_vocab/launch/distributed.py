"""torch.distributed's environment for a job of several Slurm tasks (processes), one per GPU or CPU rank.

Both launch paths set it up: submitit's launcher in the job (`export_in_submitit_job`), and `python -m
rlvr_vocab.train` itself when an sbatch wrapper starts it with `srun` on several tasks (`export_from_slurm`).
The rendezvous address is the job's first node (submitit's `TorchDistributedEnvironment`: the first host of
SLURM_JOB_NODELIST, a port from the job id).
"""

import os


def export_in_submitit_job() -> bool:
    """In a job submitit started (its Slurm or local executor): export the environment when it has several tasks."""
    import submitit

    if "RANK" in os.environ or submitit.JobEnvironment().num_tasks <= 1:
        return False
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return True


def export_from_slurm() -> bool:
    """Export MASTER_ADDR/PORT, RANK, WORLD_SIZE, LOCAL_RANK for this Slurm task; False when there is one task or
    the environment is set already (torchrun, accelerate launch)."""
    if "RANK" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) <= 1 or "SLURM_PROCID" not in os.environ:
        return False
    import submitit

    # Outside submitit's own sbatch script (an sbatch wrapper's srun) submitit must be told it runs under Slurm.
    told = "SUBMITIT_EXECUTOR" not in os.environ
    os.environ.setdefault("SUBMITIT_EXECUTOR", "slurm")
    try:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    finally:
        if told:
            del os.environ["SUBMITIT_EXECUTOR"]
    return True
