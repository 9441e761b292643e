"""Launching on the real local Slurm (slurm/local_cluster.sh): sweeps, wrappers, requeue, failures."""

import json
import shlex
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import (
    DEMO,
    DEMO_MODEL,
    REPO,
    checkout_copy,
    documented_local_cluster_commands,
    edit_train,
    manifest,
    run_module,
    run_train,
    sacct_states,
    wait_for,
)

from rlvr_vocab.registry import INDEX_NAME

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_sweep_is_one_array_its_tasks_logs_and_usage_and_resubmission_submits_nothing(demo_cache, experiments_root):
    args = ["--multirun", "hydra/launcher=slurm_cpu", "hydra.launcher.wait=true", "training.learning_rate=1e-4,2e-4",
            "seed=0,1", "training.max_steps=4", *DEMO]
    dry = run_train(*args, "dry_run=true")
    first = run_train(*args)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    assert "4 runs as slurm job array" in first.stdout
    sweep = first.stdout.split("submitted sweep ")[1].split(":")[0]
    assert f"sweep {sweep}:" in dry.stdout, "a dry run names the sweep as the submission does"
    runs = sorted((experiments_root / "demo").iterdir())
    assert [r.name for r in runs] == ["lr=0.0001,seed=0", "lr=0.0001,seed=1", "lr=0.0002,seed=0", "lr=0.0002,seed=1"]
    job_ids = {json.loads((r / "submissions.json").read_text())[-1]["job_id"] for r in runs}
    assert len({j.split("_")[0] for j in job_ids}) == 1, "one array for the whole sweep"
    assert sacct_states(next(iter(job_ids))) == ["COMPLETED"] * 4
    for run in runs:
        m = manifest(run)
        assert m["status"] == "COMPLETED" and m["last_step"] == 4 and (run / "final" / "rlvr_complete.json").exists()
        assert m["attempts"][-1]["slurm_array_id"] in job_ids

    again = run_train(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 to submit" in again.stdout and "nothing to submit" in again.stdout
    assert again.stdout.count("completed at step 4") == 4

    # The task whose job id equals the array's id is not the array: `logs` shows each task's own output.
    array = next(iter(job_ids)).split("_")[0]
    assert any(manifest(r)["attempts"][0]["slurm_job_id"] == array for r in runs), "a task has the array's job id"
    for run in runs:
        logs = cli("logs", run.name, "--err")
        assert logs.returncode == 0 and f"run demo/{run.name}, attempt 1" in logs.stdout, logs.stderr
        assert all(f"run demo/{other.name}," not in logs.stdout for other in runs if other != run)

    # Resource accounting from sacct: `usage` and `show`; the index keeps a finished job's accounting.
    usage = json.loads(cli("usage", "--json").stdout)
    by_name = {u["run_name"]: u for u in usage["runs"]}
    assert sorted(by_name) == [r.name for r in runs] and usage["groups"][0]["exp"] == "demo"
    for name, u in by_name.items():
        submitted = json.loads((experiments_root / "demo" / name / "submissions.json").read_text())[-1]["job_id"]
        assert u["state"] == "COMPLETED" and u["slurm_jobs"] == [submitted], u
        assert u["elapsed_s"] > 0 and u["cpu_h"] > 0 and u["gpu_h"] == 0 and u["wait_s"] >= 0
        assert u["attempts"] == 1 and u["slurm_runs"] == 1 and u["steps_redone"] == 0
        assert u["max_rss"] > 50 * 2**20, "the job's peak memory (the local cluster samples every 5 s)"
    assert usage["total"]["cpu_h"] == pytest.approx(sum(u["cpu_h"] for u in by_name.values()))
    job = by_name[runs[0].name]["slurm_jobs"][0]
    with sqlite3.connect(experiments_root / INDEX_NAME) as db:
        (held,) = db.execute("select runs from accounting where job_id = ?", (job,)).fetchone()
    db.close()
    (row,) = json.loads(held)
    assert row[0] == job and row[1] == "COMPLETED" and row[7] == by_name[runs[0].name]["elapsed_s"]
    table = cli("usage")
    assert table.returncode == 0 and table.stdout.splitlines()[1].split()[:3] == ["demo", "4", "4"]
    line = next(ln for ln in cli("show", runs[0].name).stdout.splitlines() if ln.strip().startswith("resources"))
    assert "CPU-h" in line and "0.000 GPU-h" in line and "1 attempt, 1 Slurm run" in line


def cli(*args: str):
    return run_module(*args, module="rlvr_vocab")


def test_a_held_job_runs_the_code_submitted_and_fails_without_requeue_when_its_data_went(
        demo_cache, experiments_root, tmp_path):
    """While the job waits, its checkout is edited and its data removed: it runs the code as submitted (its snapshot),
    and fails on the missing data without a requeue."""
    checkout = checkout_copy(tmp_path / "checkout")  # submitted from a checkout (`-m` imports the cwd's package)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(f'{{"question": "{i}+1", "answer": "{i + 1}"}}\n' for i in range(30)))
    run_dir = experiments_root / "demo" / "vanishing"
    submit = run_module("--multirun", "hydra/launcher=slurm_cpu", "run_name=vanishing", f"dataset.path={data}",
                        "dataset.embedded=null", "dataset.test_split=null", "dataset.test_size=5",
                        "+hydra.launcher.additional_parameters.hold=true", *DEMO_MODEL,
                        cwd=checkout)
    assert submit.returncode == 0, submit.stderr[-2000:]
    submission = json.loads((run_dir / "submissions.json").read_text())[-1]
    job = submission["job_id"]
    edit_train(checkout, "EDITED WHILE PENDING")
    data.unlink()
    subprocess.run(["scontrol", "release", job.split("_")[0]], check=True)  # a pending array: by its id
    wait_for(lambda: manifest(run_dir).get("status") == "FAILED", 300, "the job to fail")
    m = manifest(run_dir)
    assert "dataset.path" in m["error"] and "does not exist" in m["error"]
    assert "does not exist" in (run_dir / "train.log").read_text()
    wait_for(lambda: sacct_states(job) == ["FAILED"], 60, "sacct to show FAILED")
    assert len(manifest(run_dir)["attempts"]) == 1 and sacct_states(job) == ["FAILED"], "not requeued"
    snapshots = list((experiments_root / "_code").iterdir())
    assert [d.name for d in snapshots] == [m["attempts"][0]["code"]["snapshot"]], "the attempt ran the snapshot"
    assert "EDITED WHILE PENDING" not in (run_dir / "train.log").read_text() + Path(submission["stderr"]).read_text()
    assert "EDITED" not in (snapshots[0] / "rlvr_vocab" / "train.py").read_text()

    # Resumed with the checkout's current code: the edit runs now, and the attempt says it ran other code.
    data.write_text("".join(f'{{"question": "{i}+1", "answer": "{i + 1}"}}\n' for i in range(30)))
    resumed = run_module("resume", "vanishing", "training.max_steps=2", "--code", "current", module="rlvr_vocab",
                         cwd=checkout)
    assert resumed.returncode == 0 and "the checkout's current code" in resumed.stdout, resumed.stderr[-2000:]
    wait_for(lambda: manifest(run_dir).get("status") == "COMPLETED", 300, "the resumed run to complete")
    first, second = manifest(run_dir)["attempts"]
    assert second["code"]["snapshot"] not in (None, first["code"]["snapshot"])
    resubmitted = json.loads((run_dir / "submissions.json").read_text())[-1]
    assert "EDITED WHILE PENDING" in Path(resubmitted["stderr"]).read_text()
    shown = run_module("show", "vanishing", module="rlvr_vocab").stdout
    assert all(f"code: snapshot {a['code']['snapshot']}" in shown for a in (first, second)), shown
    diff = run_module("diff", "vanishing@1", "vanishing@2", module="rlvr_vocab")
    assert diff.returncode == 0 and "+    logger.info('EDITED WHILE PENDING')" in diff.stdout, diff.stdout[-2000:]


def test_a_sweep_larger_than_max_array_size_is_split(demo_cache, experiments_root):
    """The local cluster's MaxArraySize is 201: 205 points go as two arrays, every point recorded, none lost."""
    submit = run_train("--multirun", "hydra/launcher=slurm_cpu", "seed=range(0,205)", "training.max_steps=1",
                        "+hydra.launcher.additional_parameters.hold=true", *DEMO)
    assert submit.returncode == 0, submit.stdout[-2000:] + submit.stderr[-2000:]
    runs = list((experiments_root / "demo").iterdir())
    jobs = [json.loads((r / "submissions.json").read_text())[-1]["job_id"] for r in runs]
    arrays = {j.split("_")[0] for j in jobs}
    try:
        assert len(runs) == len(set(jobs)) == 205 and len(arrays) == 2, arrays
        assert "205 runs as slurm job arrays" in submit.stdout
    finally:
        subprocess.run(["scancel", *arrays], check=False)


def test_the_documented_local_cluster_commands_are_accepted_as_shown(slurm_cluster, experiments_root):
    """Each command the docs give for the local cluster, as shown: Slurm accepts the sbatch ones (`--test-only`;
    tests/test_trustworthy_slurm.py runs the wrapper one to its end), a sweep validates every point and asks
    Slurm in a dry run."""
    commands = documented_local_cluster_commands()
    assert any(c.startswith("sbatch ") for c in commands), commands
    for command in commands:
        argv = shlex.split(command)
        if argv[0] == "sbatch":
            done = subprocess.run(["sbatch", "--test-only", *argv[1:]], cwd=REPO, capture_output=True, text=True)
        else:
            assert argv[:3] == ["python", "-m", "rlvr_vocab.train"], f"no way to check {command!r} here"
            done = run_train(*argv[3:], "dry_run=true")
        assert done.returncode == 0, (command, done.stderr[-2000:])
    assert not experiments_root.exists() or not any(experiments_root.rglob("run.json")), "nothing ran"


def test_a_search_is_one_array_of_workers_whose_trials_are_runs_and_resubmission_continues_it(
        demo_cache, experiments_root):
    """An Optuna search on Slurm: its workers are one job array's tasks; each trial a run of its own whose end (the
    study's) `status` shows; the same command again submits nothing; a larger budget trains only the new trials."""
    import optuna

    args = ["--multirun", "hydra/launcher=slurm_cpu", "hydra.launcher.wait=true", "experiment=demo", "+search=demo_lr",
            "search.budget.workers=2", "search.pruner.first_rung=2", "training.max_steps=4", "eval.eval_steps=2",
            *DEMO]
    first = run_train(*args, "search.budget.n_trials=3")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    search = first.stdout.split("search ", 1)[1].split(":")[0]
    journal = experiments_root / "_searches" / search / "study.journal"
    study = optuna.load_study(study_name=search, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    trials = {t.number: t.state.name for t in study.trials}
    assert sorted(trials) == [0, 1, 2] and set(trials.values()) <= {"COMPLETE", "PRUNED"}, trials
    runs = {int(p.name.rsplit("-t", 1)[1]): p for p in (experiments_root / "demo").iterdir()}
    assert sorted(runs) == [0, 1, 2], "each trial is a run of its own"
    arrays = {json.loads((run / "run.json").read_text())["attempts"][0]["slurm_array_id"].split("_")[0]
              for run in runs.values()}
    assert len(arrays) == 1, "both workers are tasks of one array"
    rows = {r["run_name"]: r for r in json.loads(cli("status", "--json", "--sweep", search).stdout)}
    for number, run in runs.items():
        state = {"COMPLETE": "COMPLETED", "PRUNED": "PRUNED"}[trials[number]]
        assert manifest(run)["status"] == rows[run.name]["state"] == state, (number, rows[run.name])
        if state == "PRUNED":
            assert "pruned at step 2 (rung 2)" in rows[run.name]["note"]
    shown = cli("search", "status", search)
    assert shown.returncode == 0 and "3 trials of 3" in shown.stdout and "best:" in shown.stdout, shown.stderr

    again = run_train(*args, "search.budget.n_trials=3")
    assert again.returncode == 0 and "nothing to submit" in again.stdout, again.stdout + again.stderr
    before = {n: manifest(run)["attempts"] for n, run in runs.items()}
    more = run_train(*args, "search.budget.n_trials=4")
    assert more.returncode == 0, more.stdout[-2000:] + more.stderr[-3000:]
    assert sorted(int(p.name.rsplit("-t", 1)[1]) for p in (experiments_root / "demo").iterdir()) == [0, 1, 2, 3]
    assert {n: manifest(run)["attempts"] for n, run in runs.items()} == before, "no trial trained twice"
    study = optuna.load_study(study_name=search, storage=study._storage)
    assert len(study.trials) == 4 and study.trials[3].state.name in ("COMPLETE", "PRUNED")
