import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Offline everywhere: no hub downloads, no W&B servers.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session", autouse=True)
def shared_cache(tmp_path_factory):
    """One cache for the demo's built data and tiny models across the test session."""
    cache = os.environ.get("RLVR_TEST_CACHE_DIR") or str(tmp_path_factory.mktemp("rlvr_cache"))
    os.environ["RLVR_CACHE_DIR"] = cache
    return Path(cache)


@pytest.fixture(autouse=True)
def experiments_root(tmp_path, monkeypatch):
    root = tmp_path / "experiments"
    monkeypatch.setenv("RLVR_EXPERIMENTS_ROOT", str(root))
    return root


def run_module(*args: str, module: str = "rlvr_vocab.train", env: dict | None = None, timeout: int = 600,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <module> args` as a user would, capturing output."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
    )


def copy_fixture(name: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / name
    shutil.copy(FIXTURES / name, target)
    return target


def slurm_up() -> str | None:
    """None if a Slurm controller answers here, else why not."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%a %t"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo failed: {e}"
    if out.returncode or "up" not in out.stdout:
        return f"sinfo: {out.stderr.strip() or out.stdout.strip() or 'no partition up'}"
    if not any(state in out.stdout for state in ("idle", "mix", "alloc")):
        return f"no usable node: {out.stdout.strip()}"
    return None


@pytest.fixture(scope="session")
def slurm_cluster():
    """The real local Slurm; started by slurm/local_cluster.sh if it is not up.

    Skips with the reason when no cluster can be had, except under CI=true, where that fails.
    """
    why = slurm_up()
    if why is not None:
        start = subprocess.run(["bash", str(REPO / "slurm" / "local_cluster.sh"), "start"],
                               capture_output=True, text=True, timeout=900)
        why = slurm_up() if start.returncode == 0 else (start.stderr or start.stdout).strip()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Slurm cluster under CI=true: {why}")
        pytest.skip(f"no Slurm cluster reachable: {why}")
    return True
