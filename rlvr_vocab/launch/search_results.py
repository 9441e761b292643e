"""A search as its study and its trials' run dirs tell it, for `search status`, `report --search` and `compare`: each
trial's state, objective, reported curve and where it was pruned, the best so far and its runs, ASHA's rungs.

Read only: the study is loaded, never created, and nothing is written (no sampler or pruner is needed to read it).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.launch.search_study import PLAN_ATTR
from rlvr_vocab.run.layout import RootPaths
from rlvr_vocab.validation.search import rungs

# The order trials' states are counted in.
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


@dataclass
class Trial:
    number: int
    state: str  # Optuna's: COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: float | None  # the objective; a pruned trial's is its last reported value
    params: dict[str, Any]
    # What it reported to the pruner: the objective (or its area so far) at each evaluated step.
    curve: dict[int, float]
    runs: list[Path] = field(default_factory=list)
    pruned_at: int | None = None  # the step a pruned trial stopped at
    rung: int | None = None  # and ASHA's rung there, by its step

    @property
    def last_step(self) -> int | None:
        return max(self.curve, default=None)


@dataclass
class SearchResults:
    search_id: str
    root: Path
    where: str  # the study's storage, as shown
    direction: str
    trials: list[Trial]
    # SearchPlan.about() as the latest submission recorded it ({} for a study made before it was recorded).
    about: dict[str, Any]
    study: optuna.Study

    @property
    def search(self) -> dict[str, Any]:
        return self.about.get("search") or {}

    @property
    def best(self) -> Trial | None:
        complete = [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]
        pick = max if self.direction == "maximize" else min
        return pick(complete, key=lambda t: t.value) if complete else None

    def counts(self) -> dict[str, int]:
        found = {s: sum(t.state == s for t in self.trials) for s in STATES}
        return {s: n for s, n in found.items() if n}

    def rungs(self) -> list[int]:
        """ASHA's rungs in training steps ([] for another pruner, or a study that did not record its search)."""
        pruner, max_steps = self.search.get("pruner") or {}, self.about.get("max_steps")
        if pruner.get("kind") != "asha" or not max_steps:
            return []
        return rungs(pruner["first_rung"], pruner["reduction_factor"], max_steps)


def known_searches(root: Path) -> list[str]:
    folder = RootPaths(root).searches
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _storage(root: Path, search_id: str, storage: str | None) -> tuple[optuna.storages.BaseStorage | str, str]:
    paths = RootPaths(root)
    if storage:
        return storage, "the database given (--storage)"
    if not paths.search(search_id).is_dir():
        known = known_searches(root)
        raise ConfigError(f"search '{search_id}'", f"not found under {root.resolve()}",
                          f"known searches there: {', '.join(known)}" if known else
                          "no search was submitted there (give --root, or see docs/search.md)")
    journal = paths.search_journal(search_id)
    if not journal.is_file():
        raise ConfigError(f"search '{search_id}'", f"has no study journal at {journal}",
                          "its study is in a database: give its URL with --storage (the search's search.storage)")
    return JournalStorage(JournalFileBackend(str(journal))), str(journal)


def load_search(root: Path | str, search_id: str, storage: str | None = None) -> SearchResults:
    """The search's trials, with their runs under `root`; a one-line ConfigError for a search not found."""
    root = Path(root)
    backend, where = _storage(root, search_id, storage)
    try:
        study = optuna.load_study(study_name=search_id, storage=backend)
    except KeyError:
        raise ConfigError(f"search '{search_id}'", f"has no study in {where}", "check the search id") from None
    about = study.user_attrs.get(PLAN_ATTR) or {}
    runs = _trial_runs(root, search_id)
    found = SearchResults(search_id, root, where, study.direction.name.lower(), [], about, study)
    steps = found.rungs()
    for frozen in study.get_trials(deepcopy=False):
        curve = dict(sorted(frozen.intermediate_values.items()))
        trial = Trial(frozen.number, frozen.state.name, frozen.value, dict(frozen.params), curve,
                      runs.get(frozen.number, []))
        if trial.state == "PRUNED" and curve:
            trial.pruned_at = max(curve)
            trial.rung = max((r for r in steps if r <= trial.pruned_at), default=None)
        found.trials.append(trial)
    return found


def _trial_runs(root: Path, search_id: str) -> dict[int, list[Path]]:
    """Trial number -> its run dirs (`<exp>/<search id>-tNNN[-seedK]`), seeds in order."""
    name = re.compile(rf"{re.escape(search_id)}-t(\d+)(?:-seed(-?\d+))?")
    found: dict[int, list[tuple[int, Path]]] = {}
    experiments = root.iterdir() if root.is_dir() else ()
    for exp in (p for p in experiments if p.is_dir() and not p.name.startswith(("_", "."))):
        for run_dir in exp.glob(f"{search_id}-t*"):
            match = name.fullmatch(run_dir.name)
            if match and run_dir.is_dir():
                found.setdefault(int(match[1]), []).append((int(match[2] or 0), run_dir))
    return {n: [d for _, d in sorted(dirs)] for n, dirs in found.items()}


def best_run_dirs(root: Path | str, search_id: str) -> tuple[Trial, list[Path]]:
    """The best trial and its runs (one per seed): a search given as an arm of `compare --vs` or `report --vs`."""
    found = load_search(root, search_id)
    best = found.best
    if best is None:
        raise ConfigError(f"search '{search_id}'", "has no completed trial yet, so no best one to compare",
                          f"see `rlvr-vocab search status {search_id}`")
    if not best.runs:
        raise ConfigError(f"search '{search_id}'", f"its best trial {best.number} has no run dir under {found.root}",
                          "give the root its runs are under with --root")
    return best, best.runs


def best_trial_arms(runs: list, root: Path | str, arms: list[str]) -> tuple[list, list[str]]:
    """The registry's runs with each search among the `arms` ids narrowed to its best trial's runs (all its seeds):
    `compare --vs` and `report --vs` then take that search's runs as the arm, as a sweep's. A line per search says
    which trial stands for it."""
    notes = []
    for arm in arms:
        if not RootPaths(root).search(arm).is_dir():
            continue
        best, dirs = best_run_dirs(root, arm)
        kept = {(d.parent.name, d.name) for d in dirs}
        runs = [r for r in runs if r.sweep_id != arm or (r.exp_name, r.run_name) in kept]
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
        notes.append(f"{arm} is a search: its arm is its best trial, {best.number} ({best.value:.4g}; {shown}), "
                     f"{len(dirs)} run{'s' if len(dirs) != 1 else ''}")
    return runs, notes
