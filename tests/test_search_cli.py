"""Seeing and steering a search from the CLI, on searches trained by the worker with training replaced by
tests/test_search.py's stand-in (the real lifecycle, callback and study): `search status`, `status --state PRUNED`,
`cancel` of a search's workers, the registry's word on a trial whose worker job runs on, `resume` of a trial's run,
`report --search`, and a search's best trial as an arm of `compare --vs`. Fast tier: no GRPO step, and no Slurm (its
commands faked where a submission or `cancel` calls them)."""

import json
import os
import re
import subprocess

import optuna
import pytest
from conftest import run_cli, run_train
from test_search import StandIn, config, no_git, plan_of  # noqa: F401  (no_git: autouse here too)

from rlvr_vocab.core.states import Event, RunState
from rlvr_vocab.launch import search_study
from rlvr_vocab.launch.search_plan import trial_run_name
from rlvr_vocab.launch.search_submission import record_submission
from rlvr_vocab.launch.search_worker import run_worker
from rlvr_vocab.registry import RunView, run_files
from rlvr_vocab.registry.slurm_view import SlurmView
from rlvr_vocab.run import manifest as manifest_module
from rlvr_vocab.run.layout import RootPaths, RunPaths
from rlvr_vocab.run.manifest import Manifest, read_manifest, slurm_end
from rlvr_vocab.slurm.client import SacctRow

# How the searches here were submitted, as the sweeper records it (hydra.mode is one submission's, not repeated).
HYDRA = ["hydra/launcher=slurm", "hydra.launcher.partition=cpu", "hydra.mode=MULTIRUN"]


def searched(experiments_root, train=None, **changes):
    """A search of the demo trained by one worker, recorded as submitted through the Slurm launcher: its plan."""
    settings = {"search__budget__workers": 1, **changes}
    overrides = [f"{k.replace('__', '.')}={v}" for k, v in settings.items()]
    cfg = config(**settings)
    plan = plan_of(cfg, overrides)
    record_submission(experiments_root, plan.sweep_id, plan.fixed, HYDRA, "slurm")
    run_worker(cfg, plan, train or StandIn())
    return plan


def study_of(plan) -> optuna.Study:
    return search_study.open_study(plan.search, plan.sweep_id, plan.journal)


def one_line_error(done) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


# ------------------------------------------------------------------------------ search status, status --state PRUNED


def test_search_status_shows_the_trials_the_best_and_what_was_pruned_where(experiments_root):
    plan = searched(experiments_root, search__budget__n_trials=6, search__sampler__startup_trials=2)
    study, search = study_of(plan), plan.sweep_id
    done = run_cli("search", "status", search)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    counts = {s: sum(t.state.name == s for t in study.trials) for s in ("COMPLETE", "PRUNED")}
    assert counts["PRUNED"] >= 1
    assert out.startswith(f"search {search}: 6 trials of 6: {counts['COMPLETE']} COMPLETE, {counts['PRUNED']} PRUNED")
    assert f"study:      {plan.journal}" in out
    assert "objective:  maximize heldout.accuracy at the final model" in out
    best = study.best_trial
    lr, beta = best.params["training.learning_rate"], best.params["training.beta"]
    assert (f"best:       trial {best.number}, {best.value:.4g}: training.learning_rate={lr:.4g}, "
            f"training.beta={beta:.4g}") in out
    assert f"run demo/{trial_run_name(search, best.number)}" in out
    # ASHA's rungs: how many trials reached each, and how many were pruned there.
    last = {t.number: max(t.intermediate_values) for t in study.trials}
    pruned_at = [last[t.number] for t in study.trials if t.state.name == "PRUNED"]
    rungs = "; ".join(f"step {r}: {sum(s >= r for s in last.values())} reached, {pruned_at.count(r)} pruned there"
                      for r in (10, 20, 40))
    assert f"rungs:      {rungs}" in out
    # A row per trial; a pruned one says where.
    for t in study.trials:
        row = next(line for line in out.splitlines() if re.match(rf"\s+{t.number}\s+{t.state.name}\s", line))
        assert trial_run_name(search, t.number) in row
        if t.state.name == "PRUNED":
            assert f"pruned at step {last[t.number]} (rung {last[t.number]})" in row
    assert out.rstrip().endswith(f"continue:   python -m rlvr_vocab.train --multirun hydra/launcher=slurm "
                                 f"hydra.launcher.partition=cpu +search=demo_lr watchdog.enabled=false "
                                 f"search.budget.workers=1 search.budget.n_trials=6 "
                                 f"search.sampler.startup_trials=2 sweep_id={search}")

    # `status` filters the trials' runs by the state of their own, and says where each was pruned.
    shown = run_cli("status", "--sweep", search, "--state", "pruned")
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if line.startswith(search)]
    assert len(rows) == counts["PRUNED"] and all(" PRUNED " in row for row in rows)
    for step in pruned_at:
        assert f": pruned at step {step} (rung {step}) by ASHA: " in shown.stdout
    assert f"{counts['PRUNED']} run" in shown.stdout.splitlines()[-1]


def test_a_submission_records_how_to_submit_the_search_again(experiments_root, monkeypatch):
    """The sweeper records the search's submission and its definition in the study before it launches the workers
    (Hydra's basic launcher here, its launch stopped short of training)."""
    from hydra.core.plugins import Plugins

    launched, instantiate = [], Plugins.instantiate_launcher

    def launcher(self, *args, **kwargs):
        # Hydra loads its plugins' modules anew: the instance it makes is the one to stop.
        made = instantiate(self, *args, **kwargs)
        made.launch = lambda jobs, initial_job_idx: launched.append(jobs) or []
        return made

    monkeypatch.setattr(Plugins, "instantiate_launcher", launcher)
    typed = ["experiment=demo", "+search=demo_lr", "search.budget.n_trials=3", "search.budget.workers=2"]
    done = run_train("--multirun", *typed)
    assert done.returncode == 0, done.stderr
    search = re.search(r"^search (\S+): 3 trials on 2 workers", done.stdout, re.M).group(1)
    record = json.loads(RootPaths(experiments_root).search_submission(search).read_text())
    assert record["overrides"] == [*typed, f"sweep_id={search}"] and record["launcher"] == "basic"
    assert "hydra.mode=MULTIRUN" not in record["hydra_overrides"]  # one submission's, not repeated
    assert len(launched) == 1 and len(launched[0]) == 2 and f"sweep_id={search}" in launched[0][0]
    shown = run_cli("search", "status", search)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:4] == [
        f"search {search}: 0 trials of 3: none started yet",
        f"  study:      {RootPaths(experiments_root).search_journal(search)}",
        "  objective:  maximize heldout.accuracy at the final model",
        "  best:       none yet (no trial has completed)"]
    assert shown.stdout.splitlines()[-1] == (f"  continue:   python -m rlvr_vocab.train --multirun {' '.join(typed)} "
                                             f"sweep_id={search}")


@pytest.fixture
def slurm_shims(tmp_path, monkeypatch):
    """Slurm's commands as scripts, each call logged as `name ARGS` in the returned file: sbatch submits arrays 200,
    201...; squeue lists the `queue` file beside it (`ID STATE` lines); sacct knows no job; scancel cancels nothing."""
    shims, calls = tmp_path / "shims", tmp_path / "calls"
    shims.mkdir()
    log = f'echo "$(basename "$0") $*" >> {calls}\n'
    scripts = {
        "sbatch": log + f'case "$1" in --test-only) echo "sbatch: Job 1 to start" >&2; exit 0;; esac\n'
                        f'n=$(cat {shims}/next 2>/dev/null || echo 200); echo $((n + 1)) > {shims}/next\n'
                        'echo "Submitted batch job $n"\n',
        "scontrol": log + 'echo "MaxArraySize = 1001"\n',
        "squeue": log + f"cat {tmp_path}/queue 2>/dev/null\n",
        "sacct": log,  # no job in accounting yet
        "scancel": log,
    }
    for name, body in scripts.items():
        (shims / name).write_text("#!/bin/sh\n" + body)
        (shims / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")
    return calls


def test_cancel_of_a_search_takes_every_submissions_worker_jobs(experiments_root, slurm_shims, tmp_path):
    """The workers of a search pending in Slurm's queue have made no trial's run yet: the search's record names them,
    for `search status` and for `cancel --sweep`."""
    typed = ["hydra/launcher=slurm_cpu", "experiment=demo", "+search=demo_lr", "search.budget.n_trials=3",
             "search.budget.workers=2"]
    for array in ("200", "201"):  # submitted again before any trial ended: two more workers
        done = run_train("--multirun", *typed)
        assert done.returncode == 0, done.stderr
        assert f"2 workers as slurm job array {array}" in done.stdout
    search = re.search(r"^submitted search (\S+):", done.stdout, re.M).group(1)
    record = json.loads(RootPaths(experiments_root).search_submission(search).read_text())
    assert record["worker_jobs"] == [["200_0", "200_1"], ["201_0", "201_1"]]
    shown = run_cli("search", "status", search)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-2] == "  workers:    SLURM jobs 200_0, 200_1; 201_0, 201_1 (2 submissions)"

    # 200_0 has ended (squeue no longer lists it); 200_1 trains trial 0; the others are pending.
    trial = RunPaths(experiments_root / "demo" / trial_run_name(search, 0))
    trial.run_dir.mkdir(parents=True)
    m = Manifest.new(trial, "demo", trial.run_dir.name, "f" * 16)
    m.data.update(sweep_id=search, status="RUNNING",
                  attempts=[{"n": 1, "slurm_array_id": "200_1", "started": STARTED, "search_trial": 0}])
    m.save()
    slurm_shims.write_text("")
    (tmp_path / "queue").write_text("200_1 RUNNING\n201_0 PENDING\n201_1 PENDING\n")
    done = run_cli("cancel", "--sweep", search)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"cancelled demo/{trial.run_dir.name} (SLURM job 200_1)",
        f"cancelled 3 worker jobs of search {search} (SLURM jobs 200_1, 201_0, 201_1)"]
    assert [c for c in slurm_shims.read_text().splitlines() if c.startswith("scancel")] == [
        "scancel 200_1 201_0 201_1"]

    # Once none is queued, there is nothing to cancel and scancel is not run.
    slurm_shims.write_text("")
    (tmp_path / "queue").write_text("")
    done = run_cli("cancel", "--sweep", search)
    assert (done.returncode, done.stdout) == (0, "nothing to cancel: no pending or running job\n")
    assert "scancel" not in slurm_shims.read_text()


def test_search_status_refuses_an_unknown_search_in_one_line(experiments_root, tmp_path):
    assert one_line_error(run_cli("search", "status", "nope")) == (
        f"error: search 'nope': not found under {experiments_root.resolve()}; no search was submitted there "
        "(give --root, or see docs/search.md)")
    plan = searched(experiments_root, search__budget__n_trials=1, search__pruner__kind="none")
    assert one_line_error(run_cli("search", "status", "demo-demo_lr")) == (
        f"error: search 'demo-demo_lr': not found under {experiments_root.resolve()}; known searches there: "
        f"{plan.sweep_id}")
    plan.journal.unlink()  # a study kept in a database: the journal is not there
    assert "its study is in a database: give its URL with --storage" in one_line_error(
        run_cli("search", "status", plan.sweep_id))


# ------------------------------------------------------------------------------ the registry: a trial's recorded end


STARTED, ENDED = "2026-01-01T00:00:00+00:00", "2026-01-01T00:10:00+00:00"


def trial_view(tmp_path, end_state, trial=3, error=None):
    """A run whose last attempt, in job 7_0, recorded `end_state` (a trial's when `trial` is not None), seen through
    the index's brief of its files."""
    attempt = {"n": 1, "slurm_job_id": "8", "slurm_array_id": "7_0", "started": STARTED, "ended": ENDED,
               "end_state": end_state, "reason": error, "search_trial": trial}
    manifest = {"status": end_state, "error": error, "sweep_id": "s", "attempts": [attempt]}
    return RunView(tmp_path, *run_files.brief(manifest, []))


def worker(state):
    """Slurm's word on job 7_0: its one run started with the attempt, in `state` now."""
    start = 1767225600.0
    return SlurmView({"7_0": SacctRow("7_0", state, "0:0", "n1", start, None if state == "RUNNING" else start + 3600)})


def test_a_trials_recorded_end_stands_while_its_worker_job_runs_other_trials(tmp_path):
    why = "pruned at step 20 (rung 20) by ASHA: 0.2 is not in the top 1/2 of the trials that reached it"
    pruned = trial_view(tmp_path, "PRUNED", error=why)
    assert not pruned.needs_slurm()  # final, whatever the worker's job does next
    pruned.resolve(worker("RUNNING"))
    assert (pruned.state, pruned.note) == ("PRUNED", why)
    failed = trial_view(tmp_path, "FAILED", error="ValueError: boom")
    assert not failed.needs_slurm()
    failed.resolve(worker("RUNNING"))
    assert (failed.state, failed.note) == ("FAILED", "ValueError: boom")
    # An ordinary run's recorded failure while its job lives: Slurm may have requeued it, so Slurm says.
    ordinary = trial_view(tmp_path, "FAILED", trial=None, error="ValueError: boom")
    ordinary.resolve(worker("RUNNING"))
    assert ordinary.state == "RUNNING"
    # A trial stopped with its worker (scancel, preemption): the job ended with it, so Slurm's account stands.
    cancelled = trial_view(tmp_path, "CANCELLED")
    cancelled.resolve(worker("PREEMPTED"))
    assert cancelled.state == "PREEMPTED"


def test_a_new_attempt_keeps_a_trials_end_slurm_says_otherwise_of_its_worker_job(tmp_path, monkeypatch):
    """Before the next attempt the job settles the last one from sacct: a trial's recorded end is kept though the
    worker's job later timed out; an ordinary run's is replaced by Slurm's."""
    monkeypatch.setattr(manifest_module.slurm_client, "job_runs",
                        lambda job: [SacctRow("7_0", "TIMEOUT", "0:0", "n1", 1767225600.0, 1767229200.0)])
    for end in ("PRUNED", "FAILED"):
        assert slurm_end({"slurm_array_id": "7_0", "started": STARTED, "end_state": end, "search_trial": 3}) is None
    assert slurm_end({"slurm_array_id": "7_0", "started": STARTED, "end_state": "FAILED"})[0] == "TIMEOUT"
    paths = RunPaths(tmp_path / "demo" / "t")
    paths.run_dir.mkdir(parents=True)
    m = Manifest.new(paths, "demo", "t", "f" * 16)
    m.data.update(status="PRUNED", attempts=[{"n": 1, "slurm_array_id": "7_0", "started": STARTED,
                                              "end_state": "PRUNED", "search_trial": 3}])
    m.settle_last_attempt()
    assert m.data["status"] == "PRUNED" and m.data["attempts"][0]["end_state"] == "PRUNED"


# ------------------------------------------------------------------------------ resume of a trial's run


@pytest.fixture
def submitted(monkeypatch):
    """The commands `resume` would run (nothing is run)."""
    commands = []

    def run(cmd, **kwargs):
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr("rlvr_vocab.launch.resume.subprocess.run", run)
    return commands


def test_resume_of_a_trials_run(experiments_root, submitted):
    # Trial 0 completes, trial 1 fails, trial 2 is stopped (preempted): its study still runs it.
    plan = searched(experiments_root, StandIn(fail={1}, stop={2}), search__budget__n_trials=3,
                    search__pruner__kind="none")
    search = plan.sweep_id
    assert [t.state.name for t in study_of(plan).trials] == ["COMPLETE", "FAIL", "RUNNING"]
    again = (f"python -m rlvr_vocab.train --multirun hydra/launcher=slurm hydra.launcher.partition=cpu "
             f"+search=demo_lr watchdog.enabled=false search.budget.workers=1 search.budget.n_trials=3 "
             f"search.pruner.kind=none sweep_id={search}")
    held = trial_run_name(search, 2)
    assert one_line_error(run_cli("resume", held)) == (
        f"error: run demo/{held}: is trial 2 of search {search}, which its workers resume (its study still runs "
        f"it); submit the search again: {again}")
    assert one_line_error(run_cli("resume", "--sweep", search)) == (
        f"error: --sweep {search}: is a search: its workers resume its unfinished trials, and its pruned ones stay "
        f"pruned; submit it again: {again}; or resume one trial's run by name, as a run of its own")
    assert submitted == []

    # The failed trial's run (its study recorded FAIL): a run of its own, through the search's launcher settings.
    failed = trial_run_name(search, 1)
    done = run_cli("resume", failed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"resume demo/{failed} (FAILED) through its launcher (search {search}'s), as a "
                                  "run of its own: its study is not told")
    cmd = submitted.pop()
    recorded = read_manifest(experiments_root / "demo" / failed)["overrides"]
    assert cmd[3:6] == ["--multirun", "hydra/launcher=slurm", "hydra.launcher.partition=cpu"]
    assert set(recorded) <= set(cmd) and f"run_name='{failed}'" in cmd and f"sweep_id={search}" in cmd
    assert not any(a.startswith(("+search", "hydra.mode")) for a in cmd)

    # --failed: the failed trial's run again; the held one is passed over, saying why.
    done = run_cli("resume", "--failed")
    assert done.returncode == 0, done.stderr
    assert f"skip {held}: is trial 2 of search {search}, which its workers resume" in done.stdout
    assert len(submitted) == 1 and f"run_name='{failed}'" in submitted[0]


# ------------------------------------------------------------------------------ report --search


def test_report_of_a_search(experiments_root):
    # The median pruner: its first two trials complete (importance needs two), later ones below them are pruned.
    plan = searched(experiments_root, search__budget__n_trials=6, search__sampler__startup_trials=2,
                    search__pruner__kind="median", search__pruner__startup_trials=2)
    search = plan.sweep_id
    states = [t.state.name for t in study_of(plan).trials]
    assert states.count("COMPLETE") >= 2 and "PRUNED" in states
    done = run_cli("report", "--search", search)
    assert done.returncode == 0, done.stderr
    page = experiments_root / "_reports" / f"{search}.html"
    assert done.stdout.strip() == f"report written to {page}"
    html = page.read_text()
    for expected in (f"<h1>Search {search}</h1>", "<h2>The objective over trials</h2>",
                     "<h2>Parameters and the objective</h2>", "<h3>Parameter importance</h3>",
                     "<td>training.learning_rate</td>", "<h2>Curves: the pruned trials beside the kept ones</h2>",
                     "<h2>Trials</h2>", "<td>pruned at step ",
                     "<code>python -m rlvr_vocab.train --multirun hydra/launcher=slurm"):
        assert expected in html, expected
    assert html.count('src="data:image/png;base64,') == 3  # the history, the parallel coordinates, the curves
    importances = re.findall(r"<tr><td>training\.\w+</td><td>([0-9.]+)</td></tr>", html)
    assert len(importances) == 2 and sum(map(float, importances)) == pytest.approx(1, abs=0.01)

    md = experiments_root / "search.md"
    assert run_cli("report", "--search", search, "--out", str(md)).returncode == 0
    assert sorted(p.name for p in experiments_root.glob("search-*.png")) == [
        "search-curves.png", "search-history.png", "search-parallel.png"]
    assert one_line_error(run_cli("report", "--search", search, "--vs", "other")) == (
        f"error: --vs: compares two arms, not a search's trials; give the search as an arm: --sweep {search} "
        "--vs other")


# -------------------------------------------------------------------------- compare: a search's best trial as an arm


def baseline(root, seeds, acc=0.5):
    """A sweep `base` of the demo's runs, one per seed (as tests/test_cli.py fakes runs)."""
    for seed in seeds:
        paths = RunPaths(root / "demo" / f"base-seed{seed}")
        paths.run_dir.mkdir(parents=True)
        m = Manifest.new(paths, "demo", paths.run_dir.name, "f" * 16)
        m.data.update(sweep_id="base", overrides=["experiment=demo", f"seed={seed}"], last_step=60, max_steps=60,
                      metrics={"reward": acc}, eval={"final": {"accuracy": acc, "step": 60}})
        m.start_attempt(world_size=1)
        m.end_attempt(Event.FINISH, RunState.COMPLETED)


def test_a_searchs_best_trial_with_its_seeds_is_an_arm_of_compare(experiments_root):
    plan = searched(experiments_root, search__budget__n_trials=3, search__seeds=[3, 4], search__pruner__kind="none")
    search, best = plan.sweep_id, study_of(plan).best_trial
    baseline(experiments_root, (3, 4))
    done = run_cli("compare", "--sweep", "base", "--vs", search, "--json")
    assert done.returncode == 0, done.stderr
    rows = [r for r in json.loads(done.stdout)["rows"] if r["metric"] == "acc_final"]
    assert len(rows) == 1  # one setting: the best trial's runs, not every trial's
    assert rows[0]["b"]["n"] == 2 and rows[0]["b"]["mean"] == pytest.approx(best.value)
    assert rows[0]["diff"]["n"] == 2  # paired by seed: 3 and 4
    text = run_cli("compare", "--sweep", "base", "--vs", search)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"{search} is a search: its arm is its best trial, {best.number} "
                                  f"({best.value:.4g}; training.learning_rate=")
    assert ", 2 runs\n" in text.stdout
    # Alone, the search is a sweep: every trial's runs.
    alone = run_cli("compare", "--sweep", search, "--json")
    assert alone.returncode == 0 and len(json.loads(alone.stdout)) >= 3
