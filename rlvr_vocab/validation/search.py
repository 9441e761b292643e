"""The `search` section checked before anything is submitted: its space against the config's keys, an objective the
job computes, a budget, and pruner rungs the objective is evaluated at. Each refusal is one ConfigError naming the
key of the search file and the fix.
"""

import math
from typing import Any, NamedTuple

from omegaconf import DictConfig, OmegaConf

from rlvr_vocab.config.schema import leaf_specs
from rlvr_vocab.config.search import AT_AUC, AT_FINAL, OBJECTIVE_SOURCES, PARAM_KEYS, PARAM_TYPES
from rlvr_vocab.core.config_types import check_value
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.keys import VOLATILE, within
from rlvr_vocab.eval.protocol import MEASURE_PREFIXES, MEASURES
from rlvr_vocab.run.identity import flatten
from rlvr_vocab.validation.names import suggest

# What the held-out evaluation records (rlvr_vocab.eval.generation.evaluate); pass@k besides when eval.k > 1.
HELDOUT_MEASURES = ("accuracy", "format_rate", "mean_length")
_NOT_SEARCHABLE = (*VOLATILE, "search", "hydra")


class Metric(NamedTuple):
    source: str  # heldout | benchmark
    benchmark: str | None
    measure: str | None  # None: a benchmark's headline measure (avg@n, else greedy accuracy)

    def __str__(self) -> str:
        return ".".join(p for p in (self.source, self.benchmark, self.measure) if p)


def parse_metric(text: str) -> Metric:
    source, _, rest = str(text).partition(".")
    if source not in OBJECTIVE_SOURCES or not rest:
        raise ConfigError("search.objective.metric", f"'{text}' is not a metric the job computes",
                          "use heldout.<measure> (accuracy, format_rate, mean_length, pass@k) or "
                          "benchmark.<name>[.<measure>] for one of eval.benchmarks")
    if source == "heldout":
        return Metric(source, None, rest)
    name, _, measure = rest.partition(".")
    return Metric(source, name, measure or None)


def step_of(at: str) -> int | None:
    """`objective.at` as a step number, None for final and auc."""
    return None if str(at) in (AT_FINAL, AT_AUC) else int(at)


def rungs(first_rung: int, reduction_factor: int, max_steps: int) -> list[int]:
    """ASHA's rungs in training steps: the first, then each `reduction_factor` times further, before the last step."""
    found, step = [], first_rung
    while 0 < step < max_steps and reduction_factor > 1:
        found.append(step)
        step *= reduction_factor
    return found


def evaluated_every(metric: Metric, ev, save_steps: int) -> int | None:
    """Steps between evaluations of the metric during training (None: only before and after training)."""
    if metric.source == "heldout":
        return ev.eval_steps
    return save_steps * ev.every_checkpoints  # chained evaluations of milestone checkpoints


def check_search_file(cfg: DictConfig) -> None:
    """The checks of `cfg.search` that need no training values: the space, the metric, the budget, the seeds."""
    search = cfg.search
    # Runs validate with the section gone (a trial's config is a run's): its own leaves are typed here.
    specs = leaf_specs()
    for key, value in flatten({"search": OmegaConf.to_container(search, resolve=True)}).items():
        if key in specs:
            check_value(key, value, specs[key])
    _check_space(cfg, search)
    _check_metric(search.objective, cfg.eval)
    budget = search.budget
    for key in ("n_trials", "workers"):
        if budget[key] < 1:
            raise ConfigError(f"search.budget.{key}", f"must be at least 1, got {budget[key]}")
    if budget.workers > budget.n_trials:
        raise ConfigError("search.budget.workers", f"is {budget.workers}, more than the {budget.n_trials} trials",
                          "lower workers: each worker trains whole trials, one after another")
    if search.sampler.startup_trials < 0:
        raise ConfigError("search.sampler.startup_trials", f"must be >= 0, got {search.sampler.startup_trials}")
    seeds = list(search.seeds)
    if len(set(seeds)) != len(seeds):
        raise ConfigError("search.seeds", f"repeats a seed ({seeds})", "list each seed once")
    if seeds and "seed" in search.space:
        raise ConfigError("search.space.seed", "is searched while search.seeds trains each trial over seeds",
                          "drop one of them")
    if search.storage is not None and "://" not in search.storage:
        raise ConfigError("search.storage", f"'{search.storage}' is not a database URL",
                          "give an Optuna RDB URL (postgresql://user@host/db), or null for a journal file under "
                          "the experiments root")


def check_search_steps(cfg: DictConfig, max_steps: int, save_steps: int) -> None:
    """The objective's step and the pruner's rungs against the training the run will do (training.max_steps and
    save_steps as validation completed them)."""
    search = cfg.search
    metric = parse_metric(search.objective.metric)
    every = evaluated_every(metric, cfg.eval, save_steps)
    _check_at(search.objective, metric, every, max_steps)
    _check_pruner(search.pruner, every, metric, max_steps)


def _check_space(cfg: DictConfig, search) -> None:
    if not search.space:
        raise ConfigError("search.space", "is empty", "add a parameter, e.g. "
                          "training.learning_rate: {type: float, low: 1e-7, high: 1e-5, log: true}")
    values = OmegaConf.to_container(cfg, resolve=False)
    for name in ("hydra", "search"):
        values.pop(name, None)
    flat = flatten(values)
    for key, entry in OmegaConf.to_container(search.space, resolve=True).items():
        where = f"search.space.{key}"
        if within(key, _NOT_SEARCHABLE):
            raise ConfigError(where, "cannot be searched: it names the run or the search, not the experiment",
                              "search a training, model or data value")
        if key not in flat:
            below = [k for k in flat if k.startswith(f"{key}.") and not k.rpartition(".")[2].startswith("_")]
            if below:
                raise ConfigError(where, "is a section, not a value", f"search one of its values, e.g. {below[0]}")
            hint = suggest(key, list(flat)) or "add it to the experiment first, or check the spelling"
            raise ConfigError(where, "is not a key of the config", hint)
        check_param(where, entry)


def check_param(where: str, entry: Any) -> None:
    """One parameter's entry: a range of floats or ints, or choices."""
    if not isinstance(entry, dict):
        raise ConfigError(where, f"must be a mapping, got {entry!r}",
                          "e.g. {type: float, low: 1e-7, high: 1e-5, log: true} or {type: categorical, choices: [...]}")
    for key in entry:
        if key not in PARAM_KEYS:
            raise ConfigError(f"{where}.{key}", "unknown key", f"{suggest(str(key), list(PARAM_KEYS))} "
                              f"keys: {', '.join(PARAM_KEYS)}".strip())
    kind = entry.get("type")
    if kind not in PARAM_TYPES:
        raise ConfigError(f"{where}.type", f"must be one of {', '.join(PARAM_TYPES)}, got {kind!r}")
    if kind == "categorical":
        _check_choices(where, entry)
    else:
        _check_range(where, kind, entry)


def _check_choices(where: str, entry: dict) -> None:
    extra = [k for k in ("low", "high", "log", "step") if k in entry]
    if extra:
        raise ConfigError(f"{where}.{extra[0]}", "is a range's key, but the type is categorical",
                          "give choices only, or type: float|int")
    choices = entry.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{where}.choices", "must be a non-empty list", "e.g. choices: [0.6, 0.8, 1.0]")
    if any(c is not None and not isinstance(c, str | int | float | bool) for c in choices):
        raise ConfigError(f"{where}.choices", "must hold plain values (numbers, strings, booleans, null)")
    if len({repr(c) for c in choices}) != len(choices):
        raise ConfigError(f"{where}.choices", f"repeats a value ({choices})", "list each choice once")


def _check_range(where: str, kind: str, entry: dict) -> None:
    if "choices" in entry:
        raise ConfigError(f"{where}.choices", f"is given, but the type is {kind}", "use type: categorical")
    wanted = (int,) if kind == "int" else (int, float)
    for key in ("low", "high"):
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, wanted) or not math.isfinite(value):
            raise ConfigError(f"{where}.{key}", f"must be {'an integer' if kind == 'int' else 'a number'}, "
                              f"got {value!r}")
    low, high, log, step = entry["low"], entry["high"], bool(entry.get("log")), entry.get("step")
    if low >= high:
        raise ConfigError(where, f"is an empty range: low {low} is not below high {high}", "set low < high")
    if log and low <= 0:
        raise ConfigError(f"{where}.low", f"is {low}, but a log scale needs low > 0", "raise low, or set log: false")
    if step is not None:
        if log:
            raise ConfigError(f"{where}.step", "cannot be combined with a log scale", "drop step or log")
        if isinstance(step, bool) or not isinstance(step, wanted) or step <= 0 or step > high - low:
            raise ConfigError(f"{where}.step", f"must be a positive number within the range, got {step!r}")


def _check_metric(objective, ev) -> None:
    metric = parse_metric(objective.metric)
    where = "search.objective.metric"
    if metric.source == "heldout":
        measures = [*HELDOUT_MEASURES, *([f"pass@{ev.k}"] if ev.k > 1 else [])]
        if not ev.enabled:
            raise ConfigError(where, f"is {metric} but the held-out evaluation is off", "set eval.enabled=true")
        if metric.measure not in measures:
            raise ConfigError(where, f"'{metric.measure}' is not a held-out measure of this experiment",
                              f"{suggest(str(metric.measure), measures)} measures: {', '.join(measures)}".strip())
    else:
        benchmarks = list(ev.benchmarks)
        if metric.benchmark not in benchmarks:
            raise ConfigError(where, f"benchmark '{metric.benchmark}' is not one of eval.benchmarks "
                              f"({', '.join(benchmarks) or 'none'})", "add it to eval.benchmarks, or pick another")
        if not ev.chain:
            raise ConfigError(where, f"is {metric} but the job evaluates no benchmark (eval.chain is false)",
                              "set eval.chain=true, or use a heldout.<measure> objective")
        if metric.measure is not None and metric.measure not in MEASURES and \
                not metric.measure.startswith(MEASURE_PREFIXES):
            raise ConfigError(where, f"'{metric.measure}' is not a benchmark measure",
                              f"{suggest(metric.measure, list(MEASURES))} measures: {', '.join(MEASURES)}".strip())
    if objective.wait_min < 0:
        raise ConfigError("search.objective.wait_min", f"must be >= 0, got {objective.wait_min}")


def _check_at(objective, metric: Metric, every: int | None, max_steps: int) -> None:
    at = str(objective.at)
    if at in (AT_FINAL, AT_AUC):
        return
    if not at.isdigit() or not 0 < int(at) <= max_steps:
        raise ConfigError("search.objective.at", f"'{at}' is not final, auc or a step in 1..{max_steps}",
                          "give final, auc, or an evaluation step")
    if int(at) != max_steps and not (every and int(at) % every == 0):
        raise ConfigError("search.objective.at", f"{metric} is not evaluated at step {at}",
                          f"use a multiple of {every}, or final" if every else "use final or auc")


def _check_pruner(pruner, every: int | None, metric: Metric, max_steps: int) -> None:
    if pruner.kind == "none":
        return
    if not every:
        raise ConfigError("search.pruner.kind", f"{pruner.kind} needs {metric} during training, but it is evaluated "
                          "only before and after", "set eval.eval_steps, or search.pruner.kind=none")
    if pruner.kind == "median":
        if not 0 <= pruner.warmup_steps < max_steps:
            raise ConfigError("search.pruner.warmup_steps", f"is {pruner.warmup_steps}, outside 0..{max_steps - 1}",
                              f"training stops at step {max_steps} (training.max_steps)")
        if pruner.startup_trials < 0:
            raise ConfigError("search.pruner.startup_trials", f"must be >= 0, got {pruner.startup_trials}")
        return
    if pruner.reduction_factor < 2:
        raise ConfigError("search.pruner.reduction_factor", f"must be at least 2, got {pruner.reduction_factor}")
    if pruner.first_rung < 1 or pruner.first_rung >= max_steps:
        raise ConfigError("search.pruner.first_rung", f"is {pruner.first_rung} but training stops at step "
                          f"{max_steps} (training.max_steps): no trial would be pruned",
                          f"use a step below {max_steps}")
    if pruner.first_rung % every:
        raise ConfigError("search.pruner.first_rung", f"is {pruner.first_rung} but {metric} is evaluated every "
                          f"{every} steps", f"use a multiple of {every}")
