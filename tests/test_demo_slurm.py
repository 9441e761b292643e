"""The README's main command on the local Slurm: both arms x 2 seeds, evaluations chained, compared, reported."""

import json
import subprocess

import pytest
from conftest import run_module

from rlvr_vocab.report import screenshot

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_the_demo_answers_the_question(slurm_cluster, chromium, experiments_root, tmp_path):
    demo = run_module(module="rlvr_vocab.demo", timeout=1500)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    runs = sorted(p for arm in ("demo", "demo_reasoning") for p in (experiments_root / arm).iterdir())
    assert [f"{p.parent.name}/{p.name}" for p in runs] == [
        "demo/seed=0", "demo/seed=1", "demo_reasoning/seed=0", "demo_reasoning/seed=1"]
    for run in runs:
        manifest = json.loads((run / "run.json").read_text())
        assert manifest["status"] == "COMPLETED"
        # The docs' claim: GRPO visibly helps on the demo, every arm and seed.
        held_out = manifest["eval"]
        assert held_out["final"]["accuracy"] - held_out["initial"]["accuracy"] >= 0.15, (run, held_out)
        assert f"accuracy after GRPO: {held_out['final']['accuracy']:.1%}" in (run / "train.log").read_text()
        jobs = manifest["eval_jobs"]  # the initial weights, each kept milestone checkpoint (every 3rd), final/
        assert [j["weights"] for j in jobs] == ["initial", "checkpoint-30", "final"], jobs
        assert all("job_id" in j for j in jobs), jobs
        states = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State", "-j", ",".join(j["job_id"] for j in jobs)],
                                capture_output=True, text=True).stdout.split()
        assert states == ["COMPLETED"] * 3, states
        assert sorted(json.loads((run / "evals.json").read_text())["arithmetic"], key=int) == ["0", "30", "60"]
        shown = run_module("show", f"{run.parent.name}/{run.name}", module="rlvr_vocab").stdout
        assert "evaluation of checkpoint-30 on arithmetic: job" in shown and "benchmark arithmetic:" in shown

    assert "B - A [95% CI]" in demo.stdout and "paired on seeds" in demo.stdout  # compare --vs
    assert "answer:" in demo.stdout and "2 paired seeds: 0, 1" in demo.stdout  # the answer, in words
    report = experiments_root / "_reports" / "demo-seeds-vs-demo_reasoning-seeds.html"
    assert f"report written to {report}" in demo.stdout or report.name in demo.stdout
    page = report.read_text()
    assert "<table" in page and page.count("<img") >= 2 and "data:image/png;base64," in page
    png = tmp_path / "report.png"
    assert screenshot(str(report), str(png)) == [], "no console messages"
    from matplotlib.image import imread

    pixels = imread(png)
    assert pixels.shape[0] > 1000 and len({tuple(p) for p in pixels[::7, ::7].reshape(-1, pixels.shape[2])}) > 100
