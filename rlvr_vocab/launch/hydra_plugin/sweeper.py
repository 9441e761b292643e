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
        target_has_gpu = bool(self.config.hydra.launcher.get("gpus_per_node"))

        plan = plan_sweep(
            jobs,
            compose=lambda overrides: loader.load_sweep_config(self.config, overrides),
            validate=lambda cfg: validate(cfg, target_has_gpu=target_has_gpu),
            sweep_id=self.config.sweep_id,
        )
        print(plan.summary())  # noqa: T201
        if not plan.to_submit:
            print("nothing to submit")  # noqa: T201
            return []
        with open_dict(self.config):
            self.config.sweep_id = plan.sweep_id
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        if hasattr(self.launcher, "prepare"):
            self.launcher.prepare(plan)
        results = self.launcher.launch([p.overrides for p in plan.to_submit], initial_job_idx=0)
        failed = [r for r in results if r.status.name == "FAILED"]
        if failed:
            sys.exit(1)
        return [results]
