"""Sweep points: run names and ids (deterministic, safe, what `resume` resubmits) and their composition."""

from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.launch.hydra_plugin.sweeper import SweepComposer
from rlvr_vocab.launch.resume import command
from rlvr_vocab.launch.sweep import _identity, flat_config, plan_sweep, sweep_id_for, swept_keys
from rlvr_vocab.registry import RunView
from rlvr_vocab.run.identity import Identity
from rlvr_vocab.run.overrides import name_of_overrides, run_name_for
from rlvr_vocab.validation.names import check_name
from rlvr_vocab.validation.plan import validate

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


def test_two_named_runs_never_share_a_sweep_id():
    """Named runs that differ only in what may change between attempts (the watchdog) are two submissions."""
    stop = [["run_name=stop", "watchdog.stall_after_s=60"]]
    hang = [["run_name=hang", "watchdog.stall_after_s=600"]]
    assert sweep_id_for("demo", stop) != sweep_id_for("demo", hang)
    assert sweep_id_for("demo", stop) == sweep_id_for("demo", [["watchdog.stall_after_s=60", "run_name=stop"]])


def test_one_point_submitted_twice_names_one_run(experiments_root):
    """A one-value multirun is named from what it sets (not the clock): the same command finds the same run."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), job_name="train", version_base=None):
        loader = GlobalHydra.instance().hydra.config_loader
        composer = SweepComposer(loader, _master(loader))
        names = [plan_sweep([job], composer, lambda cfg: None, None, resolve=composer.resolved).points[0].name
                 for job in (["seed=2"], ["seed=2"], ["seed=2", "training.max_steps=100"], [])]
    assert names == ["demo/seed=2", "demo/seed=2", "demo/seed=2", "demo/run"]


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


def _master(loader):
    return loader.load_configuration("config", ["hydra/launcher=slurm_cpu", "experiment=demo", "seed=0,1"],
                                     run_mode=RunMode.MULTIRUN)


def test_resolved_points_equal_a_full_compose():
    """A family of points (the same keys set to other plain values) is resolved from one working config: every
    point's flat config and identity are a full compose's, interpolations that read a swept key included."""
    register_configs()
    families = [  # each sets the same keys, as a grid's points do
        [["training.learning_rate=1e-05", f"seed={i}", "sweep_id=s"] for i in range(3)]
        + [["training.learning_rate=1", "seed=3", "sweep_id=s"]],  # an int on a float: converted as composed
        # retry.timeout.budget is ${max_requeues}; exp_name reads the overrides in Hydra's node
        [[f"max_requeues={n}", f"seed={i}", "exp_name=${hydra.overrides.task.0}"] for n in (1, 2) for i in (0, 1)],
        [["model=tiny", f"seed={i}", "eval.enabled=false"] for i in range(3)],
        [["+extra=1", f"seed={i}"] for i in range(2)] + [["~training.dataloader_num_workers", "seed=5"]],
        [[f"model.generation_kwargs={{temperature: 0.{i}}}", "seed=1"] for i in range(1, 3)],
    ]
    with initialize_config_dir(config_dir=str(CONF), job_name="train", version_base=None):
        loader = GlobalHydra.instance().hydra.config_loader
        master = _master(loader)
        composer = SweepComposer(loader, master)
        for family in families:
            for overrides in family:
                full = loader.load_sweep_config(master, overrides)
                assert composer.resolved(overrides) == flat_config(full), overrides
                assert _identity(composer.resolved(overrides)) == Identity.of(full), overrides
        # Only plain values on existing keys make a family; the rest compose in full.
        families = {keys[1]: f for keys, f in composer.families.items()}
        assert families[("training.learning_rate", "seed", "sweep_id")].dynamic == ["prompt.instruction"]
        assert families[("max_requeues", "seed", "exp_name")].dynamic == ["prompt.instruction", "retry.timeout.budget"]
        assert families[("extra", "seed")] is None and families[("model.generation_kwargs", "seed")] is None
        for bad in (["training.learning_rate=1e-05", "seed=abc", "sweep_id=s"], ["training.learning_rat=1", "seed=1"]):
            with pytest.raises(ConfigCompositionException):
                composer.resolved(bad)


def test_points_that_differ_only_in_seed_are_validated_once(experiments_root):
    """Every point's identity is a full compose's; validation runs in full once per config but for the seed, and for
    every point whose run dir exists (what it holds may differ); an error names the point's run."""
    register_configs()
    jobs = [[f"training.learning_rate={lr}", f"seed={seed}"] for lr in ("1e-05", "3e-06") for seed in range(3)]
    validated = []

    def check(cfg):
        validated.append(cfg.run_name)
        if cfg.training.learning_rate < 2e-06:
            raise ConfigError("training.learning_rate", "is too small")
        return None

    with initialize_config_dir(config_dir=str(CONF), job_name="train", version_base=None):
        loader = GlobalHydra.instance().hydra.config_loader
        composer = SweepComposer(loader, _master(loader))
        plan = plan_sweep(jobs, composer, check, None, resolve=composer.resolved)
        assert validated == ["lr=1e-05,seed=0", "lr=3e-06,seed=0"]
        for point in plan.points:
            full = loader.load_sweep_config(composer.master, [o for o in point.overrides if "run_name" not in o])
            assert point.identity == Identity.of(full)
            assert point.run_dir == experiments_root / "demo" / point.run_dir.name and point.max_steps == 60
        (experiments_root / "demo" / "lr=3e-06,seed=2").mkdir(parents=True)
        validated.clear()
        plan_sweep(jobs, composer, check, None, resolve=composer.resolved)
        assert validated == ["lr=1e-05,seed=0", "lr=3e-06,seed=0", "lr=3e-06,seed=2"]
        jobs.append(["training.learning_rate=1e-06", "seed=0"])
        with pytest.raises(ConfigError, match=r"too small \(run lr=1e-06,seed=0\)"):
            plan_sweep(jobs, composer, check, None, resolve=composer.resolved)


def test_a_key_set_twice_names_the_run_once_with_its_last_value():
    """As Hydra applies them: a wrapper's documented overrides and the user's own may repeat a key."""
    job = ["model=tiny", "seed=1", "model=tiny_qwen3", "+model.model_kwargs.token=hf_secret"]
    assert run_name_for(job, ["model", "seed"]) == "model=tiny_qwen3,seed=1"
    assert name_of_overrides(["experiment=baseline", *job]) == "model=tiny_qwen3,seed=1", "no secret, no experiment"
    assert name_of_overrides(["experiment=baseline", "training.max_steps=9"]) == "run"
