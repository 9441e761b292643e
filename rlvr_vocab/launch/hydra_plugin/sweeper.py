"""`hydra/sweeper=rlvr`: Hydra's basic grid sweeper, plus what a cluster user needs before submitting.

Every point is named (from its swept values), composed and validated before anything is
submitted; completed runs are skipped and pending or running ones left alone; the rest go to
the launcher in one call, so a SLURM launcher submits one job array.
"""

import sys
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from rlvr_vocab.launch.sweep import plan_sweep
from rlvr_vocab.validate import validate


class RlvrSweeper(BasicSweeper):
    def __init__(self, params: dict[str, str] | None = None) -> None:
        super().__init__(max_batch_size=None, params=params)

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        loader = self.hydra_context.config_loader
        parsed = OverridesParser.create(config_loader=loader).parse_overrides([*self._parse_config(), *arguments])
        jobs = self.split_arguments(parsed, max_batch_size=None)[0]
        launcher = self.config.hydra.launcher
        on_slurm = "Slurm" in str(launcher.get("_target_"))
        # A SLURM job's machine is described by the launcher; local jobs run on this one.
        target_has_gpu = bool(launcher.get("gpus_per_node")) if on_slurm else None
        target_world_size = (launcher.get("nodes") or 1) * (launcher.get("tasks_per_node") or 1)

        if hasattr(self.launcher, "check_settings"):
            self.launcher.check_settings()
            if not self.config.dry_run:
                self.launcher.check_cluster_limits(len(jobs))
        plan = plan_sweep(
            jobs,
            compose=lambda overrides: loader.load_sweep_config(self.config, overrides),
            validate=lambda cfg: validate(cfg, target_has_gpu, target_world_size),
            sweep_id=self.config.sweep_id,
        )
        print(plan.summary())  # noqa: T201
        if not plan.to_submit:
            print("nothing to submit")  # noqa: T201
            return []
        with open_dict(self.config):
            self.config.sweep_id = plan.sweep_id
        if hasattr(self.launcher, "prepare"):
            self.launcher.prepare(plan)
        if self.config.dry_run:
            describe = getattr(self.launcher, "sbatch_script", lambda n: None)
            script = describe(len(plan.to_submit))
            print(f"dry run: nothing submitted{'; the sbatch script would be:' if script else ''}")  # noqa: T201
            if script:
                print(script)  # noqa: T201
            return []
        if hasattr(self.launcher, "preflight"):
            self.launcher.preflight(len(plan.to_submit))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        results = self.launcher.launch([p.overrides for p in plan.to_submit], initial_job_idx=0)
        failed = [r for r in results if r.status.name == "FAILED"]
        if failed:
            sys.exit(1)
        return [results]
