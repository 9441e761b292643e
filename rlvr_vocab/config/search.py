"""The `search` section (`+search=<file>`, conf/search/): an Optuna study over some config values, its trials trained
as ordinary runs by job-array workers (rlvr_vocab.launch.search_worker). Defaults live here; the files pick values.

    space:      config key -> {type: float|int, low, high, log, step} or {type: categorical, choices: [...]}
    objective:  what a trial scores: `heldout.<measure>` or `benchmark.<name>[.<measure>]`, at `final`, at a step, or
                `auc` (the curve's mean over training); maximized or minimized
    budget:     trials in all, and the workers (job-array tasks) that train them side by side
    sampler:    TPE (seeded) or random
    pruner:     ASHA (rungs in training steps), median, or none
    seeds:      each trial trains one run per seed (empty: the config's seed); the objective is their mean
"""

from dataclasses import dataclass, field
from typing import Any

PARAM_TYPES = ("float", "int", "categorical")
# Keys of one parameter's entry in `space`.
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices")
DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("tpe", "random")
PRUNERS = ("asha", "median", "none")
OBJECTIVE_SOURCES = ("heldout", "benchmark")
# `objective.at`, besides a step number.
AT_FINAL, AT_AUC = "final", "auc"


@dataclass
class ObjectiveConfig:
    metric: str = "heldout.accuracy"
    # final | auc | a step at which the metric is evaluated
    at: str = AT_FINAL
    direction: str = "maximize"
    # A benchmark's result comes from a chained evaluation job: the worker waits this long for it after training.
    wait_min: float = 60.0


@dataclass
class BudgetConfig:
    # Trials started in all (completed, pruned, failed or running); raising it and re-submitting continues the study.
    n_trials: int = 20
    # Job-array tasks, each training one trial after another.
    workers: int = 4


@dataclass
class SamplerConfig:
    kind: str = "tpe"
    seed: int = 0
    # Random trials before TPE models the results.
    startup_trials: int = 10


@dataclass
class PrunerConfig:
    kind: str = "asha"
    # asha: the first rung (training steps), each next one `reduction_factor` times further; a trial goes on past a
    # rung only in the top 1/reduction_factor of the trials that reached it.
    first_rung: int = 20
    reduction_factor: int = 3
    # median: no pruning before this step, nor before this many trials have ended.
    warmup_steps: int = 0
    startup_trials: int = 5


@dataclass
class SearchConfig:
    space: dict[str, Any] = field(default_factory=dict)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    seeds: list[int] = field(default_factory=list)
    # An Optuna RDB URL (postgresql://...); null: a journal file under the experiments root.
    storage: str | None = None


# The values a string of the section takes (rlvr_vocab.config.schema.CHOICES).
SEARCH_CHOICES: dict[str, tuple[str, ...]] = {
    "search.objective.direction": DIRECTIONS,
    "search.sampler.kind": SAMPLERS,
    "search.pruner.kind": PRUNERS,
}
