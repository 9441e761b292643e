"""This node's GPUs and torch build, against what the experiment asks of them."""

import shutil
import subprocess
from typing import Any

from omegaconf import DictConfig

from rlvr_vocab.doctor.check import FAIL, OK, Check
from rlvr_vocab.doctor.experiment import needs_vllm, on_slurm, requested_gpus

_TIMEOUT_S = 30


def _nvidia_smi() -> list[str]:
    """`name, driver` of each GPU nvidia-smi sees (none without the tool or a driver)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return []
    return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else []


def gpu_checks(cfg: DictConfig, params: dict[str, Any]) -> list[Check]:
    try:
        import torch as th
    except ImportError as e:
        return [Check(FAIL, "torch", f"cannot be imported ({e})", "uv sync (or pip install -e .)")]
    gpus, here = requested_gpus(params), not on_slurm(params)
    build = f"torch {th.__version__} ({f'CUDA {th.version.cuda}' if th.version.cuda else 'CPU build'})"
    if th.cuda.is_available():
        names = sorted({th.cuda.get_device_name(i) for i in range(th.cuda.device_count())})
        bf16 = th.cuda.is_bf16_supported()
        found = f"{th.cuda.device_count()} x {', '.join(names)}; {build}; bf16 {'yes' if bf16 else 'no'}"
        if cfg.precision == "bf16" and not bf16:
            return [Check(FAIL, "GPU (this node)", found, "precision=auto (or fp16) on these GPUs")]
        return [Check(OK, "GPU (this node)", found)]
    seen = _nvidia_smi()
    if seen:
        return [
            Check(
                FAIL,
                "GPU (this node)",
                f"nvidia-smi sees {len(seen)} ({seen[0]}) but {build} cannot use them",
                "a torch build for this driver's CUDA (newer driver, or torch from an older CUDA index)",
            )
        ]
    if gpus and th.version.cuda is None:
        return [
            Check(
                FAIL,
                "GPU (this node)",
                f"{build}, and the jobs ask {gpus} GPU(s) per node: they run this environment",
                "install the CUDA build where jobs run: uv sync (PyPI's torch is the CUDA build "
                "on Linux), or pip install torch without a CPU index",
            )
        ]
    if gpus:
        return [
            Check(
                OK,
                "GPU (this node)",
                f"none here (a login node?); jobs get {gpus} per node from Slurm; {build}",
                "to check a compute node: srun --gpus=1 rlvr-vocab doctor <the same overrides>",
            )
        ]
    if here and (cfg.precision in ("bf16", "fp16") or needs_vllm(cfg)):
        what = "vLLM" if needs_vllm(cfg) else f"precision={cfg.precision}"
        return [
            Check(
                FAIL,
                "GPU (this node)",
                f"none visible, and {what} needs one (hydra/launcher=local runs here)",
                "precision=auto, or a GPU machine",
            )
        ]
    return [Check(OK, "GPU (this node)", f"none; {build}: training runs on CPU in fp32")]
