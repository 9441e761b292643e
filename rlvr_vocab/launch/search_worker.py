"""A search worker: one task of the search's job array (or this process), training trials until the budget is spent.

Each turn, under the search's claim lock: take over a running trial whose worker is gone (its lease is stale: the
worker was killed, or requeued and not back yet), else ask the study for a new trial while fewer than `n_trials` have
started. The trial is trained through the normal `train(cfg)` path as a run of its own (run dir, identity, manifest,
W&B run, checkpoints, chained evaluation), its objective reported to the study at each evaluation; then the study is
told how it ended:

    COMPLETED -> its objective (the mean over the trial's seeds)     PRUNED -> pruned
    FAILED (a failure, an invalid config) -> failed; the worker goes on to the next trial
    stopped (time limit, preemption: the job requeues itself) or cancelled -> left running in the study, for the
    requeued worker or another to resume from the run's checkpoint

A trial's lease (the run dir's kind, on `<search folder>/trials/<number>`) is what keeps two workers off one trial; the
run's own lease keeps two jobs off one run dir.
"""

import gc
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from loguru import logger
from omegaconf import DictConfig
from optuna.trial import TrialState

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.logs import setup_logging
from rlvr_vocab.core.states import RunState
from rlvr_vocab.launch.search_objective import run_objective
from rlvr_vocab.launch.search_plan import SearchPlan, trial_config, trial_overrides, trial_run_name
from rlvr_vocab.launch.search_report import TrialReporter
from rlvr_vocab.launch.search_study import distributions, open_study, trial_of
from rlvr_vocab.run.fsio import locked
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.lease import RunLease
from rlvr_vocab.run.manifest import UnreadableManifest, read_manifest

# train(cfg, overrides, reporter, trial number): rlvr_vocab.train.train, passed down (this layer cannot import the
# entry point).
TrainFn = Callable[[DictConfig, list[str], TrialReporter | None, int], Any]
# Trials that count against the budget: every one started.
_ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_STARTED = (*_ENDED, TrialState.RUNNING)
_POLL_S = 30.0
# The signal a job checkpoints on (rlvr_vocab.job.lifecycle.STOP_SIGNAL).
_STOP_SIGNAL = signal.SIGUSR2


def run_worker(cfg: DictConfig, plan: SearchPlan, train_fn: TrainFn, worker: int = 0,
               sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Train trials until none is left to take; what each one became."""
    study = open_study(plan.search, plan.sweep_id, plan.journal, worker, about=plan.about())
    logger.info(f"search {plan.sweep_id}: worker {worker} starts ({len(study.trials)} trials so far)")
    ended: list[dict[str, Any]] = []
    while (claimed := _claim(study, plan)) is not None:
        trial, reported, lease = claimed
        try:
            outcome = _run_trial(cfg, plan, trial, reported, train_fn, sleep)
        finally:
            lease.release()
        ended.append(outcome)
        if outcome["state"] == TrialState.RUNNING.name:
            break  # the job stopped for a requeue: its trial is resumed from the checkpoint
    best = best_trial(study)
    if best is not None:
        logger.info(f"search {plan.sweep_id}: best so far trial {best.number}, {best.value:.4g}, {best.params}")
    return {"status": "search_worker", "search_id": plan.sweep_id, "trials": ended,
            "best": None if best is None else {"number": best.number, "value": best.value, "params": best.params}}


def trials_left(study: optuna.Study, n_trials: int) -> int:
    """Trials of the budget not ended yet: to start, or running (perhaps a dead worker's, to resume)."""
    return max(0, n_trials - len(study.get_trials(deepcopy=False, states=_ENDED)))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_trial if complete else None


def _claim(study: optuna.Study, plan: SearchPlan) -> tuple[optuna.trial.Trial, set[int], RunLease] | None:
    """The next trial for this worker and its lease: a running one whose worker is gone, else a new one within the
    budget; None when the budget is spent. One claim at a time per search (two submissions' workers included)."""
    with locked(plan.paths.search_claim_lock(plan.sweep_id)):
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            lease = _trial_lease(plan, frozen.number)
            try:
                lease.acquire()
            except ConfigError:
                continue  # its worker lives
            logger.info(f"trial {frozen.number}: taken over ({lease.taken_over or 'its worker ended'})")
            return trial_of(study, frozen), set(frozen.intermediate_values), lease
        if len(study.get_trials(deepcopy=False, states=_STARTED)) >= plan.search["budget"]["n_trials"]:
            return None
        trial = study.ask(distributions(plan.search["space"]))
        lease = _trial_lease(plan, trial.number)
        lease.acquire()
        return trial, set(), lease


def _trial_lease(plan: SearchPlan, number: int) -> RunLease:
    return RunLease(RunPaths(plan.paths.search_trial(plan.sweep_id, number)))


def _run_trial(cfg: DictConfig, plan: SearchPlan, trial: optuna.trial.Trial, reported: set[int], train_fn: TrainFn,
               sleep: Callable[[float], None]) -> dict[str, Any]:
    """Train the trial's run(s) and tell the study how the trial ended."""
    seeds: list[int | None] = list(plan.search["seeds"]) or [None]
    values, runs = [], []
    for i, seed in enumerate(seeds):
        name = trial_run_name(plan.sweep_id, trial.number, seed)
        run_dir = Path(plan.experiments_root) / plan.exp_name / name
        runs.append(str(run_dir))
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        logger.info(f"trial {trial.number}: {shown} -> run {plan.exp_name}/{name}")
        # Only the first seed's run reports: the pruner compares one curve per trial.
        reporter = TrialReporter(trial, plan.search, plan.max_steps, reported) if i == 0 else None
        failure = _train(train_fn, trial_config(cfg, trial.params, name, plan.sweep_id, seed),
                         trial_overrides(plan.fixed, trial.params, name, plan.sweep_id, seed), run_dir, reporter,
                         trial.number)
        state = recorded_state(run_dir)
        if failure is not None or state == RunState.FAILED:
            return _tell(trial, TrialState.FAIL, runs, failure or _error(run_dir))
        if state == RunState.PRUNED:
            return _tell(trial, TrialState.PRUNED, runs, _error(run_dir))
        if state != RunState.COMPLETED:
            logger.info(f"trial {trial.number}: run {name} is {state}; the trial stays running, to be resumed")
            return {"number": trial.number, "state": TrialState.RUNNING.name, "runs": runs}
        value = _wait_for_objective(run_dir, plan, sleep)
        if value is None:
            return _tell(trial, TrialState.FAIL, runs, f"{plan.search['objective']['metric']} was not recorded "
                         f"within {plan.search['objective']['wait_min']} min of the run's end")
        values.append(value)
    return _tell(trial, TrialState.COMPLETE, runs, value=statistics.fmean(values))


def _train(train_fn: TrainFn, run_cfg: DictConfig, overrides: list[str], run_dir: Path,
           reporter: TrialReporter | None, number: int) -> str | None:
    """Train one run; the failure that makes the trial FAILED, if any. What stops the job (a requeue, a cancel, an
    interrupt) propagates: the trial stays running."""
    # Each run's lifecycle takes the stop signal over; the next run must find Slurm's or submitit's handler again.
    handler = signal.getsignal(_STOP_SIGNAL)
    try:
        train_fn(run_cfg, overrides, reporter, number)
    except ConfigError as e:  # the sampled values do not make a valid run
        return str(e)
    except Exception as e:
        if recorded_state(run_dir) != RunState.FAILED:
            raise
        return _error(run_dir) or type(e).__name__
    finally:
        if handler is not None:  # None: not set from Python, nothing to put back
            signal.signal(_STOP_SIGNAL, handler)
        setup_logging()  # the worker's own lines go to the job's output again, not the run's train.log
        _free_memory()
    return None


def _free_memory() -> None:
    """The finished run's model and optimizer go before the next trial's load."""
    gc.collect()
    import torch as th  # loaded by training already

    if th.cuda.is_available():
        th.cuda.empty_cache()


def recorded_state(run_dir: Path) -> RunState | None:
    try:
        return RunState.parse((read_manifest(run_dir) or {}).get("status"))
    except UnreadableManifest:
        return None


def _error(run_dir: Path) -> str | None:
    """What the run recorded about its end (the pruner's reason, the failure)."""
    try:
        manifest = read_manifest(run_dir) or {}
    except UnreadableManifest as e:
        return str(e)
    attempts = manifest.get("attempts") or [{}]
    return manifest.get("error") or attempts[-1].get("reason")


def _wait_for_objective(run_dir: Path, plan: SearchPlan, sleep: Callable[[float], None]) -> float | None:
    """The completed run's objective; a benchmark's comes from a chained evaluation job, maybe still running."""
    deadline = time.monotonic() + plan.search["objective"]["wait_min"] * 60
    while (value := run_objective(run_dir, plan.search["objective"], plan.max_steps)) is None and \
            time.monotonic() < deadline:
        sleep(_POLL_S)
    return value


def _tell(trial: optuna.trial.Trial, state: TrialState, runs: list[str], why: str | None = None,
          value: float | None = None) -> dict[str, Any]:
    trial.study.tell(trial, values=value, state=state, skip_if_finished=True)
    logger.info(f"trial {trial.number}: {state.name}" + (f" {value:.4g}" if value is not None else "")
                + (f" ({why})" if why else ""))
    return {"number": trial.number, "state": state.name, "value": value, "runs": runs, "why": why}
