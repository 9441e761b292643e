"""The package as users install it without a checkout: a built wheel in a fresh venv, run from another directory."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import tomllib
from conftest import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.resources import script_path


@pytest.mark.slow
def test_a_built_wheel_runs_from_any_directory(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "experiments", "build", "*.egg-info", "__pycache__", ".ci", "tests"
        ),
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    [wheel] = wheels.glob("rlvr_vocab-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(REPO).as_posix() for p in (REPO / "rlvr_vocab").rglob("__init__.py")}
    assert {f"{p}/__init__.py" for p in packages - {"rlvr_vocab/launch/hydra_plugin"}} <= shipped
    assert {f"rlvr_vocab/slurm_scripts/{p.name}" for p in (REPO / "slurm").glob("*.sh")} <= shipped

    # A fresh venv outside the repo: the wheel alone, its dependencies seen through a .pth of this venv's
    # site-packages (only that directory: .pth files in it, such as this checkout's editable install, are not read).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with open(os.path.join(site, "deps.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["RLVR_EXPERIMENTS_ROOT"] = str(elsewhere / "experiments")

    def run(*args):
        return subprocess.run([*args], capture_output=True, text=True, cwd=elsewhere, env=env)

    where = run(python, "-c", "import rlvr_vocab; print(rlvr_vocab.__file__); print(rlvr_vocab.CONF_DIR)")
    assert where.returncode == 0, where.stderr
    package, conf = where.stdout.split()
    assert package.startswith(site) and conf == os.path.join(site, "rlvr_vocab", "conf")
    dry = run(python, "-m", "rlvr_vocab.train", "experiment=demo", "dry_run=true")
    assert dry.returncode == 0 and "config is valid" in dry.stdout, dry.stderr[-2000:]
    console = run(venv / "bin" / "rlvr-vocab", "--help")
    assert console.returncode == 0 and "doctor" in console.stdout and "prefetch" in console.stdout, console.stderr
    scripts = run(python, "-m", "rlvr_vocab.core.resources", "train_baseline.sh", "local_cluster.sh")
    assert scripts.returncode == 0, scripts.stderr
    for path, name in zip(scripts.stdout.split(), ("train_baseline.sh", "local_cluster.sh"), strict=True):
        assert path == os.path.join(site, "rlvr_vocab", "slurm_scripts", name)
        assert open(path).read() == (REPO / "slurm" / name).read_text()
    assert not (elsewhere / "experiments").exists()  # a dry run writes nothing
    # No checkout, so no commit: a snapshot of the installed code records the wheel it came from.
    taken = run(python, "-c",
                "from rlvr_vocab.run.code import ensure_snapshot; print(ensure_snapshot('root').resolve())")
    assert taken.returncode == 0, taken.stderr[-2000:]
    code = json.loads((Path(taken.stdout.strip()) / "code.json").read_text())
    assert code["git_commit"] is None and code["installed"]["wheel"].endswith(wheel.name), code
    assert code["installed"]["wheel_hash"].startswith("sha256="), code


def test_scripts_resolve_to_the_checkout():
    assert script_path("train_baseline.sh") == REPO / "slurm" / "train_baseline.sh"
    with pytest.raises(ConfigError, match="local_cluster.sh"):
        script_path("nope.sh")


def test_uv_lock_is_made_from_these_dependencies():
    """After changing the dependencies, run `uv lock` (where uv reaches PyPI) and commit uv.lock with them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    assert lock["requires-python"] == project["requires-python"]
    [root] = [p for p in lock["package"] if p.get("source") == {"editable": "."}]

    def extra(marker: str | None) -> str | None:
        found = re.search(r"extra == '([^']+)'", marker or "")
        return found.group(1) if found else None

    locked = {
        (r["name"], SpecifierSet(r.get("specifier", "")), extra(r.get("marker")))
        for r in root["metadata"]["requires-dist"]
    }
    groups = [(None, project["dependencies"]), *project["optional-dependencies"].items()]
    declared = {
        (canonicalize_name(req.name), req.specifier, group)
        for group, requirements in groups
        for req in map(Requirement, requirements)
    }
    assert locked == declared
