"""The sbatch wrappers' own shell logic, run with bash outside Slurm."""

import re
import subprocess

import pytest
from conftest import REPO

WRAPPERS = ("train_baseline.sh", "train_reasoning.sh")


SHARED = "wrapper_job.sh"


def function(script: str, name: str) -> str:
    """A shell function's definition, as written in the script."""
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


def test_an_experiments_root_override_decides_the_job_output_dir():
    args = ("training.learning_rate=3e-6", "experiments_root=/x", "run_name=a")
    assert output_dir(SHARED, *args, env_root="/from/env") == "/x/_slurm"
    assert output_dir(SHARED, "++experiments_root='/y z'", env_root="/from/env") == "/y z/_slurm"
    assert output_dir(SHARED, "seed=1", env_root="/from/env") == "/from/env/_slurm"
    assert output_dir(SHARED, "seed=1", env_root=None) == "experiments/_slurm"
    assert output_dir(SHARED, "eval.experiments_root=/no", env_root=None) == "experiments/_slurm"
    body = function(SHARED, "run_wrapped_training")
    assert 'out_dir="$(slurm_output_dir "$@")"' in body, "the job's output dir comes from the job's own arguments"


@pytest.mark.parametrize(("script", "experiment"), [("train_baseline.sh", "baseline"),
                                                    ("train_reasoning.sh", "reasoning_vocab")])
def test_each_wrapper_runs_the_shared_body_with_its_experiment(script, experiment):
    lines = (REPO / "slurm" / script).read_text().splitlines()
    assert 'source "$(python -m rlvr_vocab.core.resources wrapper_job.sh)"' in lines
    assert lines[-1] == f'run_wrapped_training {experiment} "$@"'


@pytest.mark.parametrize("script", WRAPPERS)
def test_only_the_header_asks_for_cpus(script):
    """`sbatch --cpus-per-task=1` overrides the header; nothing in the body may ask for 8 again."""
    lines = (REPO / "slurm" / script).read_text().splitlines()
    assert "#SBATCH --cpus-per-task=8" in lines
    lines += (REPO / "slurm" / SHARED).read_text().splitlines()
    body = [line for line in lines if not line.lstrip().startswith("#")]
    assert not [line for line in body if re.search(r"cpus|\s-c\s?\d", line)]
