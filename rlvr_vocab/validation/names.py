"""Names that become directory and W&B names: what they may contain, and a job's default run name."""

import difflib
import os
import re

from omegaconf import DictConfig

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.run.overrides import name_of_overrides

# Run, experiment and sweep names become directory names and W&B names.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+@-]*$")
WANDB_FORBIDDEN = set("/\\#?%:")
# Set by slurm/wrapper_job.sh in the jobs of the sbatch wrappers.
WRAPPER_ENV = "RLVR_SBATCH_WRAPPER"


def suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def check_name(where: str, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise ConfigError(where, "must be a non-empty string")
    bad = sorted(WANDB_FORBIDDEN & set(value))
    if bad or ".." in value or not _NAME_RE.match(value) or len(value) > 128:
        what = f"contains {' '.join(repr(c) for c in bad)}" if bad else f"'{value}' is not a safe name"
        raise ConfigError(
            where, what, "use letters, digits and . _ - = , + @ (no path separators, '..' or W&B's / \\ # ? % :)"
        )


def default_run_name() -> str:
    """A stable name for this job: SLURM's job id survives requeues; locally a timestamp."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"job{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return f"job{env['SLURM_JOB_ID']}"
    from datetime import datetime

    return datetime.now().strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()


def name_run(cfg: DictConfig, overrides: list[str]) -> None:
    """A job without a run_name takes its default one, before anything reads it: an sbatch wrapper's job is named by
    what its command line sets (the same command submitted again finds its run, as sweeps do), any other job by
    `default_run_name`."""
    if cfg.run_name is None:
        cfg.run_name = name_of_overrides(overrides) if os.environ.get(WRAPPER_ENV) else default_run_name()
