"""Benchmark evaluation of a run's checkpoints: by hand (`rlvr-vocab eval --benchmarks`) and chained to training."""

import json
from types import SimpleNamespace

import pytest
from conftest import DEMO, FIXTURES, manifest, run_module, wait_for

from rlvr_vocab.eval.benchmark_eval import PENDING_MARK
from rlvr_vocab.job.chain import needed_by_evaluation
from rlvr_vocab.run import checkpoints

pytestmark = pytest.mark.slow
MATH500 = f"math500={FIXTURES / 'benchmarks' / 'math500'}"


def cli(*args: str, root=None):
    return run_module(*args, module="rlvr_vocab", env={"RLVR_EXPERIMENTS_ROOT": str(root)} if root else None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    done = run_module("run_name=bench", "training.max_steps=4", "training.save_steps=2", "eval.enabled=false", *DEMO,
                      env={"RLVR_EXPERIMENTS_ROOT": str(root)})
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_benchmarks_by_hand_are_recorded_once(trained):
    run_dir = trained / "demo" / "bench"
    initial = cli("eval", "bench", "--benchmarks", "arithmetic", "--checkpoints", "initial", "--max-samples", "4",
                  "--json", root=trained)
    assert initial.returncode == 0, initial.stderr[-3000:]
    [record] = json.loads(initial.stdout.strip().splitlines()[-1])
    assert (record["weights"], record["step"]) == ("initial", 0)  # the model GRPO started from
    assert json.loads((run_dir / "evals.json").read_text())["arithmetic"]["0"]["weights"] == "initial"

    args = ["eval", "bench", "--benchmarks", "arithmetic,math500", "--checkpoints", "all", "--benchmark-path", MATH500,
            "--max-samples", "4", "--json"]
    first = cli(*args, root=trained)
    assert first.returncode == 0, first.stderr[-3000:]
    records = json.loads(first.stdout.strip().splitlines()[-1])
    assert sorted((r["weights"], r["benchmark"]) for r in records) == sorted(
        [(w, b) for w in ("checkpoint-2", "checkpoint-4", "final") for b in ("arithmetic", "math500")]
        + [("initial", "math500")]), "initial on arithmetic is evaluated already"
    for r in records:
        assert {"accuracy", "avg@n", "cons@n", "format_rate", "mean_length", "mean_chars", "n", "num_samples",
                "settings_key", "step", "protocol"} <= set(r) and r["n"] == 4
        assert "problems" not in r, "the per-problem records stay in the result file"
    arithmetic = next(r for r in records if r["benchmark"] == "arithmetic")
    assert {"pass@2", "pass@4"} <= set(arithmetic) and arithmetic["num_samples"] == 4  # the benchmark's n and k
    summary = json.loads((run_dir / "evals.json").read_text())
    assert sorted(summary) == ["arithmetic", "math500"] and sorted(summary["math500"], key=int) == ["0", "2", "4"]
    assert summary["arithmetic"]["0"]["accuracy"] == record["accuracy"]
    row = next(r for r in json.loads(cli("status", "--json", root=trained).stdout) if r["run_name"] == "bench")
    assert row["benchmarks"] == summary, "the registry serves the results"

    files = {p: p.read_bytes() for p in (run_dir / "eval").rglob("*.json")}
    for data in map(json.loads, files.values()):
        assert [p["index"] for p in data["problems"]] == [0, 1, 2, 3]
        assert all(0 <= p["correct"] <= data["num_samples"] and "greedy_correct" in p for p in data["problems"])
    again = cli(*args, root=trained)
    assert again.returncode == 0 and json.loads(again.stdout.strip().splitlines()[-1]) == []  # nothing redone
    assert {p: p.read_bytes() for p in files} == files

    redo = next(p for p in files if "final" in p.name and "arithmetic" in str(p))
    redo.unlink()
    [repeated] = json.loads(cli(*args, root=trained).stdout.strip().splitlines()[-1])
    before = json.loads(files[redo])
    measures = ("accuracy", "avg@n", "cons@n", "pass@4", "format_rate", "mean_length")
    assert {k: repeated[k] for k in measures} == {k: before[k] for k in measures}, "same settings, same numbers"
    assert json.loads(redo.read_bytes())["problems"] == before["problems"], "problem by problem"


def test_bad_benchmark_requests_are_one_line(trained):
    for args, words in ((["--benchmarks", "math501"], "did you mean 'math500'"),
                        (["--benchmarks", "arithmetic", "--checkpoints", "3"], "no complete checkpoint at step 3"),
                        (["--benchmarks", "arithmetic", "--checkpoints", "initail"], "'initail' is not all, last"),
                        (["--benchmarks", "arithmetic", "--backend", "tpu"], "unknown backend 'tpu'")):
        out = cli("eval", "bench", *args, root=trained)
        assert out.returncode == 2 and words in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_chained_evaluation_never_changes_training(experiments_root):
    common = ["training.max_steps=4", "training.save_steps=2", "eval.enabled=false", *DEMO]
    chain = ["eval.chain=true", "eval.launcher=local", "eval.benchmarks=[arithmetic]",
             "eval.benchmark_max_samples=4", "eval.every_checkpoints=1"]
    plain = run_module("run_name=plain", *common)
    chained = run_module("run_name=chained", *common, *chain)
    assert plain.returncode == 0 and chained.returncode == 0, chained.stderr[-3000:]
    steps = [[json.loads(line) for line in (experiments_root / "demo" / name / "metrics.jsonl").read_text()
              .splitlines()] for name in ("plain", "chained")]
    keys = ("step", "reward", "loss", "completions/mean_length")
    assert [{k: m.get(k) for k in keys} for m in steps[0]] == [{k: m.get(k) for k in keys} for m in steps[1]]
    jobs = manifest(experiments_root / "demo" / "chained")["eval_jobs"]
    assert [j["weights"] for j in jobs] == ["initial", "checkpoint-2", "final"] and all("job_id" in j for j in jobs)
    summary = wait_for(lambda: _summary(experiments_root / "demo" / "chained"), 300, "the chained evaluations")
    assert sorted(summary["arithmetic"], key=int) == ["0", "2", "4"]
    assert summary["arithmetic"]["0"]["weights"] == "initial", "the curve starts where the model started"
    evaluated = (experiments_root / "demo" / "chained" / "eval" / "arithmetic").glob("*.json")
    assert sorted(p.name.rsplit("-", 1)[0] for p in evaluated) == ["checkpoint-2", "final", "initial"], "each once"


def _summary(run_dir):
    try:
        summary = json.loads((run_dir / "evals.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if len(summary.get("arithmetic", {})) == 3 else None


def test_a_resumed_attempt_submits_the_initial_evaluation_once(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from rlvr_vocab.config.schema import RootConfig
    from rlvr_vocab.eval import results
    from rlvr_vocab.eval.benchmark_eval import benchmark_configs
    from rlvr_vocab.eval.benchmarks import settings_key
    from rlvr_vocab.job import evaluate as job
    from rlvr_vocab.job.chain import EvalChain
    from rlvr_vocab.run.layout import RunPaths
    from rlvr_vocab.run.manifest import Manifest

    submitted = []
    monkeypatch.setattr(job, "submit_job", lambda *args: submitted.append(args) or SimpleNamespace(job_id="7"))
    cfg = OmegaConf.merge(OmegaConf.structured(RootConfig), {"eval": {
        "chain": True, "launcher": "local", "benchmarks": ["arithmetic"], "benchmark_max_samples": 4}})
    paths = RunPaths(tmp_path / "run")
    paths.run_dir.mkdir()

    def attempt(data: dict) -> dict:
        manifest = Manifest(paths, data)
        EvalChain(cfg, paths, manifest, save_steps=2).on_start()
        return manifest.data

    data = attempt({})
    assert [(j["weights"], j["job_id"]) for j in data["eval_jobs"]] == [("initial", "7")] and len(submitted) == 1
    assert attempt(data)["eval_jobs"] == data["eval_jobs"] and len(submitted) == 1, "submitted: not again"

    [bench] = benchmark_configs(["arithmetic"], None, 4)
    results.write_result(paths, {"benchmark": "arithmetic", "weights": "initial", "step": 0,
                                 "settings_key": settings_key(bench), "settings": {}, "accuracy": 0.5, "n": 4})
    assert "eval_jobs" not in attempt({}) and len(submitted) == 1, "evaluated (by hand): not again"


def test_a_milestone_is_kept_from_rotation_while_its_evaluation_runs(tmp_path):
    import subprocess
    import sys

    for step in (2, 4, 6):
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"w")
        checkpoints.mark_complete(path)
    evaluation = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "checkpoint-2" / PENDING_MARK).write_text(json.dumps({"job_id": str(evaluation.pid),
                                                                          "launcher": "local"}))
        removed = checkpoints.rotate(tmp_path, keep=1, protected=needed_by_evaluation)
        assert [p.name for p in removed] == ["checkpoint-4"] and (tmp_path / "checkpoint-2").exists()
    finally:
        evaluation.kill()
        evaluation.wait()
    removed = checkpoints.rotate(tmp_path, keep=1, protected=needed_by_evaluation)
    assert [p.name for p in removed] == ["checkpoint-2"], "its evaluation ended: rotated as usual"


def test_the_initial_weights_are_neither_final_nor_best():
    from rlvr_vocab.eval.results import final_and_best

    summary = {"arithmetic": {"0": {"accuracy": 0.9, "step": 0, "weights": "initial"},
                              "2": {"accuracy": 0.5, "step": 2, "weights": "checkpoint-2"}}}
    final, best = final_and_best(summary, "arithmetic")
    assert final["step"] == best["step"] == 2, "GRPO has not touched the initial weights"
    assert final_and_best({"arithmetic": {"0": summary["arithmetic"]["0"]}}, "arithmetic") == (None, None)
