"""Sweep points: run names and ids (deterministic, safe, what `resume` resubmits) and their composition."""

from pathlib import Path

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from rlvr_vocab.cli.resume import command
from rlvr_vocab.config import register_configs
from rlvr_vocab.launch.hydra_plugin.sweeper import SweepComposer
from rlvr_vocab.launch.sweep import run_name_for, sweep_id_for, swept_keys
from rlvr_vocab.registry import RunView
from rlvr_vocab.validate import check_name, validate

CONF = Path(__file__).resolve().parent.parent / "conf"

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
    view = RunView(Path(tmp_path), {"run_name": "lr=1", "sweep_id": "s", "attempts": [],
                                    "overrides": ["training.max_steps=10", "run_name='lr=1'", "sweep_id=s",
                                                  "force_resume=true", "seed=1"]},
                   [{"job_id": "5_0", "hydra_overrides": ["hydra/launcher=slurm", "hydra.mode=MULTIRUN",
                                                          "+hydra.launcher.additional_parameters.hold=true"]}])
    cmd = command(view, ["training.max_steps=20"], force=True, launcher=None)
    # One-off keys of earlier submissions (force_resume, sweep_id, run_name) are set once, by this resume only.
    assert cmd[3:] == ["--multirun", "hydra/launcher=slurm", "seed=1", "training.max_steps=20", "force_resume=true",
                       "run_name='lr=1'", "sweep_id=s"]
    again = command(view, [], force=False, launcher=None)
    assert "force_resume=true" not in again and sum(o.startswith("sweep_id=") for o in again) == 1


def test_fast_composition_equals_a_full_compose():
    register_configs()
    grid = [  # group overrides (plain, appended, deleted) among value overrides, as plan_sweep passes them
        ["model=tiny", "seed=0", "training.learning_rate=1e-05", "sweep_id=s", "run_name='lr=1e-05,seed=0'"],
        ["model=tiny", "seed=1", "training.learning_rate=3e-06", "sweep_id=s", "run_name='lr=3e-06,seed=1'"],
        ["seed=2", "model=tiny", "+model/lora=r16", "model.generation_kwargs={temperature: 0.7}", "run_name=a"],
        ["training=grpo_cluster", "training.max_steps=7", "+extra=1", "~training.dataloader_num_workers", "run_name=b"],
        ["dataset.embedded.n_train=50", "seed=3", "run_name=c"],
        ["hydra.job.chdir=false", "seed=4", "run_name=d"],  # composed in full
    ]
    with initialize_config_dir(config_dir=str(CONF), job_name="train", version_base=None):
        loader = GlobalHydra.instance().hydra.config_loader
        master = loader.load_configuration(
            "config", ["hydra/launcher=slurm_cpu", "experiment=demo", "seed=0,1"], run_mode=RunMode.MULTIRUN)
        fast = SweepComposer(loader, master)
        for overrides in grid:
            full, quick = loader.load_sweep_config(master, overrides), fast(overrides)
            assert OmegaConf.to_yaml(quick) == OmegaConf.to_yaml(full), overrides
            assert OmegaConf.is_struct(quick) and not OmegaConf.is_readonly(quick.hydra)
            assert validate(quick, False, 1) == validate(full, False, 1)
            assert OmegaConf.to_yaml(quick) == OmegaConf.to_yaml(full), overrides
        assert len(fast.bases) == 4  # one defaults list per distinct set of group overrides
