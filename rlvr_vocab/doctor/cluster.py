"""The Slurm checks: does a controller answer, with a node up and accounting on, and would it take the profile's
jobs (its partition, account and QOS in rlvr_vocab.doctor.allocation; the array size; `sbatch --test-only`)."""

import tempfile
from typing import Any

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.doctor.allocation import association_checks, partition_checks
from rlvr_vocab.doctor.check import FAIL, OK, WARN, Check
from rlvr_vocab.doctor.experiment import on_slurm
from rlvr_vocab.slurm import client as slurm_client


def slurm_checks(params: dict[str, Any], n_runs: int) -> list[Check]:
    if not on_slurm(params):
        return [Check(OK, "Slurm", "not used (hydra/launcher=local runs here)")]
    down = slurm_client.controller_down()
    if down:
        from rlvr_vocab.core.resources import scripts_dir

        script = scripts_dir() / "local_cluster.sh"
        return [
            Check(
                FAIL,
                "Slurm controller",
                down,
                f"start slurmctld (the local cluster: bash {script} start; a "
                "cluster: ask its admins), or hydra/launcher=local",
            )
        ]
    checks = [Check(OK, "Slurm controller", "slurmctld answers (scontrol ping)")]
    nodes = slurm_client.cluster_problem()
    checks.append(
        Check(WARN, "Slurm nodes", nodes, "jobs wait until a node is up (sinfo -R says why)")
        if nodes
        else Check(OK, "Slurm nodes", "a node is up")
    )
    accounting = slurm_client.accounting_problem()
    checks.append(
        Check(
            WARN,
            "accounting",
            accounting,
            "rlvr-vocab status then sees only jobs still queued; ended ones show UNKNOWN until slurmdbd answers",
        )
        if accounting
        else Check(OK, "accounting", "on (sacct answers)")
    )
    checks += partition_checks(params)
    # Associations live in slurmdbd: without accounting there are none to ask about.
    if not accounting:
        checks += association_checks(params, n_runs)
    checks.append(_array_check(n_runs))
    checks.append(_test_only_check(params, n_runs))
    return checks


def _array_check(n_runs: int) -> Check:
    limit = slurm_client.max_array_size()
    if limit is None:
        return Check(WARN, "job array", "cannot read MaxArraySize (scontrol show config)")
    runs = f"{n_runs} run{'s' if n_runs != 1 else ''}"
    arrays = -(-n_runs // limit)
    # The launcher submits a sweep larger than MaxArraySize as several arrays.
    return Check(OK, "job array", f"{runs}, {'one array' if arrays == 1 else f'{arrays} arrays'}; MaxArraySize {limit}")


def _test_only_check(params: dict[str, Any], n_runs: int) -> Check:
    """The launcher's own pre-flight: its values type-checked, then `sbatch --test-only` of the script it submits."""
    from hydra.utils import instantiate

    with tempfile.TemporaryDirectory() as folder:
        # submitit's job folder: a throwaway, doctor writes nothing under the experiments root.
        launcher = instantiate({**params, "submitit_folder": f"{folder}/%j"})
        try:
            launcher.check_settings()
            launcher.preflight(n_runs)
        except ConfigError as e:
            return Check(FAIL, "sbatch --test-only", f"{e.where}: {e.problem}", e.fix)
    return Check(OK, "sbatch --test-only", "Slurm would accept the job with this profile's resources")
