"""Resource accounting of a real job on the local Slurm: `usage` and `show` give its CPU-hours, elapsed time and
attempts from sacct, and the registry's index keeps the finished job's accounting (no GPU here: 0 GPU-hours)."""

import json
import sqlite3

import pytest
from conftest import DEMO, run_module, run_train, sacct_states, wait_for

from rlvr_vocab.registry import INDEX_NAME

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def cli(*args: str):
    return run_module(*args, module="rlvr_vocab")


def test_usage_and_show_of_a_completed_run(demo_cache, experiments_root):
    run_dir = experiments_root / "demo" / "metered"
    submit = run_train("--multirun", "hydra/launcher=slurm_cpu", "hydra.launcher.wait=true", "run_name=metered",
                        "training.max_steps=2", "eval.enabled=false", *DEMO)
    assert submit.returncode == 0, submit.stdout[-2000:] + submit.stderr[-2000:]
    job = json.loads((run_dir / "submissions.json").read_text())[-1]["job_id"]
    wait_for(lambda: sacct_states(job) == ["COMPLETED"], 120, "sacct to record the job COMPLETED")

    done = cli("usage", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (run,) = result["runs"]
    assert run["run_name"] == "metered" and run["state"] == "COMPLETED" and run["slurm_jobs"] == [job]
    assert run["elapsed_s"] > 0 and run["cpu_h"] > 0 and run["gpu_h"] == 0 and run["wait_s"] >= 0
    assert run["attempts"] == 1 and run["slurm_runs"] == 1 and run["steps_redone"] == 0
    assert run["max_rss"] > 50 * 2**20, "the job's peak memory (the local cluster samples every 5 s)"
    assert result["total"]["cpu_h"] == run["cpu_h"] and result["groups"][0]["exp"] == "demo"

    # The finished job's accounting is in the index: the row sacct gave for it, one run.
    with sqlite3.connect(experiments_root / INDEX_NAME) as db:
        (held,) = db.execute("select runs from accounting where job_id = ?", (job,)).fetchone()
    db.close()
    (row,) = json.loads(held)
    assert row[0] == job and row[1] == "COMPLETED" and row[7] == run["elapsed_s"]

    table = cli("usage")
    assert table.returncode == 0 and table.stdout.splitlines()[1].split()[:3] == ["demo", "1", "1"]
    shown = cli("show", "metered")
    line = next(ln for ln in shown.stdout.splitlines() if ln.strip().startswith("resources"))
    assert "CPU-h" in line and "0.000 GPU-h" in line and "1 attempt, 1 Slurm run" in line
    print(table.stdout, line, sep="\n")
