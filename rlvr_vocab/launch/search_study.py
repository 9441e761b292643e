"""A search's Optuna study: where it is stored, its sampler and pruner, its parameters' distributions.

Every worker opens the same study by name in the same storage; Optuna's own storage keeps trials apart between them.
"""

from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the worker logs each trial itself, in one line


def storage_of(search: dict[str, Any], journal: Path) -> optuna.storages.BaseStorage | str:
    """The user's RDB URL, or the journal file. A journal file rather than SQLite: workers on several nodes append
    to it on a shared file system, and its default lock (a symlink, created atomically on NFS) is what Optuna
    designed for that, where SQLite's own file locking is unreliable on NFS."""
    if search["storage"]:
        return search["storage"]
    journal.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(journal)))


def sampler_of(sampler: dict[str, Any], worker: int = 0, trials_so_far: int = 0) -> optuna.samplers.BaseSampler:
    """Seeded from the search's seed, the worker and the study's size when it started: workers that start together
    must not draw the same random trials, and the same history gives the same draws."""
    seed = int(np.random.SeedSequence([sampler["seed"], worker, trials_so_far]).generate_state(1)[0])
    if sampler["kind"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: a running trial counts as a poor result, so parallel workers spread out instead of piling up
    # where the last completed trial was best.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=sampler["startup_trials"], constant_liar=True)


def pruner_of(pruner: dict[str, Any]) -> optuna.pruners.BasePruner:
    if pruner["kind"] == "asha":
        # Optuna's SuccessiveHalvingPruner is ASHA: trials are promoted asynchronously, rung by rung.
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=pruner["first_rung"],
                                                      reduction_factor=pruner["reduction_factor"])
    if pruner["kind"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=pruner["startup_trials"],
                                           n_warmup_steps=pruner["warmup_steps"])
    return optuna.pruners.NopPruner()


def distributions(space: dict[str, dict[str, Any]]) -> dict[str, BaseDistribution]:
    """The space (validated by rlvr_vocab.validation.search.check_param) as Optuna's distributions, by config key."""
    found: dict[str, BaseDistribution] = {}
    for key, entry in space.items():
        if entry["type"] == "categorical":
            found[key] = CategoricalDistribution(entry["choices"])
        elif entry["type"] == "int":
            found[key] = IntDistribution(entry["low"], entry["high"], log=bool(entry.get("log")),
                                         step=entry.get("step") or 1)
        else:
            found[key] = FloatDistribution(float(entry["low"]), float(entry["high"]), log=bool(entry.get("log")),
                                           step=entry.get("step"))
    return found


# The study's user attribute holding what its trials cannot tell (SearchPlan.about): `search status` and the report
# read it from the study itself, wherever it is stored.
PLAN_ATTR = "plan"


def open_study(search: dict[str, Any], search_id: str, journal: Path, worker: int = 0,
               about: dict[str, Any] | None = None) -> optuna.Study:
    """The search's study, created on first use (the same id opens the same study: re-submitting continues it);
    `about` recorded in it where it changed (a larger budget)."""
    study = optuna.create_study(storage=storage_of(search, journal), study_name=search_id, load_if_exists=True,
                                direction=search["objective"]["direction"], pruner=pruner_of(search["pruner"]))
    if about is not None and study.user_attrs.get(PLAN_ATTR) != about:
        study.set_user_attr(PLAN_ATTR, about)
    study.sampler = sampler_of(search["sampler"], worker, len(study.get_trials(deepcopy=False)))
    return study


def trial_of(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> optuna.trial.Trial:
    """A running trial to report to again (a resumed or adopted one). Optuna builds a Trial from the storage's trial
    id, which only the private `_trial_id` gives: tests/test_search.py fails loudly should that change."""
    return optuna.trial.Trial(study, frozen._trial_id)
