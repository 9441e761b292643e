"""`rlvr-vocab eval --launcher`: a checkpoint evaluated as a Slurm job gives what training recorded."""

import pytest
from conftest import manifest
from test_eval import MEASURES, evaluated, trained, use_root  # noqa: F401  (the shared evaluated run)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_eval_as_a_slurm_job(slurm_cluster, use_root):  # noqa: F811
    result = evaluated("evald", "--checkpoint", "2", "--launcher", "slurm_cpu", "--wait")
    assert result["weights"] == "checkpoint-2"
    at_step_2 = manifest(use_root)["eval"]["history"][0]
    assert {k: result[k] for k in MEASURES} == {k: at_step_2[k] for k in MEASURES}
    assert list((use_root / "eval" / ".submitit").iterdir())  # submitit's job files, beside the results
