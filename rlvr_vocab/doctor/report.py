"""Every doctor check of one submission, in order, and the table and verdict `rlvr-vocab doctor` prints."""

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from rlvr_vocab.doctor.check import FAIL, WARN, Check
from rlvr_vocab.doctor.cluster import slurm_checks
from rlvr_vocab.doctor.environment import version_checks, wandb_check
from rlvr_vocab.doctor.experiment import compose_experiment, launcher_check, launcher_params
from rlvr_vocab.doctor.hub import hub_checks
from rlvr_vocab.doctor.node import gpu_checks
from rlvr_vocab.doctor.storage import disk_check, root_check


def run_checks(cfg: DictConfig, n_runs: int, overrides: list[str]) -> list[Check]:
    params = launcher_params(cfg)
    checks = [launcher_check(cfg, overrides)]
    checks += slurm_checks(params, n_runs)
    checks += gpu_checks(cfg, params)
    checks += version_checks(cfg)
    checks += hub_checks(cfg, overrides)
    checks.append(wandb_check(cfg))
    checks.append(disk_check(cfg, params, n_runs))
    checks.append(root_check(Path(cfg.experiments_root)))
    return checks


@dataclass(frozen=True)
class Report:
    checks: list[Check]
    exp_name: str
    n_runs: int
    launcher: str  # the profile checked, as `hydra/launcher=<profile>`

    @property
    def failed(self) -> int:
        return sum(c.status == FAIL for c in self.checks)

    def lines(self) -> list[str]:
        """One line per check (status, what, found, `-> fix`), then the verdict."""
        what_width = max(len(c.what) for c in self.checks)
        lines = [f"{c.status:<4}  {c.what:<{what_width}}  {c.found}{f'  -> {c.fix}' if c.fix else ''}"
                 for c in self.checks]
        runs = f"{self.n_runs} runs of " if self.n_runs > 1 else ""
        if self.failed:
            lines.append(f"{self.failed} check{'s' if self.failed > 1 else ''} failed: {runs}{self.exp_name} cannot "
                         f"run as configured ({self.launcher})")
            return lines
        warned = sum(c.status == WARN for c in self.checks)
        warnings = f" ({warned} warning{'s' if warned > 1 else ''})" if warned else ""
        lines.append(f"{runs}{self.exp_name} can run here with {self.launcher}{warnings}")
        return lines


def diagnose(overrides: list[str]) -> Report:
    """Can the submission these overrides make run from this machine? Overrides Hydra cannot compose raise its
    error, for the CLI to say in one line."""
    cfg, n_runs = compose_experiment(overrides)
    checks = run_checks(cfg, n_runs, overrides)
    return Report(checks, cfg.exp_name, n_runs, f"hydra/launcher={cfg.hydra.runtime.choices['hydra/launcher']}")
