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
