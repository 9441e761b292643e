"""A trivial Hydra app: the sweep benchmark's baseline, submitted by plain hydra-submitit-launcher.

`python -m rlvr_vocab.bench.trivial_app --multirun hydra/launcher=submitit_slurm x=range(0,100)`
"""

from dataclasses import dataclass

import hydra
from hydra.core.config_store import ConfigStore


@dataclass
class TrivialConfig:
    x: int = 0


ConfigStore.instance().store(name="trivial", node=TrivialConfig)


@hydra.main(version_base=None, config_name="trivial")
def main(cfg: TrivialConfig) -> int:
    return cfg.x


if __name__ == "__main__":
    main()
