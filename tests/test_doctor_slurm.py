"""`rlvr-vocab doctor` against the real local cluster, also with slurmctld stopped."""

import subprocess
import time

import pytest
from conftest import REPO
from test_doctor import doctor, statuses

from rlvr_vocab.doctor.check import FAIL, OK

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_doctor_against_the_local_cluster(slurm_cluster, capsys):
    code, lines = doctor(capsys, "hydra/launcher=slurm_cpu")
    assert code == 0, lines
    for what in ("Slurm controller", "accounting", "partition", "account", "QOS", "job array", "sbatch --test-only"):
        assert statuses(lines)[what] == OK, lines[what]
    assert "debug (default)" in lines["partition"][0] and "MaxArraySize 201" in lines["job array"][0]

    code, lines = doctor(capsys)  # none named: the demo's own profile, the CPU one it is submitted with
    assert code == 0 and "slurm_cpu: none named" in lines["launcher profile"][0], lines
    code, lines = doctor(capsys, "hydra/launcher=slurm")  # the GPU profile asks for a GPU: the local nodes have none
    assert code == 2 and statuses(lines)["GPUs per node"] == FAIL and statuses(lines)["sbatch --test-only"] == FAIL

    for override, what, said in (
        ("hydra.launcher.partition=nope", "partition", "'nope' does not exist"),
        ("hydra.launcher.account=nobody", "account", "no association with account nobody"),
        ("hydra.launcher.qos=nope", "QOS", "nope does not exist"),
    ):
        code, lines = doctor(capsys, "hydra/launcher=slurm_cpu", override)
        assert code == 2 and statuses(lines)[what] == FAIL and said in lines[what][0], lines


def test_doctor_with_slurmctld_stopped(slurm_cluster, capsys):
    cluster = ["bash", str(REPO / "slurm" / "local_cluster.sh")]
    try:
        subprocess.run([*cluster, "stop", "slurmctld"], check=True, capture_output=True, timeout=120)
        start = time.monotonic()
        code, lines = doctor(capsys, "hydra/launcher=slurm_cpu")
        assert time.monotonic() - start < 60  # short timeouts: a dead controller never hangs the check
        assert code == 2 and statuses(lines)["Slurm controller"] == FAIL, lines
        assert "slurmctld" in lines["Slurm controller"][0] and "local_cluster.sh start" in lines["Slurm controller"][0]
        assert "accounting" not in lines  # nothing else asked of a controller that does not answer
    finally:
        subprocess.run([*cluster, "start"], capture_output=True, timeout=300)
    assert subprocess.run([*cluster, "status"], capture_output=True).returncode == 0
