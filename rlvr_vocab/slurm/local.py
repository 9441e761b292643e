"""The single-node Slurm of slurm/local_cluster.sh: whether a usable cluster answers here, and starting it."""

import subprocess

from rlvr_vocab.core.resources import script_path
from rlvr_vocab.slurm.client import cluster_problem


def ensure_local_cluster(quiet: bool = True) -> str | None:
    """Start the local cluster unless a usable one answers; None once one does, else why not."""
    if cluster_problem() is None:
        return None
    script = script_path("local_cluster.sh")  # the checkout's, or the copy an installed wheel ships
    start = subprocess.run(["bash", str(script), "start"], capture_output=quiet, text=True, timeout=900)
    if start.returncode:
        return (start.stderr or start.stdout or f"{script} start failed").strip() if quiet else f"{script} failed"
    return cluster_problem()
