"""The benchmarks' pure helpers (medians, ratios, interleaving, step times, the report, the synthetic
registry, the command shims); and, slow, one small benchmark end to end. No timing is asserted."""

import json
import os
import subprocess

import pytest
from conftest import run_module

from rlvr_vocab.bench import cli_latency, common, sweep, training
from rlvr_vocab.registry import Registry


def test_median_and_ratios():
    assert common.median([3.0, 1.0, 2.0]) == 2.0
    assert common.ratio(3.0, 2.0) == 1.5 and common.ratio(1.0, 0.0) == float("inf")
    # The median of per-pair ratios, not the ratio of medians.
    assert common.median_ratio([2.0, 9.0, 3.0], [1.0, 3.0, 3.0]) == 2.0


def test_interleave_rotates_which_side_runs_first():
    order = []
    samples = common.interleave(3, {"a": lambda: order.append("a") or 1.0, "b": lambda: order.append("b") or 2.0})
    assert order == ["a", "b", "b", "a", "a", "b"]
    assert samples == {"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]}


def test_step_times_use_the_first_log_of_a_step():
    lines = [{"step": 1, "time": 110.0, "num_tokens": 10}, {"step": 5, "time": 114.0},
             {"step": 9, "time": 118.0, "num_tokens": 90}, {"step": 9, "time": 125.0}]  # the last: train summary
    times = training.step_times(100.0, lines, 9, save_steps=5)
    assert times == training.StepTimes(startup_s=10.0, per_step_s=1.0, per_step_unsaved_s=1.0, num_tokens=90)
    with pytest.raises(ValueError, match="no log at step 1, 5 and 12"):
        training.step_times(100.0, lines, 12, save_steps=5)


def test_report_markdown_and_console_line():
    report = common.Report(command="python -m rlvr_vocab.bench --repeats 2", repeats=2,
                           machine={"cpu": "Some CPU, 2 cores, 4.0 GiB RAM", "os": "Linux", "python": "3.11.7"},
                           versions={"torch": "2.13.0", "slurm": "22.05.8"})
    report.figures = [
        common.Figure("status, 1,000 runs", 0.25, "s", target="< 0.3 s", met=True, baseline=0.05,
                      baseline_name="python -c pass", ratio=5.0, samples=10, note="one sacct call"),
        common.Figure("sbatch submissions", 2, "calls", target="1 (one job array)", met=False),
        common.Figure("import time", 0.1, "s"),
    ]
    report.errors["requeue"] = "no Slurm cluster: sinfo failed"
    text = report.markdown()
    assert text.startswith("## Benchmarks, ") and "Some CPU, 2 cores, 4.0 GiB RAM" in text
    assert "torch 2.13.0, slurm 22.05.8" in text and "at start, - at end" in text
    assert "| status, 1,000 runs | 0.250 s | 0.050 s (python -c pass) | 5.000 | < 0.3 s | met |" in text
    assert "| sbatch submissions | 2 calls | - | - | 1 (one job array) | **missed** |" in text
    assert common.fmt_value(1, "calls") == "1 call" and common.fmt_value(0, "steps") == "0 steps"
    assert "| import time | 0.100 s | - | - | - | - |" in text
    assert "- status, 1,000 runs: one sacct call" in text and "- requeue: no Slurm cluster" in text
    line = common.figure_line(report.figures[0])
    assert line == ("status, 1,000 runs: 0.250 s vs python -c pass 0.050 s, ratio 5.000 (n=10); "
                    "target < 0.3 s: met")


def test_synthetic_registry_reads_as_runs(tmp_path):
    root = tmp_path / "registry"
    cli_latency.write_synthetic_registry(root, 40)
    views = Registry(root).runs(ask_slurm=False)
    assert len(views) == 40 and len({v.run_name for v in views}) == 40
    assert sum(v.manifest is None for v in views) == 2  # one pending run in 20: submitted, no manifest yet
    assert sum(v.m.get("status") == "RUNNING" for v in views) == 2
    assert all(v.job_id and v.job_id.startswith(str(cli_latency.FIRST_ARRAY_ID)) for v in views)
    assert sum((v.m.get("status") or "pending") == "COMPLETED" for v in views) == 34


def test_synthetic_registry_files_hold_what_synthetic_run_says(tmp_path):
    """The fast writer (compact JSON, plain writes) writes each run's manifest and submissions as they are."""
    cli_latency.write_synthetic_registry(tmp_path, 21)
    for i in (0, 1, 2, 20):  # running, pending (no manifest), failed, and a run of the next cycle
        exp, name, manifest, submissions = cli_latency.synthetic_run(i)
        run_dir = tmp_path / exp / name
        assert json.loads((run_dir / "submissions.json").read_text()) == submissions
        assert (json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else None) == manifest


def test_shims_log_each_call_and_pass_output_through(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (real / "fakecmd").write_text("#!/bin/sh\necho \"Submitted batch job 42\"\necho second line\nexit 3\n")
    (real / "fakecmd").chmod(0o755)
    monkeypatch.setenv("PATH", f"{real}{os.pathsep}{os.environ['PATH']}")
    path = common.make_shims(tmp_path / "shims", ["fakecmd"])
    log = tmp_path / "calls.log"
    env = {**os.environ, "PATH": path, common.SHIM_LOG_ENV: str(log)}
    out = subprocess.run(["fakecmd", "--array=0-99", "job.sh"], env=env, capture_output=True, text=True)
    assert out.returncode == 3 and out.stdout == "Submitted batch job 42\nsecond line\n"
    [call] = common.read_calls(log)
    assert (call.name, call.rc, call.first_line, call.args) == ("fakecmd", 3, "Submitted batch job 42",
                                                                "--array=0-99 job.sh")
    assert call.end >= call.start > 0


def test_sweep_counts_submissions_not_test_only_checks():
    calls = [common.ShimCall("sbatch", 1.0, 1.2, 0, "", "--test-only /tmp/a.sh"),
             common.ShimCall("sbatch", 2.0, 2.5, 0, "Submitted batch job 17", "/tmp/a.sh"),
             common.ShimCall("sacct", 3.0, 3.1, 0, "17_0|PENDING", "-j 17")]
    assert [c.start for c in sweep.submissions(calls)] == [2.0]
    assert sweep.job_ids(calls) == ["17"]


def test_sweep_expects_one_array_per_max_array_size():
    assert sweep.arrays_for(1000, 201) == 5 and sweep.arrays_for(1000, 1001) == 1
    assert sweep.arrays_for(1000, 1000) == 1 and sweep.arrays_for(1000, None) == 1


@pytest.mark.slow
def test_bench_imports_end_to_end(tmp_path):
    out = tmp_path / "bench.md"
    done = run_module("--only", "imports", "--repeats", "1", "--out", str(out), module="rlvr_vocab.bench", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert "| import rlvr_vocab.cli: modules |" in text and "no torch/transformers/trl | met |" in text
    assert "| job start-up before the model loads |" in text


def test_a_live_synthetic_registry_has_its_unfinished_runs_written_recently():
    recent = "2026-12-02T12:00:00+00:00"
    for i in range(20):
        _, _, manifest, submissions = cli_latency.synthetic_run(i, recent)
        unfinished = i % 20 < 3  # running, pending, failed
        assert (submissions[0]["submitted"] == recent) == unfinished
        assert manifest is None or (manifest["updated"] == manifest["attempts"][0]["started"] == recent) == unfinished
