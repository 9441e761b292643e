"""The sbatch wrappers' own shell logic, run with bash outside Slurm."""

import re
import subprocess

import pytest
from conftest import REPO

WRAPPERS = ("train_baseline.sh", "train_reasoning.sh")


def function(script: str, name: str) -> str:
    """A shell function's definition, as written in the wrapper."""
    text = (REPO / "slurm" / script).read_text()
    found = re.search(rf"^{name}\(\) \{{\n.*?^\}}$", text, re.M | re.S)
    assert found, f"{script} defines no {name}()"
    return found.group(0)


def output_dir(script: str, *args: str, env_root: str | None) -> str:
    env = {"PATH": "/usr/bin:/bin", **({"RLVR_EXPERIMENTS_ROOT": env_root} if env_root is not None else {})}
    # The definition is evaluated alone: the rest of the wrapper needs Slurm.
    run = subprocess.run(["bash", "-c", 'eval "$1"; shift; slurm_output_dir "$@"', "bash",
                          function(script, "slurm_output_dir"), *args],
                         capture_output=True, text=True, env=env, check=True)
    return run.stdout.strip()


@pytest.mark.parametrize("script", WRAPPERS)
def test_an_experiments_root_override_decides_the_job_output_dir(script):
    args = ("training.learning_rate=3e-6", "experiments_root=/x", "run_name=a")
    assert output_dir(script, *args, env_root="/from/env") == "/x/_slurm"
    assert output_dir(script, "++experiments_root='/y z'", env_root="/from/env") == "/y z/_slurm"
    assert output_dir(script, "seed=1", env_root="/from/env") == "/from/env/_slurm"
    assert output_dir(script, "seed=1", env_root=None) == "experiments/_slurm"
    assert output_dir(script, "eval.experiments_root=/no", env_root=None) == "experiments/_slurm"
    text = (REPO / "slurm" / script).read_text()
    assert 'OUT_DIR="$(slurm_output_dir "$@")"' in text, "the wrapper asks the function with its own arguments"


def test_the_wrappers_pick_their_output_dir_alike():
    assert function(WRAPPERS[0], "slurm_output_dir") == function(WRAPPERS[1], "slurm_output_dir")


@pytest.mark.parametrize("script", WRAPPERS)
def test_only_the_header_asks_for_cpus(script):
    """`sbatch --cpus-per-task=1` overrides the header; nothing in the body may ask for 8 again."""
    lines = (REPO / "slurm" / script).read_text().splitlines()
    assert "#SBATCH --cpus-per-task=8" in lines
    body = [line for line in lines if not line.lstrip().startswith("#")]
    assert not [line for line in body if re.search(r"cpus|\s-c\s?\d", line)]
