"""The single-node Slurm of slurm/local_cluster.sh: whether a usable cluster answers here, and starting it."""

import subprocess
from pathlib import Path

from rlvr_vocab.slurm_client import cluster_problem

SCRIPT = Path(__file__).resolve().parent.parent / "slurm" / "local_cluster.sh"


def ensure_local_cluster(quiet: bool = True) -> str | None:
    """Start the local cluster unless a usable one answers; None once one does, else why not."""
    if cluster_problem() is None:
        return None
    start = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=quiet, text=True, timeout=900)
    if start.returncode:
        return (start.stderr or start.stdout or f"{SCRIPT} start failed").strip() if quiet else f"{SCRIPT} failed"
    return cluster_problem()
