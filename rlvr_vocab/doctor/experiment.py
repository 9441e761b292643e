"""The experiment doctor vets: its config as a submission composes it, and what its launcher profile asks."""

from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlvr_vocab.doctor.check import OK, Check


def named_launcher(overrides: list[str]) -> str | None:
    """The launcher profile the overrides name (`hydra/launcher=...`), if they do."""
    return next((o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("hydra/launcher=")), None)


def compose_experiment(overrides: list[str]) -> tuple[DictConfig, int]:
    """The experiment's config (a sweep's first point) with Hydra's settings, composed as a submission composes it,
    and the number of runs the overrides and `+sweep=` grid make. `hydra.launcher` is the profile the overrides name
    (`hydra/launcher=...`), else the experiment's own: the profile of its jobs, its eval.launcher (the demo's
    slurm_cpu, as `python -m rlvr_vocab.demo` submits it; a GPU experiment's slurm)."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rlvr_vocab import CONF_DIR
    from rlvr_vocab.config.schema import register_configs
    from rlvr_vocab.launch import register_hydra_plugins

    register_configs()
    register_hydra_plugins()
    parser = OverridesParser.create()

    def points(arguments: list[str]) -> list[list[str]]:
        return BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)[0]

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        if named_launcher(overrides) is None:
            own = compose("config", overrides=points(overrides)[0]).eval.launcher
            overrides = [f"hydra/launcher={own}", *overrides]
        first = points(overrides)
        cfg = compose("config", overrides=first[0], return_hydra_config=True)
        grid = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.get("params") or {}).items()]
        if not grid:
            return cfg, len(first)
        # The grid file's values first, then the command line's, as the sweeper orders them.
        every = points([*grid, *overrides])
        return compose("config", overrides=every[0], return_hydra_config=True), len(every)


def launcher_params(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def on_slurm(params: dict[str, Any]) -> bool:
    return "Slurm" in str(params.get("_target_"))


def requested_gpus(params: dict[str, Any]) -> int:
    gpus = params.get("gpus_per_node")
    return gpus if on_slurm(params) and isinstance(gpus, int) and gpus > 0 else 0


def needs_vllm(cfg: DictConfig) -> bool:
    return bool(cfg.training.get("use_vllm")) or (bool(cfg.eval.chain) and cfg.eval.backend == "vllm")


def launcher_check(cfg: DictConfig, overrides: list[str]) -> Check:
    """Which launcher profile the other checks vetted, and why that one."""
    from rlvr_vocab import CONF_DIR

    profile = cfg.hydra.runtime.choices["hydra/launcher"]
    if named_launcher(overrides) is not None:
        return Check(OK, "launcher profile", f"{profile}, as named (hydra/launcher={profile})")
    profiles = ", ".join(sorted(p.stem for p in (CONF_DIR / "hydra" / "launcher").glob("*.yaml")))
    return Check(OK, "launcher profile", f"{profile}: none named, so the experiment's own (its eval.launcher)",
                 f"to check another: hydra/launcher=<one of {profiles}>")
