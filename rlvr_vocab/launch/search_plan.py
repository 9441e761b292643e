"""Submission side of a search: its id, its checks before anything is submitted, its trials' configs, and the plan a
dry run prints.

The search id follows the sweep ids' rule: the same search file and the same fixed overrides give the same id, and so
the same study (re-submitting continues it); any other search gets another. A trial is an ordinary run named
`<search id>-t<number>` whose overrides are the fixed ones plus the values sampled for it: `rlvr-vocab resume RUN`
and every other command treat it as any run.
"""

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.keys import names_experiment, override_key, within
from rlvr_vocab.core.secrets import redact
from rlvr_vocab.run.layout import RootPaths
from rlvr_vocab.validation.search import (
    check_search_file,
    check_search_steps,
    evaluated_every,
    parse_metric,
    rungs,
)

# Besides the keys that name the experiment, what the objective is measured by.
_MEASURED_BY = ("training.max_steps", "training.save_steps", "eval")
# Set per trial: dropped from the fixed overrides.
_PER_TRIAL = ("search", "run_name", "sweep_id")


def search_id_for(exp_name: str, name: str, search: dict[str, Any], overrides: list[str]) -> str:
    """`<exp_name>-<search file>-<hash>` of what defines the search: its space, objective, sampler, pruner and
    seeds, and the fixed overrides that name the experiment or how the objective is measured. Not its budget (more
    trials continue the study), where it is stored, nor how long a worker waits for a result."""
    objective = {k: search["objective"][k] for k in ("metric", "at", "direction")}
    definition = {"space": search["space"], "objective": objective, "sampler": search["sampler"],
                  "pruner": search["pruner"], "seeds": search["seeds"]}
    fixed = sorted(o for o in overrides if _defines(override_key(o)))
    digest = hashlib.sha1(json.dumps([definition, fixed], sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{exp_name}-{name}-{digest}"


def _defines(key: str) -> bool:
    return not within(key, _PER_TRIAL) and (names_experiment(key) or within(key, _MEASURED_BY))


def trial_run_name(search_id: str, number: int, seed: int | None = None) -> str:
    return f"{search_id}-t{number:03d}" + (f"-seed{seed}" if seed is not None else "")


def _override_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back (floats in full: the run's identity is the value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


def trial_overrides(fixed: list[str], params: dict[str, Any], run_name: str, search_id: str,
                    seed: int | None) -> list[str]:
    """What `python -m rlvr_vocab.train` would be given to train this trial's run as a run of its own."""
    per_trial = {**params, **({"seed": seed} if seed is not None else {})}
    kept = [o for o in fixed if not within(override_key(o), _PER_TRIAL) and override_key(o) not in per_trial]
    return [*kept, *(f"{k}={_override_value(v)}" for k, v in per_trial.items()),
            f"run_name='{run_name}'", f"sweep_id={search_id}"]


def trial_config(cfg: DictConfig, params: dict[str, Any], run_name: str, search_id: str,
                 seed: int | None) -> DictConfig:
    """The search's config with this trial's values: a run's config, the search section gone."""
    trial = copy.deepcopy(cfg)
    with open_dict(trial):
        for key, value in params.items():
            OmegaConf.update(trial, key, value, merge=False)
        if seed is not None:
            trial.seed = seed
        trial.run_name, trial.sweep_id, trial.search = run_name, search_id, None
    return trial


def _probes(space: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The space's corners that validation sees: every parameter at its low end (first choice), then its high."""
    def end(entry: dict[str, Any], i: int) -> Any:
        return entry["choices"][-i] if entry["type"] == "categorical" else entry[("low", "high")[i]]

    return [{k: end(entry, i) for k, entry in space.items()} for i in (0, 1)]


@dataclass
class SearchPlan:
    # The search id: the study's name, and the sweep id its trials' runs carry (`rlvr-vocab status --sweep`).
    sweep_id: str
    search: dict[str, Any]
    exp_name: str
    experiments_root: str
    max_steps: int
    save_steps: int
    eval_every: int | None
    seed: int
    # The submission's overrides, less what each trial sets.
    fixed: list[str] = field(default_factory=list)

    @property
    def paths(self) -> RootPaths:
        """The root's paths: the search's folder (its journal, submission, claim lock, trials' leases) among them."""
        return RootPaths(self.experiments_root)

    @property
    def journal(self) -> Path:
        return self.paths.search_journal(self.sweep_id)

    def about(self) -> dict[str, Any]:
        """What the study records of its search (search_study.PLAN_ATTR): the definition and budget, not the storage
        URL (it may hold a password), and what the trials' rungs and runs follow from."""
        return {"search": {k: v for k, v in self.search.items() if k != "storage"}, "exp_name": self.exp_name,
                "max_steps": self.max_steps, "eval_every": self.eval_every}

    def worker_overrides(self) -> list[str]:
        """Each worker task's overrides: the search's own, with its id fixed (a worker does not recompute it)."""
        return [*self.fixed, f"sweep_id={self.sweep_id}"]

    def describe(self) -> str:
        s = self.search
        budget, objective, pruner, sampler = s["budget"], s["objective"], s["pruner"], s["sampler"]
        study = redact(s["storage"]) if s["storage"] else f"{self.journal} (Optuna journal; " + \
            ("exists: re-submitting continues it)" if self.journal.exists() else "new)")
        lines = [f"search {self.sweep_id}: {_count(budget['n_trials'], 'trial')} on "
                 f"{_count(budget['workers'], 'worker')} (job-array tasks, each training one trial after another)",
                 f"  study:      {study}"]
        width = max(len(k) for k in s["space"])
        for i, (key, entry) in enumerate(s["space"].items()):
            lines.append(f"  {'space:' if i == 0 else '':<11} {key:<{width}}  {_describe_param(entry)}")
        at = {"final": "at the final model", "auc": "area under its curve (its mean over training)"}.get(
            str(objective["at"]), f"at step {objective['at']}")
        lines.append(f"  objective:  {objective['direction']} {parse_metric(objective['metric'])} {at}")
        lines.append(f"  sampler:    {_describe_sampler(sampler)}")
        lines.append(f"  pruner:     {self._describe_pruner(pruner)}")
        seeds = ", ".join(map(str, s["seeds"]))
        lines.append(f"  seeds:      {seeds} per trial (the objective is their mean)" if seeds
                     else f"  seeds:      {self.seed} (the config's)")
        lines.append(f"  trials:     runs {Path(self.experiments_root) / self.exp_name}/{self.sweep_id}-tNNN, "
                     f"{self.max_steps} steps each; rlvr-vocab status --sweep {self.sweep_id}")
        return "\n".join(lines)

    def _describe_pruner(self, pruner: dict[str, Any]) -> str:
        every = f"; evaluated every {self.eval_every} steps" if self.eval_every else ""
        if pruner["kind"] == "asha":
            steps = ", ".join(map(str, rungs(pruner["first_rung"], pruner["reduction_factor"], self.max_steps)))
            return f"ASHA, rungs at steps {steps} (the top 1/{pruner['reduction_factor']} go on){every}"
        if pruner["kind"] == "median":
            return (f"median, from step {pruner['warmup_steps']} once {pruner['startup_trials']} trials have "
                    f"ended{every}")
        return "none: every trial trains to the end"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _describe_param(entry: dict[str, Any]) -> str:
    if entry["type"] == "categorical":
        return f"one of {entry['choices']}"
    scale = ", log" if entry.get("log") else f", step {entry['step']}" if entry.get("step") else ""
    return f"{entry['type']} in [{entry['low']}, {entry['high']}]{scale}"


def _describe_sampler(sampler: dict[str, Any]) -> str:
    if sampler["kind"] == "random":
        return f"random, seed {sampler['seed']}"
    return f"TPE, seed {sampler['seed']}, after {sampler['startup_trials']} random trials"


def plan_search(cfg: DictConfig, overrides: list[str], name: str, validate: Callable[[DictConfig], Any],
                processes: int = 1) -> SearchPlan:
    """Check the search and validate its trials' configs at the space's corners: before anything is submitted (and
    again where a worker starts, as every job validates at its start)."""
    if processes > 1:
        raise ConfigError("hydra.launcher", f"runs {processes} processes per job, but a search worker trains its "
                          "trials in one", "use a one-process launcher profile (hydra/launcher=slurm)")
    check_search_file(cfg)
    section = OmegaConf.to_container(cfg.search, resolve=True)
    search_id = cfg.sweep_id or search_id_for(cfg.exp_name, name, section, overrides)
    seed = (section["seeds"] or [None])[0]
    low, high = _probes(section["space"])
    planned = validate(trial_config(cfg, low, f"{search_id}-probe", search_id, seed))
    max_steps, save_steps = planned.grpo_kwargs["max_steps"], planned.grpo_kwargs["save_steps"]
    check_search_steps(cfg, max_steps, save_steps)
    validate(trial_config(cfg, high, f"{search_id}-probe", search_id, seed))
    every = evaluated_every(parse_metric(section["objective"]["metric"]), cfg.eval, save_steps)
    fixed = [o for o in overrides if override_key(o) != "sweep_id"]
    return SearchPlan(search_id, section, cfg.exp_name, str(cfg.experiments_root), max_steps, save_steps, every,
                      cfg.seed, fixed)
