"""The package as users install it without a checkout: a built wheel, run from another directory."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def test_a_built_wheel_runs_from_any_directory(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "experiments", "build", "*.egg-info", "__pycache__", ".ci", "tests"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
                   check=True, capture_output=True)
    [wheel] = wheels.glob("rlvr_vocab-*.whl")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The wheel's package first on the path: it, not this checkout, is what runs.
    env = {**os.environ, "PYTHONPATH": str(site), "RLVR_EXPERIMENTS_ROOT": str(elsewhere / "experiments")}

    def run(*args):
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=elsewhere, env=env)

    where = run("-c", "import rlvr_vocab; print(rlvr_vocab.__file__); print(rlvr_vocab.CONF_DIR)")
    assert where.returncode == 0, where.stderr
    package, conf = where.stdout.split()
    assert package.startswith(str(site)) and conf == str(site / "rlvr_vocab" / "conf")
    dry = run("-m", "rlvr_vocab.train", "experiment=demo", "dry_run=true")
    assert dry.returncode == 0 and "config is valid" in dry.stdout, dry.stderr[-2000:]
    assert run("-m", "rlvr_vocab", "--help").returncode == 0
    assert not (elsewhere / "experiments").exists()  # a dry run writes nothing
