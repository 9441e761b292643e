"""Resource accounting: sacct's rows parsed (steps folded into their job, array tasks, requeued runs, GPUs from
AllocTRES, MaxRSS units), the figures of a run (restarts from its attempts and metrics.jsonl), totals and groups,
and `usage`, `show` and `compare` on a hand-made registry with a fake sacct; finished jobs kept in the index."""

import json
import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rlvr_vocab.cli import main
from rlvr_vocab.ops import usage
from rlvr_vocab.registry import INDEX_NAME, Registry
from rlvr_vocab.slurm import client as slurm_client

HOUR = 3600.0

# What `sacct -n -P -D -o JobID,State,ExitCode,NodeList,Start,End,Submit,ElapsedRaw,AllocCPUS,AllocTRES,MaxRSS`
# prints on a GPU cluster: task 0 of array 16 with its steps; task 1 requeued once (two runs, each with its steps);
# tasks 2-3 still pending (one row for both); job 17 with typed GPUs only; job 18 running.
SACCT = """\
16_0|COMPLETED|0:0|gpu1|2026-12-02T10:00:10|2026-12-02T11:00:10|2026-12-02T10:00:00|3600|8|billing=8,cpu=8,gres/gpu=4,mem=64G,node=1|
16_0.batch|COMPLETED|0:0|gpu1|2026-12-02T10:00:10|2026-12-02T11:00:10|2026-12-02T10:00:10|3600|8|cpu=8,gres/gpu=4,mem=64G,node=1|2048000K
16_0.extern|COMPLETED|0:0|gpu1|2026-12-02T10:00:10|2026-12-02T11:00:10|2026-12-02T10:00:10|3600|8|billing=8,cpu=8,gres/gpu=4,mem=64G,node=1|1024K
16_0.0|COMPLETED|0:0|gpu1|2026-12-02T10:00:12|2026-12-02T11:00:09|2026-12-02T10:00:12|3597|8|cpu=8,gres/gpu=4,mem=64G,node=1|3.50G
16_1|REQUEUED|0:0|gpu2|2026-12-02T10:00:10|2026-12-02T10:30:10|2026-12-02T10:00:00|1800|8|billing=8,cpu=8,gres/gpu=4,mem=64G,node=1|
16_1.batch|CANCELLED|0:15|gpu2|2026-12-02T10:00:10|2026-12-02T10:30:10|2026-12-02T10:00:10|1800|8|cpu=8,gres/gpu=4,mem=64G,node=1|1.20G
16_1|COMPLETED|0:0|gpu1|2026-12-02T10:32:10|2026-12-02T11:02:10|2026-12-02T10:30:10|1800|8|billing=8,cpu=8,gres/gpu=4,mem=64G,node=1|
16_1.batch|COMPLETED|0:0|gpu1|2026-12-02T10:32:10|2026-12-02T11:02:10|2026-12-02T10:32:10|1800|8|cpu=8,gres/gpu=4,mem=64G,node=1|900M
16_[2-3%1]|PENDING|0:0|None assigned|Unknown|Unknown|2026-12-02T10:00:00|0|0||
17|FAILED|1:0|gpu3|2026-12-02T09:00:00|2026-12-02T09:06:00|2026-12-02T08:59:00|360|4|billing=4,cpu=4,gres/gpu:a100=2,mem=8G,node=1|
17.batch|FAILED|1:0|gpu3|2026-12-02T09:00:00|2026-12-02T09:06:00|2026-12-02T09:00:00|360|4|cpu=4,gres/gpu:a100=2,mem=8G,node=1|0
18|RUNNING|0:0|gpu4|2026-12-02T09:00:00|Unknown|2026-12-02T09:00:00|600|2|billing=2,cpu=2,node=1|
"""


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# ---------------------------------------------------------------------------------------------- parsing


def test_sacct_rows_fold_steps_into_their_job_run():
    rows = slurm_client.parse_sacct(SACCT)
    assert [r.job_id for r in rows] == ["16_0", "16_1", "16_1", "16_[2-3%1]", "17", "18"]
    first, requeued, rerun, pending, typed, running = rows
    assert (first.cpus, first.gpus, first.elapsed_s) == (8, 4, 3600.0)
    assert first.max_rss == int(3.5 * 2**30)  # the most any step used: step 0's, not the batch step's
    assert first.submit == ts("2026-12-02T10:00:00") and first.start == ts("2026-12-02T10:00:10")
    assert requeued.state == "REQUEUED" and requeued.max_rss == int(1.2 * 2**30)
    assert rerun.state == "COMPLETED" and rerun.max_rss == 900 * 2**20 and rerun.submit == ts("2026-12-02T10:30:10")
    assert pending.start is None and pending.cpus == 0 and pending.gpus == 0 and pending.max_rss is None
    assert typed.gpus == 2 and typed.max_rss == 0
    assert running.end is None and running.max_rss is None and running.gpus == 0


@pytest.mark.parametrize("tres, gpus", [
    ("billing=1,cpu=1,mem=4G,node=1", 0),  # the local cluster: no GPU gres
    ("billing=8,cpu=8,gres/gpu=4,mem=64G,node=1", 4),
    ("cpu=8,gres/gpu:a100=4,gres/gpu=4,mem=64G", 4),  # typed and plain: the plain count, not twice
    ("cpu=8,gres/gpu:a100=2,gres/gpu:v100=1", 3),  # typed only: their sum
    ("cpu=2,gres/gpumem=40G,gres/shard=2", 0),
    ("", 0),
])
def test_gpus_come_from_gres_gpu_in_alloc_tres(tres, gpus):
    assert slurm_client.gpus_of_tres(tres) == gpus


@pytest.mark.parametrize("text, size", [("", None), ("0", 0), ("2048K", 2048 * 1024), ("1.5M", int(1.5 * 2**20)),
                                        ("3G", 3 * 2**30), ("12", 12 * 1024), ("junk", None)])
def test_max_rss_units(text, size):
    assert slurm_client.parse_rss(text) == size


def test_sacct_asks_for_steps_and_every_run(monkeypatch):
    asked = []

    class Done:
        returncode, stdout, stderr = 0, SACCT, ""

    monkeypatch.setattr(slurm_client, "_run", lambda args, timeout: asked.append(args) or Done())
    rows = slurm_client.sacct(["16_1", "18"], every_run=True)
    assert "-X" not in asked[0] and "-D" in asked[0] and asked[0][-2:] == ["-j", "16,16_1,18"]
    assert "MaxRSS" in asked[0][asked[0].index("-o") + 1] and len(rows) == 6
    assert [r.state for r in slurm_client.job_runs("16_1")] == ["REQUEUED", "COMPLETED"]
    # 20,000 live jobs: one call each would pass Linux's 128 KiB limit on one argument.
    asked.clear()
    slurm_client.sacct([str(100000 + i) for i in range(20000)])
    assert len(asked) == 4 and all(len(args[-1]) < 128 * 1024 for args in asked)
    assert sum(args[-1].count(",") + 1 for args in asked) == 20000


# ---------------------------------------------------------------------------------------------- restarts


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def test_steps_redone_and_time_lost_from_attempts_and_metrics(tmp_path):
    t0 = 1_800_000_000.0
    metrics = tmp_path / "metrics.jsonl"
    # Attempt 1 logs steps 1-5 (one a minute) and is requeued at step 5 having saved checkpoint-4; attempt 2 resumes
    # from 4, reaches 6, and is preempted without a new checkpoint; attempt 3 resumes from 4 again and finishes at 8.
    lines = [(t0 + 60 * s, s) for s in range(1, 6)] + [(t0 + 1000 + 60 * (s - 4), s) for s in (5, 6)] + \
            [(t0 + 2000 + 60 * (s - 4), s) for s in (5, 6, 7, 8)]
    metrics.write_text("".join(json.dumps({"step": s, "time": t, "loss": 0.1}) + "\n" for t, s in lines))
    attempts = [{"started": iso(t0), "ended": iso(t0 + 330), "end_state": "PREEMPTED"},
                {"started": iso(t0 + 1000), "ended": iso(t0 + 1150), "resumed_from_step": 4},
                {"started": iso(t0 + 2000), "ended": iso(t0 + 2300), "resumed_from_step": 4}]
    redone, lost = usage.restarts(attempts, metrics)
    assert redone == (5 - 4) + (6 - 4)
    # Attempt 1 went on from its step-4 line (t0+240) to its end (t0+330); attempt 2 from its start (it logged no
    # step <= 4) to its end.
    assert lost == pytest.approx(90 + 150)


def test_restarts_use_a_recorded_last_step_skip_attempts_that_trained_nothing(tmp_path):
    attempts = [{"started": iso(0), "ended": iso(100), "last_step": 7},
                {"started": iso(200), "ended": iso(210)},  # failed at start-up: no step, nothing redone
                {"started": iso(300), "ended": iso(400), "resumed_from_step": 5, "last_step": 9},
                {"started": iso(500), "ended": iso(900), "last_step": 4}]  # started from scratch
    redone, lost = usage.restarts(attempts, tmp_path / "absent.jsonl")
    assert redone == (7 - 5) + (9 - 0)
    assert lost == pytest.approx(100 + 100)  # no metrics: each whole previous training attempt
    assert usage.restarts(attempts[:1], tmp_path / "absent.jsonl") == (0, 0.0)


def test_totals_and_groups():
    runs = [{"exp_name": "a", "sweep_id": "s1", "run_dir": "/x", "attempts": 2, "slurm_runs": 2, "elapsed_s": 10.0,
             "wait_s": 1.0, "cpu_h": 0.5, "gpu_h": 2.0, "steps_redone": 3, "lost_s": 5.0, "max_rss": 100},
            {"exp_name": "b", "sweep_id": None, "run_dir": "/y", "attempts": 1, "slurm_runs": None, "elapsed_s": 4.0,
             "wait_s": None, "cpu_h": None, "gpu_h": None, "steps_redone": 0, "lost_s": 0.0, "max_rss": None},
            {"exp_name": "a", "sweep_id": "s1", "run_dir": "/z", "attempts": 1, "slurm_runs": 1, "elapsed_s": 6.0,
             "wait_s": 2.0, "cpu_h": 0.25, "gpu_h": 0.0, "steps_redone": 0, "lost_s": 0.0, "max_rss": 300}]
    total = usage.total(runs)
    assert total == {"runs": 3, "attempts": 4, "slurm_runs": 3, "elapsed_s": 20.0, "wait_s": 3.0, "cpu_h": 0.75,
                     "gpu_h": 2.0, "steps_redone": 3, "lost_s": 5.0, "max_rss": 300, "unaccounted_runs": 1}
    by_sweep = usage.grouped(runs, "sweep")
    assert [(g["sweep"], g["runs"], g["cpu_h"]) for g in by_sweep] == [("-", 1, None), ("s1", 2, 0.75)]
    assert [g["exp"] for g in usage.grouped(runs, "exp")] == ["a", "b"]


# ---------------------------------------------------------------------------------------------- the CLI


def write_run(root: Path, exp: str, name: str, state: str | None, sweep: str, attempts: list[dict],
              submissions: list[dict] = (), metrics: list[tuple[float, int]] = ()) -> Path:
    """A run dir as its job leaves it, changed long enough ago for the index to trust its mtime."""
    run_dir = root / exp / name
    run_dir.mkdir(parents=True)
    created = attempts[0]["started"] if attempts else submissions[0]["submitted"]
    if state is not None:
        (run_dir / "run.json").write_text(json.dumps({
            "schema_version": 2, "run_id": f"id-{name}", "exp_name": exp, "run_name": name, "sweep_id": sweep,
            "status": state, "created": created, "updated": created, "last_step": 8, "max_steps": 8,
            "metrics": {"reward": 0.5}, "attempts": attempts, "checkpoints": []}))
    if submissions:
        (run_dir / "submissions.json").write_text(json.dumps(submissions))
    if metrics:
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "time": t}) + "\n" for t, s in metrics))
    long_ago = time.time() - 60
    os.utime(run_dir, (long_ago, long_ago))
    return run_dir


@pytest.fixture
def fake_sacct(monkeypatch, tmp_path):
    """sacct printing SACCT whatever it is asked (and logging the call), scontrol saying the controller is up, squeue
    queueing none."""
    bin_dir, log = tmp_path / "shim-bin", tmp_path / "sacct.log"
    bin_dir.mkdir()
    (tmp_path / "sacct.out").write_text(SACCT)
    (bin_dir / "sacct").write_text(f'#!/bin/sh\necho "$*" >> {log}\ncat {tmp_path / "sacct.out"}\n')
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho 'Slurmctld(primary) at vm is UP'\n")
    (bin_dir / "squeue").write_text("#!/bin/sh\n")  # queues none of them
    for tool in ("sacct", "scontrol", "squeue"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def registry_runs(experiments_root):
    """demo/done (task 16_0), demo/requeued (task 16_1, two attempts), other/queued (task 16_2, not started yet),
    demo/local (no Slurm), all COMPLETED but the queued one."""
    t0 = ts("2026-12-02T10:00:10")
    write_run(experiments_root, "demo", "done", "COMPLETED", "s1",
              [{"n": 1, "started": iso(t0), "ended": iso(t0 + 3600), "slurm_array_id": "16_0",
                "end_state": "COMPLETED"}])
    write_run(experiments_root, "demo", "requeued", "COMPLETED", "s1",
              [{"n": 1, "started": iso(t0), "ended": iso(t0 + 1800), "slurm_array_id": "16_1",
                "end_state": "PREEMPTED"},
               {"n": 2, "started": iso(t0 + 2520), "ended": iso(t0 + 3720), "slurm_array_id": "16_1",
                "resumed_from_step": 4, "end_state": "COMPLETED"}],
              metrics=[(t0 + 300 * s, s) for s in range(1, 6)] + [(t0 + 2600 + 100 * s, s) for s in range(5, 9)])
    write_run(experiments_root, "other", "queued", None, "s2", [],
              submissions=[{"job_id": "16_2", "submitted": "2026-12-02T10:00:00+00:00", "sweep_id": "s2"}])
    write_run(experiments_root, "demo", "local", "COMPLETED", "s1",
              [{"n": 1, "started": iso(t0), "ended": iso(t0 + 120), "end_state": "COMPLETED"}])
    return experiments_root


def cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def accounting(root: Path) -> dict[str, list]:
    with sqlite3.connect(root / INDEX_NAME) as db:
        return {job: json.loads(runs) for job, runs in db.execute("select job_id, runs from accounting")}


def test_usage_totals_runs_from_one_sacct_call_and_keeps_finished_jobs(registry_runs, capsys, fake_sacct):
    code, out, err = cli(capsys, "usage", "--json")
    assert code == 0, err
    result = json.loads(out)
    runs = {r["run_name"]: r for r in result["runs"]}
    done, requeued, queued, local = runs["done"], runs["requeued"], runs["queued"], runs["local"]
    assert (done["elapsed_s"], done["wait_s"], done["cpu_h"], done["gpu_h"]) == (3600, 10, 8, 4)
    assert done["max_rss"] == int(3.5 * 2**30) and done["attempts"] == 1 and done["slurm_runs"] == 1
    # Both runs of the requeued task: 2 x 1800 s on 8 CPUs and 4 GPUs, waits of 10 s and 120 s.
    assert (requeued["elapsed_s"], requeued["wait_s"], requeued["cpu_h"], requeued["gpu_h"]) == (3600, 130, 8, 4)
    assert requeued["attempts"] == 2 and requeued["slurm_runs"] == 2 and requeued["max_rss"] == int(1.2 * 2**30)
    # Attempt 1 logged step 5, attempt 2 resumed from 4: one step redone, the time from step 4's line (t0+1200) to
    # the end of attempt 1 (t0+1800).
    assert requeued["steps_redone"] == 1 and requeued["lost_s"] == pytest.approx(600)
    assert queued["state"] == "PENDING" and queued["elapsed_s"] == 0 and queued["wait_s"] > 0
    assert local["slurm_jobs"] == [] and local["elapsed_s"] == 120 and local["cpu_h"] is None
    groups = {g["exp"]: g for g in result["groups"]}
    assert groups["demo"]["runs"] == 3 and groups["demo"]["cpu_h"] == 16 and groups["demo"]["gpu_h"] == 8
    assert groups["other"]["cpu_h"] == 0 and result["total"]["attempts"] == 4
    assert result["total"]["steps_redone"] == 1 and result["total"]["unaccounted_runs"] == 1
    assert len(calls(fake_sacct)) == 1 and "-D" in calls(fake_sacct)[0]

    # Finished jobs are in the index (the pending task is not): the next refresh asks only for the one still queued.
    held = accounting(registry_runs)
    assert {"16_0", "16_1", "17"} <= set(held) and "16_[2-3%1]" not in held and "18" not in held
    assert [run[1] for run in held["16_1"]] == ["REQUEUED", "COMPLETED"]
    code, again, _ = cli(capsys, "usage", "--json")
    assert json.loads(again)["runs"] == [{**r, "wait_s": pytest.approx(r["wait_s"], abs=5)}
                                         for r in result["runs"]]
    assert calls(fake_sacct)[-1].endswith("-j 16")

    code, out, _ = cli(capsys, "usage", "--by", "sweep")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["sweep", "runs", "attempts", "elapsed"]
    assert lines[1].split()[:3] == ["s1", "3", "4"] and lines[3].split()[:2] == ["total", "4"]
    assert " 16.0 " in lines[1] and "1 run without Slurm accounting (1 local" in out


def test_usage_of_a_sweep_asks_nothing_once_its_jobs_are_held(registry_runs, capsys, fake_sacct):
    assert cli(capsys, "usage", "--sweep", "s1")[0] == 0
    assert calls(fake_sacct)[-1].endswith("-j 16")
    before = len(calls(fake_sacct))
    code, out, _ = cli(capsys, "usage", "--sweep", "s1", "--json")
    assert code == 0 and len(calls(fake_sacct)) == before, "every job of the sweep is held: no sacct call"
    assert json.loads(out)["total"]["cpu_h"] == 16
    code, out, _ = cli(capsys, "usage", "--since", "2026-12-03", "--json")
    assert code == 0 and json.loads(out)["total"]["runs"] == 0


def test_status_keeps_the_finished_jobs_it_was_told_of(experiments_root, capsys, fake_sacct):
    write_run(experiments_root, "demo", "broken", "FAILED", "s", [{"n": 1, "started": "2026-12-02T09:00:00+00:00",
                                                                   "slurm_job_id": "17", "end_state": "FAILED"}])
    assert cli(capsys, "status", "--json")[0] == 0
    assert len(calls(fake_sacct)) == 1 and calls(fake_sacct)[0].endswith("-j 17")
    assert accounting(experiments_root)["17"][0][1] == "FAILED"


@pytest.mark.parametrize("args, said", [
    (["--by", "owner"], "error: --by 'owner': is not a grouping; give one of exp, sweep, user"),
    (["--since", "last tuesday"], "error: --since 'last tuesday': is neither a date nor a span back from now"),
    (["--sweep", "nope"], "error: sweep 'nope': has no runs; see `rlvr-vocab status` for sweep ids"),
])
def test_usage_refuses_bad_options_in_one_line(registry_runs, capsys, fake_sacct, args, said):
    code, out, err = cli(capsys, "usage", *args)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and err.startswith(said)


def test_usage_by_user_is_the_run_dirs_owner(registry_runs, capsys, fake_sacct):
    code, out, _ = cli(capsys, "usage", "--by", "user", "--json")
    me = usage.owner(str(registry_runs))
    assert code == 0 and [g["user"] for g in json.loads(out)["groups"]] == [me]


def test_show_and_compare_show_the_resources(registry_runs, capsys, fake_sacct):
    code, out, _ = cli(capsys, "show", "requeued")
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("resources"))
    assert code == 0 and "elapsed 1h00m" in line and "8.000 CPU-h" in line and "4.000 GPU-h" in line
    assert "2 attempts, 2 Slurm runs, 1 step redone, 10m00s lost" in line and "max RSS 1.3 GB" in line
    code, out, _ = cli(capsys, "show", "requeued", "--json")
    assert json.loads(out)["usage"]["gpu_h"] == 4
    code, out, _ = cli(capsys, "show", "local")
    assert "elapsed 2m00s" in out and "- CPU-h" in out

    code, out, _ = cli(capsys, "compare", "--sweep", "s1", "--runs", "--json")
    rows = {r["run"]: r for r in json.loads(out)}
    assert (rows["done"]["cpu_h"], rows["done"]["gpu_h"], rows["done"]["elapsed_h"]) == (8, 4, 1)
    assert rows["requeued"]["attempts"] == 2 and rows["local"]["cpu_h"] is None


def test_an_old_index_is_rebuilt_with_the_accounting_table(registry_runs, capsys, fake_sacct):
    with sqlite3.connect(registry_runs / INDEX_NAME) as db:
        db.execute("create table runs (run_dir text primary key)")
        db.execute("pragma user_version = 7")
    db.close()
    assert cli(capsys, "usage", "--json")[0] == 0
    assert "16_0" in accounting(registry_runs)
    assert len(Registry(registry_runs).runs(ask_slurm=False)) == 4
