"""The single-node Slurm of slurm/local_cluster.sh: whether a usable cluster answers here, and starting it."""

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "slurm" / "local_cluster.sh"


def cluster_problem() -> str | None:
    """None if a Slurm controller answers with a usable node, else why not."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%a %t"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo failed: {e}"
    if out.returncode or "up" not in out.stdout:
        return f"sinfo: {out.stderr.strip() or out.stdout.strip() or 'no partition up'}"
    if not any(state in out.stdout for state in ("idle", "mix", "alloc")):
        return f"no usable node: {out.stdout.strip()}"
    return None


def ensure_local_cluster(quiet: bool = True) -> str | None:
    """Start the local cluster unless a usable one answers; None once one does, else why not."""
    if cluster_problem() is None:
        return None
    start = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=quiet, text=True, timeout=900)
    if start.returncode:
        return (start.stderr or start.stdout or f"{SCRIPT} start failed").strip() if quiet else f"{SCRIPT} failed"
    return cluster_problem()
