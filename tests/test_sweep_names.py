"""Sweep run names and ids: deterministic, safe, and what `resume` resubmits."""

from pathlib import Path

from rlvr_vocab.cli.resume import command
from rlvr_vocab.launch.sweep import run_name_for, sweep_id_for, swept_keys
from rlvr_vocab.registry import RunView
from rlvr_vocab.validate import check_name

JOBS = [
    ["training.learning_rate=3e-06", "training.beta=0.04", "seed=1", "training.max_steps=10"],
    ["training.learning_rate=1e-06", "training.beta=0.04", "seed=1", "training.max_steps=10"],
    ["training.learning_rate=3e-06", "training.beta=0.0", "seed=2", "training.max_steps=10"],
]


def test_names_come_from_swept_values_only():
    keys = swept_keys(JOBS)
    assert keys == ["training.learning_rate", "training.beta", "seed"]
    assert run_name_for(JOBS[0], keys) == "lr=3e-06,beta=0.04,seed=1"


def test_names_are_safe_and_unique():
    jobs = [["dataset.path=/data/a b.jsonl"], ["dataset.path=../x/#b.jsonl"]]
    names = [run_name_for(j, swept_keys(jobs)) for j in jobs]
    for name in names:
        check_name("run_name", name)  # raises if unsafe
    assert len(set(names)) == 2
    long = [[f"model.x={'a' * 200}"], ["model.x=b"]]
    assert len(run_name_for(long[0], swept_keys(long))) <= 100


def test_sweep_id_is_stable_for_the_same_grid():
    assert sweep_id_for("demo", JOBS) == sweep_id_for("demo", list(reversed(JOBS)))
    assert sweep_id_for("demo", JOBS) != sweep_id_for("demo", JOBS[:2])


def test_resume_command_reuses_launcher_and_overrides(tmp_path):
    view = RunView(Path(tmp_path), {"run_name": "lr=1", "overrides": ["training.max_steps=10", "run_name='lr=1'"],
                                    "attempts": []},
                   [{"job_id": "5_0", "hydra_overrides": ["hydra/launcher=slurm", "hydra.mode=MULTIRUN",
                                                          "+hydra.launcher.additional_parameters.hold=true"]}])
    cmd = command(view, ["training.max_steps=20"], force=True, launcher=None)
    assert cmd[3:] == ["--multirun", "hydra/launcher=slurm", "run_name='lr=1'", "training.max_steps=20",
                       "force_resume=true"]
