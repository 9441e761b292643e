"""The environment jobs run in: the libraries the group locked (uv.lock) and W&B's mode and credentials."""

import importlib.metadata
import os
from pathlib import Path

from omegaconf import DictConfig

from rlvr_vocab.doctor.check import FAIL, OK, WARN, Check
from rlvr_vocab.doctor.experiment import needs_vllm

LOCKED_PACKAGES = ("torch", "transformers", "trl", "vllm")
LOCK_FILE = Path(__file__).resolve().parents[2] / "uv.lock"  # the checkout's, beside the package


def locked_versions(lock: Path = LOCK_FILE) -> dict[str, set[str]] | None:
    """Package name -> the versions uv.lock pins (a package may be pinned per platform); None without a lock."""
    import tomllib

    try:
        data = tomllib.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    versions: dict[str, set[str]] = {}
    for package in data.get("package", []):
        versions.setdefault(package["name"], set()).add(str(package.get("version")))
    return versions


def version_checks(cfg: DictConfig, lock: Path = LOCK_FILE) -> list[Check]:
    locked = locked_versions(lock)
    checks = []
    for name in LOCKED_PACKAGES:
        pins = sorted((locked or {}).get(name, ()))
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is None:
            if name == "vllm" and not needs_vllm(cfg):
                checks.append(Check(OK, name, "not installed, not used (use_vllm=false, eval.backend=transformers)"))
            else:
                extra = " --extra gpu" if name == "vllm" else ""
                checks.append(
                    Check(
                        FAIL,
                        name,
                        "not installed",
                        f"uv sync{extra} (or pip install -e '.[gpu]')" if extra else "uv sync (or pip install -e .)",
                    )
                )
        elif locked is None:
            checks.append(Check(OK, name, f"{installed} (not compared: no uv.lock beside the package, a wheel)"))
        elif not pins or installed.split("+")[0] in pins:
            checks.append(Check(OK, name, f"{installed}" + (f" (uv.lock: {', '.join(pins)})" if pins else "")))
        else:
            checks.append(
                Check(
                    WARN,
                    name,
                    f"{installed}, uv.lock pins {', '.join(pins)}",
                    f"uv sync (or pip install {name}=={pins[-1]}): jobs then run what the group locked",
                )
            )
    return checks


def wandb_check(cfg: DictConfig) -> Check:
    from rlvr_vocab.validation.sections import wandb_credentials

    log = cfg.logging
    if log.backend != "wandb":
        return Check(OK, "W&B", f"not used (logging backend {log.backend})")
    mode = os.environ.get("WANDB_MODE") or log.mode
    source = "WANDB_MODE" if os.environ.get("WANDB_MODE") else "logging.mode"
    if mode == "online":
        credentials = wandb_credentials()
        if credentials is None:
            return Check(
                FAIL,
                "W&B",
                f"online ({source}) without credentials (no WANDB_API_KEY, no netrc entry)",
                "export WANDB_API_KEY (or wandb login), or WANDB_MODE=offline and wandb sync later",
            )
        return Check(
            OK,
            "W&B",
            f"online ({source}), credentials from {credentials}",
            "compute nodes without internet: WANDB_MODE=offline, then wandb sync <run dir>/wandb",
        )
    if mode in ("offline", "disabled"):
        return Check(
            OK,
            "W&B",
            f"{mode} ({source})" + (": wandb sync <run dir>/wandb from a login node" if mode == "offline" else ""),
        )
    return Check(FAIL, "W&B", f"unknown mode '{mode}' ({source})", "online, offline or disabled")
