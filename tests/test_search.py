"""Searches (`+search=<file>`): the search file's checks and refusals, the search id, a trial's objective from its run's
records, ASHA's rungs, the pruning callback, and the worker's loop over a study, training replaced by a stand-in that
records evaluations through the real run lifecycle. Fast tier: no GRPO step and no Slurm (the `slurm` tier runs the
workers as a job array)."""

import copy
import functools
import json
import math
import os
import re
from types import SimpleNamespace

import optuna
import pytest
from conftest import run_cli, run_train
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict
from optuna.trial import TrialState
from transformers import TrainerControl, TrainerState

from rlvr_vocab import CONF_DIR
from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.states import FINAL, TRANSITIONS, UNFINISHED, Event, RunState
from rlvr_vocab.job.lifecycle import STOP_SIGNAL, JobLifecycle
from rlvr_vocab.job.search_callback import TrialCallback
from rlvr_vocab.launch import search_study
from rlvr_vocab.launch.search_objective import curve, final_value, intermediate, run_objective
from rlvr_vocab.launch.search_plan import plan_search, search_id_for, trial_run_name
from rlvr_vocab.launch.search_report import TrialReporter
from rlvr_vocab.launch.search_worker import run_worker, trials_left
from rlvr_vocab.run import checkpoints, claims
from rlvr_vocab.run.identity import Identity
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.lease import RunLease
from rlvr_vocab.run.manifest import read_manifest
from rlvr_vocab.validation.search import check_search_file, check_search_steps, parse_metric, rungs

MAX_STEPS = 60
# A search section as the worker reads it (the demo's pruner).
SEARCH = {"objective": {"metric": "heldout.accuracy", "at": "final", "direction": "maximize"},
          "pruner": {"kind": "asha", "first_rung": 10, "reduction_factor": 2},
          "sampler": {"kind": "tpe", "seed": 0, "startup_trials": 1}, "storage": None}
# The stand-in's runs: no watchdog thread or supervisor process per trial.
QUIET = ["watchdog.enabled=false"]


@pytest.fixture(autouse=True)
def no_git(monkeypatch):
    """A run's attempt records the code it runs (git); the stand-in's runs need not ask."""
    monkeypatch.setattr("rlvr_vocab.run.manifest.running_code",
                        lambda: {"snapshot": None, "git_commit": None, "git_dirty": None})


@functools.cache
def _composed():
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose("config", overrides=["+search=demo_lr", *QUIET])


def config(**changes):
    """The demo with `+search=demo_lr`, these keys changed (`search__budget__n_trials`: search.budget.n_trials)."""
    cfg = copy.deepcopy(_composed())
    with open_dict(cfg):
        for key, value in changes.items():
            OmegaConf.update(cfg, key.replace("__", "."), value, merge=False)
    return cfg


class _Checked:
    """What validation returns, as far as a search reads it."""

    grpo_kwargs = {"max_steps": MAX_STEPS, "save_steps": 10}


def plan_of(cfg, overrides=()):
    return plan_search(cfg, ["+search=demo_lr", *QUIET, *overrides], "demo_lr", lambda c: _Checked())


# ------------------------------------------------------------------------------ the search file, refused or planned


def refused(*overrides: str) -> str:
    done = run_train("--multirun", "experiment=demo", *overrides)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_bad_searches_are_refused_in_one_line_before_anything_is_written(tmp_path, experiments_root):
    # A rung past the end (checked once validation has completed the training values), a pruner unknown, a grid
    # besides the search, a search file naming a key the config lacks.
    assert refused("+search=demo_lr", "search.pruner.first_rung=100") == (
        "error: search.pruner.first_rung: is 100 but training stops at step 60 (training.max_steps): no trial would "
        "be pruned; use a step below 60")
    assert refused("+search=demo_lr", "search.pruner.kind=hyperband").startswith(
        "error: search.pruner.kind: got 'hyperband', takes one of asha, median, none")
    assert refused("+search=demo_lr", "seed=0,1").startswith("error: search: is combined with a grid of 2 points")
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "typo.yaml").write_text(
        "space:\n  training.lerning_rate: {type: float, low: 1.0e-5, high: 1.0e-3}\npruner: {first_rung: 10}\n")
    assert refused(f"hydra.searchpath=[file://{tmp_path}]", "+search=typo") == (
        "error: search.space.training.lerning_rate: is not a key of the config; did you mean 'training.learning_rate'?")
    assert not experiments_root.exists()  # nothing submitted, no study created


def checked(**changes) -> None:
    cfg = config(**changes)
    check_search_file(cfg)
    check_search_steps(cfg, MAX_STEPS, 10)


@pytest.mark.parametrize("changes, expected", [
    ({"search__pruner__first_rung": 15}, "search.pruner.first_rung: is 15 but heldout.accuracy is evaluated every 10"),
    ({"search__pruner__reduction_factor": 1}, "search.pruner.reduction_factor: must be at least 2"),
    ({"search__pruner__kind": "median", "search__pruner__warmup_steps": 60}, "search.pruner.warmup_steps: is 60"),
    ({"eval__eval_steps": None}, "search.pruner.kind: asha needs heldout.accuracy during training"),
    ({"search__objective__metric": "heldout.acc"}, "search.objective.metric: 'acc' is not a held-out measure"),
    ({"search__objective__metric": "benchmark.math500"}, "benchmark 'math500' is not one of eval.benchmarks"),
    ({"search__objective__metric": "benchmark.arithmetic"}, "the job evaluates no benchmark (eval.chain is false)"),
    ({"search__objective__metric": "reward"}, "search.objective.metric: 'reward' is not a metric the job computes"),
    ({"search__objective__at": "15"}, "search.objective.at: heldout.accuracy is not evaluated at step 15"),
    ({"search__objective__at": "90"}, "search.objective.at: '90' is not final, auc or a step in 1..60"),
    ({"search__budget__workers": 20}, "search.budget.workers: is 20, more than the 12 trials"),
    ({"search__budget__n_trials": 0}, "search.budget.n_trials: must be at least 1"),
    ({"search__seeds": [1, 1]}, "search.seeds: repeats a seed"),
    ({"search__storage": "/nfs/study.db"}, "search.storage: '/nfs/study.db' is not a database URL"),
    ({"search__space": {}}, "search.space: is empty"),
    ({"search__space": {"training.lerning_rate": {"type": "float", "low": 1e-5, "high": 1e-3}}},
     "search.space.training.lerning_rate: is not a key of the config; did you mean 'training.learning_rate'?"),
    ({"search__space": {"training": {"type": "float", "low": 0.0, "high": 0.1}}},
     "search.space.training: is a section, not a value; search one of its values, e.g. training.learning_rate"),
    ({"search__space": {"run_name": {"type": "categorical", "choices": ["a", "b"]}}},
     "search.space.run_name: cannot be searched"),
    ({"search__space": {"training.beta": {"type": "float", "low": 0.0, "high": 0.1, "scale": "log"}}},
     "search.space.training.beta.scale: unknown key"),
    ({"search__space": {"training.beta": {"low": 0.0, "high": 0.1}}},
     "search.space.training.beta.type: must be one of float, int, categorical"),
    ({"search__space": {"training.beta": {"type": "float", "low": 0.2, "high": 0.1}}},
     "search.space.training.beta: is an empty range: low 0.2 is not below high 0.1; set low < high"),
    ({"search__space": {"training.learning_rate": {"type": "float", "low": 0.0, "high": 1e-3, "log": True}}},
     "search.space.training.learning_rate.low: is 0.0, but a log scale needs low > 0"),
    ({"search__space": {"training.max_steps": {"type": "int", "low": 10, "high": 60.5}}},
     "search.space.training.max_steps.high: must be an integer"),
    ({"search__space": {"training.beta": {"type": "categorical", "choices": []}}},
     "search.space.training.beta.choices: must be a non-empty list"),
    ({"search__space": {"training.beta": {"type": "float", "low": 0.0, "high": 0.1, "step": 0.05, "log": True}}},
     "search.space.training.beta.low: is 0.0, but a log scale"),
])
def test_each_check_names_its_key_and_the_fix(changes, expected):
    with pytest.raises(ConfigError) as refusal:
        checked(**changes)
    assert str(refusal.value).startswith(expected) or expected in str(refusal.value), str(refusal.value)


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "search").glob("*.yaml")))
def test_every_search_file_passes_its_checks_on_the_experiment_its_command_names(name):
    command = (CONF_DIR / "search" / f"{name}.yaml").read_text().splitlines()[0]
    assert command.startswith("# python -m rlvr_vocab.train --multirun") and f"+search={name}" in command
    experiment = next(w for w in command.split() if w.startswith("experiment="))
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("config", overrides=[experiment, f"+search={name}"])
    check_search_file(cfg)
    check_search_steps(cfg, cfg.training.max_steps, cfg.training.save_steps)


def test_a_worker_trains_on_one_process():
    with pytest.raises(ConfigError, match="hydra.launcher: runs 2 processes per job, but a search worker trains"):
        plan_search(config(), ["+search=demo_lr"], "demo_lr", lambda c: _Checked(), processes=2)


def test_the_demo_search_passes_its_checks():
    checked()
    checked(search__objective__at="auc", search__pruner__kind="median")
    checked(eval__chain=True, search__objective__metric="benchmark.arithmetic", search__pruner__first_rung=30)


def planned_id(out: str) -> str:
    return re.search(r"^search (\S+): ", out, re.M).group(1)


def test_a_dry_run_prints_the_search_plan_and_writes_nothing(experiments_root):
    done = run_train("--multirun", "experiment=demo", "+search=demo_lr", "dry_run=true")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    search_id = planned_id(out)
    assert search_id.startswith("demo-demo_lr-")
    for expected in ["12 trials on 2 workers", f"_searches/{search_id}/study.journal (Optuna journal; new)",
                     "training.learning_rate  float in [3e-05, 0.003], log", "training.beta           float in",
                     "objective:  maximize heldout.accuracy at the final model", "TPE, seed 0, after 4 random trials",
                     "ASHA, rungs at steps 10, 20, 40 (the top 1/2 go on); evaluated every 10 steps",
                     f"rlvr-vocab status --sweep {search_id}", "dry run: nothing submitted"]:
        assert expected in out, (expected, out)
    assert not experiments_root.exists()
    masked = run_train("--multirun", "experiment=demo", "+search=demo_lr", "dry_run=true",
                       "search.storage=postgresql://me:hunter2@db/optuna")
    assert "study:      postgresql://me:***@db/optuna" in masked.stdout and "hunter2" not in masked.stdout
    # More trials or workers continue the same study: the same id.
    again = run_train("--multirun", "experiment=demo", "+search=demo_lr", "dry_run=true", "search.budget.n_trials=20")
    assert planned_id(again.stdout) == search_id


# ------------------------------------------------------------------------------ the search id


def test_the_search_id_is_what_defines_the_search():
    search = OmegaConf.to_container(config().search, resolve=True)
    fixed = ["+search=demo_lr", "experiment=demo"]
    ident = search_id_for("demo", "demo_lr", search, fixed)
    assert ident == search_id_for("demo", "demo_lr", search, fixed)  # the same command: the same study
    assert ident.startswith("demo-demo_lr-")
    # Neither the budget, the storage, a wait, a dry run nor the launcher make another search.
    more = {**search, "budget": {"n_trials": 99, "workers": 9}, "storage": "postgresql://db/x",
            "objective": {**search["objective"], "wait_min": 1.0}}
    assert search_id_for("demo", "demo_lr", more, [*fixed, "dry_run=true", "hydra.launcher.partition=gpu",
                                                   "search.budget.n_trials=99", "sweep_id=x"]) == ident
    # Its space, objective, pruner, sampler seed, seeds, the experiment or how the objective is measured do.
    other_space = {**search, "space": {**search["space"], "training.beta": {"type": "float", "low": 0, "high": 1}}}
    others = [
        search_id_for("demo", "demo_lr", other_space, fixed),
        search_id_for("demo", "demo_lr", {**search, "objective": {**search["objective"], "at": "auc"}}, fixed),
        search_id_for("demo", "demo_lr", {**search, "pruner": {**search["pruner"], "kind": "median"}}, fixed),
        search_id_for("demo", "demo_lr", {**search, "sampler": {**search["sampler"], "seed": 1}}, fixed),
        search_id_for("demo", "demo_lr", {**search, "seeds": [0, 1]}, fixed),
        search_id_for("demo", "demo_lr", search, [*fixed, "dataset.embedded.n_test=20"]),
        search_id_for("demo", "demo_lr", search, [*fixed, "training.max_steps=120"]),
        search_id_for("demo", "demo_lr", search, [*fixed, "eval.max_samples=10"]),
        search_id_for("demo", "other", search, fixed),
    ]
    assert len({ident, *others}) == len(others) + 1


# ------------------------------------------------------------------------------ the objective from a run's records


HELD_OUT = {"last_step": 60, "eval": {
    "initial": {"accuracy": 0.4, "step": 0},
    "history": [{"accuracy": 0.5, "step": 20}, {"accuracy": 0.6, "step": 40}],
    "final": {"accuracy": 0.7, "step": 60, "pass@4": 0.9}}}


def test_the_held_out_objective_at_the_end_at_a_step_and_as_the_area_under_its_curve():
    points = curve(parse_metric("heldout.accuracy"), HELD_OUT, {})
    assert points == {0: 0.4, 20: 0.5, 40: 0.6, 60: 0.7}
    assert final_value(points, "final", 60, MAX_STEPS) == 0.7
    assert final_value(points, "40", 60, MAX_STEPS) == 0.6
    assert final_value(points, "auc", 60, MAX_STEPS) == pytest.approx(0.55)  # the mean over training
    assert final_value(points, "final", 40, MAX_STEPS) is None  # the run has not completed
    assert intermediate(points, "final") == {20: 0.5, 40: 0.6, 60: 0.7}
    assert intermediate(points, "auc")[20] == pytest.approx(0.45)  # the area so far, per step
    assert curve(parse_metric("heldout.pass@4"), HELD_OUT, {}) == {60: 0.9}


def test_a_benchmark_objective_reads_the_chained_evaluations(tmp_path):
    run_dir = tmp_path / "demo" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"status": "COMPLETED", **HELD_OUT}))
    summary = {"arithmetic": {
        "0": {"step": 0, "weights": "initial", "accuracy": 0.3, "avg@n": 0.25},
        "30": {"step": 30, "weights": "checkpoint-30", "accuracy": 0.5, "avg@n": 0.45},
        "60": {"step": 60, "weights": "final", "accuracy": 0.6, "avg@n": 0.55}}}
    assert run_objective(run_dir, {"metric": "benchmark.arithmetic", "at": "final"}, MAX_STEPS) is None
    (run_dir / "evals.json").write_text(json.dumps(summary))
    # The headline measure is avg@n (the papers' pass@1) where every result has it.
    assert run_objective(run_dir, {"metric": "benchmark.arithmetic", "at": "final"}, MAX_STEPS) == 0.55
    assert run_objective(run_dir, {"metric": "benchmark.arithmetic.accuracy", "at": "30"}, MAX_STEPS) == 0.5
    assert run_objective(run_dir, {"metric": "heldout.accuracy", "at": "final"}, MAX_STEPS) == 0.7


# ------------------------------------------------------------------------------ the study, its rungs and pruning


def test_asha_rungs_are_in_training_steps_and_prune_the_worse_half():
    assert rungs(10, 2, MAX_STEPS) == [10, 20, 40]
    assert rungs(200, 2, 1000) == [200, 400, 800]
    assert rungs(20, 3, MAX_STEPS) == [20]
    study = optuna.create_study(direction="maximize", pruner=search_study.pruner_of(SEARCH["pruner"]))
    good, bad = (TrialReporter(study.ask(), SEARCH, MAX_STEPS) for _ in range(2))
    assert good.report({0: 0.3, 10: 0.6}) is None  # the first at a rung goes on
    assert bad.report({0: 0.3, 5: 0.1}) is None  # before the first rung: never pruned
    why = bad.report({0: 0.3, 5: 0.1, 10: 0.2})
    assert why.startswith("pruned at step 10 (rung 10) by ASHA: 0.2 is not in the top 1/2")
    assert study.trials[1].intermediate_values == {5: 0.1, 10: 0.2}
    median = search_study.pruner_of({"kind": "median", "startup_trials": 1, "warmup_steps": 20})
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert isinstance(search_study.pruner_of({"kind": "none"}), optuna.pruners.NopPruner)


def test_workers_draw_different_trials_from_one_seed():
    sampler = {"kind": "tpe", "seed": 0, "startup_trials": 4}
    draws = []
    for worker in (0, 1, 0):
        study = optuna.create_study(sampler=search_study.sampler_of(sampler, worker))
        draws.append(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}).params["x"])
    assert draws[0] != draws[1] and draws[0] == draws[2]


def test_the_callback_reports_each_evaluation_once_and_stops_a_pruned_run(tmp_path):
    journal = tmp_path / "study.journal"
    study = search_study.open_study(SEARCH, "s", journal)
    leader = study.ask()
    leader.report(0.8, 10)
    manifest = {"eval": {"initial": {"accuracy": 0.3, "step": 0}, "history": []}}
    # The part of a JobLifecycle the callback uses.
    job = SimpleNamespace(paths=RunPaths(tmp_path), manifest=SimpleNamespace(data=manifest),
                          stop=SimpleNamespace(agreed=False), pruned=None)
    callback = TrialCallback(job, TrialReporter(study.ask(), SEARCH, MAX_STEPS))

    def step(n: int) -> TrainerControl:
        control = TrainerControl()
        callback.on_step_end(None, TrainerState(global_step=n, max_steps=MAX_STEPS), control)
        return control

    assert not step(9).should_training_stop  # nothing evaluated after the start yet
    manifest["eval"]["history"].append({"accuracy": 0.9, "step": 10})
    assert not step(10).should_training_stop and not step(11).should_training_stop
    manifest["eval"]["history"].append({"accuracy": 0.1, "step": 20})
    job.stop.agreed = True
    assert not step(20).should_training_stop  # a stopping job checkpoints; the resumed run reports step 20
    job.stop.agreed = False
    # Resumed (a new reporter from the study's record): step 10 is not reported twice.
    frozen = search_study.open_study(SEARCH, "s", journal).trials[1]
    assert frozen.intermediate_values == {10: 0.9}
    callback = TrialCallback(job, TrialReporter(search_study.trial_of(study, frozen), SEARCH, MAX_STEPS,
                                                frozen.intermediate_values))
    second = study.ask()  # another trial reaches rung 1 first, far better
    second.report(0.9, 10)
    second.report(0.95, 20)
    assert second.should_prune() is False
    assert step(20).should_training_stop
    assert job.pruned.startswith("pruned at step 20 (rung 20) by ASHA")
    assert study.trials[1].intermediate_values == {10: 0.9, 20: 0.1}


def test_a_pruned_run_ends_pruned_not_failed(experiments_root):
    assert (RunState.RUNNING, Event.PRUNE) in TRANSITIONS and RunState.PRUNED in FINAL
    assert RunState.PRUNED not in UNFINISHED  # `resume --failed` passes it over
    cfg = config(run_name="p")
    with JobLifecycle(cfg, experiments_root / "demo" / "p", MAX_STEPS, 1, ["run_name=p"]) as job:
        job.manifest.update(last_step=20)
        job.finish_training(20)
        job.pruned = "pruned at step 20 (rung 20) by ASHA: 0.1 is not in the top 1/2"
    m = read_manifest(experiments_root / "demo" / "p")
    assert m["status"] == "PRUNED" and m["attempts"][-1]["end_state"] == "PRUNED"
    assert m["error"].startswith("pruned at step 20 (rung 20) by ASHA")


# ------------------------------------------------------------------------------ the worker's loop


def quality(lr: float) -> float:
    """The stand-in's final accuracy: best at lr 3e-4."""
    return max(0.05, 0.9 - 0.25 * abs(math.log10(lr) - math.log10(3e-4)))


class StandIn:
    """Training replaced: the real lifecycle in the run dir, a held-out evaluation every 10 steps recorded in the
    manifest as training records it, the real trial callback at each step end. `fail` trial numbers raise, `stop`
    ones are stopped by the signal a preemption sends."""

    def __init__(self, fail=(), stop=()):
        self.fail, self.stop, self.calls = set(fail), set(stop), []

    def __call__(self, cfg, overrides, reporter, number):
        self.calls.append((number, cfg.run_name))
        paths = RunPaths.of(cfg.experiments_root, cfg.exp_name, cfg.run_name)
        assert cfg.get("search") is None and cfg.sweep_id in cfg.run_name
        with JobLifecycle(cfg, paths.run_dir, MAX_STEPS, 1, overrides, search_trial=number) as job:
            if job.already_complete is not None:
                return job.result()
            ev = job.manifest.data["eval"]
            ev.setdefault("initial", {"accuracy": 0.3, "step": 0})
            callback = TrialCallback(job, reporter) if reporter is not None else None
            target = quality(cfg.training.learning_rate)
            for step in range(job.manifest.data["last_step"] + 1, MAX_STEPS + 1):
                if step % 10 == 0 and step < MAX_STEPS:
                    ev.setdefault("history", []).append({"accuracy": 0.3 + (target - 0.3) * step / MAX_STEPS,
                                                         "step": step})
                if number in self.fail and step == 15:
                    raise RuntimeError("CUDA error: an illegal memory access")
                if number in self.stop and step == 25:
                    self.stop.discard(number)
                    os.kill(os.getpid(), STOP_SIGNAL)
                    job.stop.agree(1)
                control = TrainerControl()
                if callback is not None:
                    callback.on_step_end(None, TrainerState(global_step=step, max_steps=MAX_STEPS), control)
                job.manifest.update(last_step=step)
                if control.should_training_stop or job.stop.agreed:
                    break
            job.finish_training(step)
            if job.stopped or job.pruned is not None:
                return job.result()
            ev["final"] = {"accuracy": target, "step": MAX_STEPS}
            checkpoints.commit_final(paths, lambda d: (d.mkdir(), (d / "model.safetensors").write_bytes(b"w")),
                                     MAX_STEPS)
        return job.result()


def states(study) -> dict[str, int]:
    found: dict[str, int] = {}
    for t in study.trials:
        found[t.state.name] = found.get(t.state.name, 0) + 1
    return found


def test_a_worker_trains_trials_until_the_budget_is_spent(experiments_root):
    cfg = config(search__budget__n_trials=6, search__budget__workers=1, search__sampler__startup_trials=2)
    plan = plan_of(cfg, ["search.budget.n_trials=6", "search.budget.workers=1", "search.sampler.startup_trials=2"])
    assert plan.journal == experiments_root / "_searches" / plan.sweep_id / "study.journal"
    train = StandIn()
    result = run_worker(cfg, plan, train)
    study = search_study.open_study(plan.search, plan.sweep_id, plan.journal)
    assert len(study.trials) == 6 and [n for n, _ in train.calls] == [0, 1, 2, 3, 4, 5]
    assert set(states(study)) <= {"COMPLETE", "PRUNED"} and states(study).get("PRUNED", 0) >= 1
    best = study.best_trial
    assert result["best"]["number"] == best.number and best.value == pytest.approx(quality(
        best.params["training.learning_rate"]))
    # Each trial is an ordinary run, in the sweep of the search's id; pruned ones say where.
    runs = {t.number: experiments_root / "demo" / trial_run_name(plan.sweep_id, t.number) for t in study.trials}
    for t in study.trials:
        m = read_manifest(runs[t.number])
        assert m["sweep_id"] == plan.sweep_id
        if t.state == TrialState.PRUNED:
            assert m["status"] == "PRUNED" and m["last_step"] < MAX_STEPS and "ASHA" in m["error"]
        else:
            assert m["status"] == "COMPLETED" and m["eval"]["final"]["accuracy"] == t.value
    # What `status` shows of the search's runs.
    shown = run_cli("status", "--sweep", plan.sweep_id)
    assert shown.returncode == 0, shown.stderr
    assert "PRUNED" in shown.stdout and "COMPLETED" in shown.stdout
    # A trial's recorded overrides are a run of its own: composed again, the same identity (`resume RUN` continues it).
    m = read_manifest(runs[best.number])
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        again = compose("config", overrides=m["overrides"])
    assert Identity.of(again) == claims.stored_identity(RunPaths(runs[best.number]))
    assert not any(o.startswith("+search") for o in m["overrides"])

    # The same command again continues the study: nothing left, no duplicate; a larger budget adds trials.
    assert run_worker(cfg, plan, train)["trials"] == [] and len(study.trials) == 6
    assert trials_left(study, 6) == 0 and trials_left(study, 8) == 2  # what a re-submission submits workers for
    bigger = config(search__budget__n_trials=8, search__budget__workers=1, search__sampler__startup_trials=2)
    more = plan_of(bigger, ["search.budget.n_trials=8", "search.budget.workers=1", "search.sampler.startup_trials=2"])
    assert more.sweep_id == plan.sweep_id
    assert [t["number"] for t in run_worker(bigger, more, train)["trials"]] == [6, 7]
    assert len(search_study.open_study(plan.search, plan.sweep_id, plan.journal).trials) == 8


def test_a_failed_trial_is_failed_in_the_study_and_the_search_goes_on(experiments_root):
    cfg = config(search__budget__n_trials=3, search__budget__workers=1, search__pruner__kind="none")
    plan = plan_of(cfg)
    result = run_worker(cfg, plan, StandIn(fail={1}))
    assert [(t["number"], t["state"]) for t in result["trials"]] == [(0, "COMPLETE"), (1, "FAIL"), (2, "COMPLETE")]
    assert "CUDA error" in result["trials"][1]["why"]
    assert read_manifest(experiments_root / "demo" / trial_run_name(plan.sweep_id, 1))["status"] == "FAILED"


def test_a_stopped_trial_stays_running_and_the_next_worker_resumes_it(experiments_root):
    cfg = config(search__budget__n_trials=2, search__budget__workers=1, search__pruner__kind="none")
    plan = plan_of(cfg)
    train = StandIn(stop={0})
    first = run_worker(cfg, plan, train)  # preempted at step 25 (no Slurm here to requeue it): the worker stops
    assert [(t["number"], t["state"]) for t in first["trials"]] == [(0, "RUNNING")]
    run_dir = experiments_root / "demo" / trial_run_name(plan.sweep_id, 0)
    assert read_manifest(run_dir)["status"] == "PREEMPTED"
    second = run_worker(cfg, plan, train)  # takes the trial over, resumes its run, then the budget's last trial
    assert [(t["number"], t["state"]) for t in second["trials"]] == [(0, "COMPLETE"), (1, "COMPLETE")]
    m = read_manifest(run_dir)
    assert m["status"] == "COMPLETED" and len(m["attempts"]) == 2
    assert [s for s in (h["step"] for h in m["eval"]["history"])] == [10, 20, 30, 40, 50]


def test_a_dead_workers_trial_is_taken_over_and_a_live_ones_left_alone(experiments_root):
    cfg = config(search__budget__n_trials=3, search__budget__workers=1, search__pruner__kind="none")
    plan = plan_of(cfg)
    study = search_study.open_study(plan.search, plan.sweep_id, plan.journal)
    space = search_study.distributions(plan.search["space"])
    study.ask(space)  # trial 0: its worker died before it took the trial's lease
    live = study.ask(space)  # trial 1: a live worker (this process) holds it
    lease = RunLease(RunPaths(plan.paths.search_trial(plan.sweep_id, live.number)))
    lease.acquire()
    try:
        result = run_worker(cfg, plan, StandIn())
    finally:
        lease.release()
    assert [(t["number"], t["state"]) for t in result["trials"]] == [(0, "COMPLETE"), (2, "COMPLETE")]
    assert states(search_study.open_study(plan.search, plan.sweep_id, plan.journal)) == {"COMPLETE": 2,
                                                                                         "RUNNING": 1}


def test_seeds_per_trial_average_the_objective(experiments_root):
    cfg = config(search__budget__n_trials=1, search__budget__workers=1, search__seeds=[3, 4],
                 search__pruner__kind="none")
    plan = plan_of(cfg)
    train = StandIn()
    result = run_worker(cfg, plan, train)
    assert [name for _, name in train.calls] == [trial_run_name(plan.sweep_id, 0, s) for s in (3, 4)]
    for seed in (3, 4):
        run_dir = experiments_root / "demo" / trial_run_name(plan.sweep_id, 0, seed)
        assert read_manifest(run_dir)["status"] == "COMPLETED"
    assert result["trials"][0]["state"] == "COMPLETE" and len(result["trials"][0]["runs"]) == 2
