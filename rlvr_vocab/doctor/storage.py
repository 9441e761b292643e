"""The file system runs write to: room for the runs' checkpoints and models, and an experiments root that is
writable and readable by teammates."""

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rlvr_vocab.doctor.check import FAIL, OK, WARN, Check
from rlvr_vocab.doctor.experiment import on_slurm, requested_gpus
from rlvr_vocab.doctor.model_size import model_shape

_GB = 1024**3
_MB = 1024**2


@dataclass(frozen=True)
class DiskEstimate:
    parameters: int
    checkpoint: int  # bytes of one checkpoint
    kept: int  # checkpoints on disk at once, at most
    models: int  # bytes of final/, the weights-only milestones and (with a reasoning vocabulary) model/

    @property
    def total(self) -> int:
        return self.checkpoint * self.kept + self.models

    def describe(self) -> str:
        count = f"{self.parameters / 1e9:.2f}B" if self.parameters >= 1e9 else f"{self.parameters / 1e6:.1f}M"
        return (
            f"{count} parameters ({self.kept} checkpoint{'s' if self.kept != 1 else ''} x {size(self.checkpoint)} "
            f"+ {size(self.models)} of weights-only models)"
        )


def size(n_bytes: float) -> str:
    return f"{n_bytes / _GB:.1f} GB" if n_bytes >= _GB else f"{n_bytes / _MB:.1f} MB"


def disk_estimate(cfg: DictConfig, gpu_target: bool) -> DiskEstimate | None:
    """Most bytes one run keeps under its run dir: weights plus AdamW's two moments (in the weights' dtype, as torch
    keeps them) per checkpoint, times the checkpoints kept at once, plus final/ (and model/ with a reasoning
    vocabulary, and the retention's weights-only milestones). With LoRA an upper bound (its checkpoints hold the
    adapter only)."""
    shape = model_shape(cfg)
    if shape is None:
        return None
    parameters, hidden, tied = shape
    rv = cfg.model.reasoning_vocab.size or 0
    parameters += rv * hidden * (1 if tied else 2)
    dtype = str((cfg.model.model_kwargs or {}).get("torch_dtype") or "")
    precision = cfg.precision if cfg.precision != "auto" else "bf16" if gpu_target else "fp32"
    # rlvr_vocab.model.modeling loads bf16 runs in bf16 and fp16 runs in fp32 (AMP's master weights).
    width = 2 if dtype in ("bfloat16", "float16") or (not dtype and precision == "bf16") else 4
    weights = parameters * width
    t = cfg.training
    checkpoint = weights * (1 if t.get("save_only_model") else 3)
    max_steps, save_steps = t.get("max_steps") or 0, t.get("save_steps") or 500
    saved = max(1, max_steps // save_steps) if max_steps > 0 else None
    limit = t.get("save_total_limit")
    # Rotation removes the oldest only once a newer checkpoint is complete; a chained milestone waits for its eval.
    kept = limit + 1 + int(bool(cfg.eval.chain)) if limit else saved or 1
    kept = min(kept, saved) if saved else kept
    every = cfg.retention.milestone_every_steps
    milestones = max_steps // every if every and max_steps > 0 else 0
    return DiskEstimate(parameters, checkpoint, kept, weights * (1 + milestones + int(bool(rv))))


def _existing(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _cuda_here() -> bool:
    import torch as th

    return th.cuda.is_available()


def disk_check(cfg: DictConfig, params: dict[str, Any], n_runs: int) -> Check:
    root = Path(cfg.experiments_root)
    free = shutil.disk_usage(_existing(root)).free
    gpu_target = bool(requested_gpus(params)) if on_slurm(params) else _cuda_here()
    estimate = disk_estimate(cfg, gpu_target)
    if estimate is None:
        return Check(
            WARN,
            "disk",
            f"{size(free)} free under {root}; the model's size is unknown here (not cached)",
            "rlvr-vocab prefetch first, then doctor again",
        )
    need = estimate.total * n_runs
    runs = f"{n_runs} runs x " if n_runs > 1 else ""
    found = f"~{size(need)} needed ({runs}{estimate.describe()}), {size(free)} free under {root}"
    if need > free:
        return Check(
            FAIL,
            "disk",
            found,
            "free space, lower training.save_total_limit, or point RLVR_EXPERIMENTS_ROOT at a larger file system",
        )
    return Check(OK, "disk", found)


def root_check(root: Path) -> Check:
    """The experiments root: writable (a file really written) and, for teammates, group-readable."""
    from rlvr_vocab.run.fsio import umask

    existing = _existing(root)
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".rlvr-doctor-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return Check(
            FAIL,
            "experiments root",
            f"cannot write {existing} ({e.strerror})",
            "RLVR_EXPERIMENTS_ROOT=<a writable directory>, or fix its permissions",
        )
    mask = umask()
    where = f"{root}" if existing == root.expanduser().absolute() else f"{root} (created by the first run)"
    if mask & 0o040:
        return Check(
            WARN,
            "experiments root",
            f"writable, but umask {mask:04o}: run files will not be group-readable",
            "umask 002 (or 022) before submitting, so teammates can read the runs",
        )
    mode = existing.stat().st_mode
    if existing == root.expanduser().absolute() and (mode & 0o050) != 0o050:
        return Check(
            WARN,
            "experiments root",
            f"{root} is not group-readable ({oct(mode & 0o777)})",
            f"chmod g+rx {root} (a shared root: chgrp <group> {root} && chmod g+rwxs {root})",
        )
    shared = ", setgid (new dirs keep its group)" if mode & 0o2000 else ""
    return Check(OK, "experiments root", f"{where} writable; umask {mask:04o}: runs group-readable{shared}")
