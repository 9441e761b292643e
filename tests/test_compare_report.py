"""compare's benchmark columns and `--vs`, plot's benchmark panels, and the report (HTML, Markdown, rendered by
Chromium as a person would see it) on synthetic run dirs with benchmark results."""

import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml

from rlvr_vocab.cli import main
from rlvr_vocab.core.states import Event, RunState
from rlvr_vocab.eval import stats
from rlvr_vocab.eval.results import write_result
from rlvr_vocab.registry import Registry
from rlvr_vocab.report.arms import Arm
from rlvr_vocab.report.browser import CHROMIUM_FLAGS, screenshot
from rlvr_vocab.report.document import Para
from rlvr_vocab.report.provenance import reproduce_commands
from rlvr_vocab.report.sections import QUESTION, build
from rlvr_vocab.report.wording import DIGITS, decimals, number
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import Manifest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = 100
# Accuracy at the final model per seed; the checkpoint at step 50 scores 0.05 less, except where said.
BASE = {"0": 0.50, "1": 0.52, "2": 0.48, "3": 0.51}  # seed 3: the baseline only (unpaired)
RV = {"0": 0.55, "1": 0.56, "2": 0.54}
AIME_SEEDS = ("0", "1")  # aime24 only for two seeds: n < 3


def make_run(root: Path, sweep: str, exp: str, seed: str, acc: float, size: int = 0, lr: str = "3e-6",
             requeued: bool = False, benchmarks: bool = True) -> Manifest:
    """A finished sweep run with its run.json, config.yaml, submissions.json, metrics.jsonl and benchmark results."""
    name = f"lr={lr},seed={seed}"
    paths = RunPaths(root / exp / name)
    paths.run_dir.mkdir(parents=True)
    overrides = [f"experiment={exp}", f"training.learning_rate={lr}", f"seed={seed}"]
    m = Manifest.new(paths, exp, name, "f" * 16)
    m.data.update(sweep_id=sweep, overrides=overrides, last_step=STEPS, max_steps=STEPS,
                  metrics={"reward": acc + 0.1}, wandb_id=f"w{exp}{seed}",
                  wandb_url=f"https://wandb.ai/lab/rlvr/runs/w{exp}{seed}",
                  eval={"initial": {"accuracy": 0.2, "step": 0}, "final": {"accuracy": acc - 0.1, "step": STEPS}})
    job = f"{len(exp)}{seed}"
    if requeued:  # a timeout: checkpoint, requeue, the same SLURM job resumes
        m.start_attempt(world_size=1, slurm_job_id=job)
        m.end_attempt(Event.STOP_REQUEUE, RunState.REQUEUED, "time limit", attempt_state=RunState.TIMEOUT)
    m.start_attempt(world_size=1, slurm_job_id=job)
    m.end_attempt(Event.FINISH, RunState.COMPLETED)
    paths.submissions.write_text(json.dumps([{
        "job_id": job, "submitted": "2026-01-01T00:00:00+00:00", "sweep_id": sweep, "launcher": "slurm",
        "overrides": [f"run_name='{name}'", *overrides, f"sweep_id={sweep}"],
        "hydra_overrides": ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.mode=MULTIRUN"]}]))
    config = {"seed": int(seed), "exp_name": exp, "run_name": name, "sweep_id": sweep,
              "model": {"name_or_path": "Qwen/Qwen3-0.6B", "reasoning_vocab": {"size": size, "mode": "free"}},
              "training": {"learning_rate": float(lr), "max_steps": STEPS}}
    paths.config.write_text(yaml.safe_dump(config))
    paths.metrics.write_text("".join(json.dumps({"step": s, "reward": acc * s / STEPS}) + "\n" for s in (10, 50, 100)))
    if benchmarks:
        _results(paths, "math500", {50: acc - 0.05, STEPS: acc})
        if seed in AIME_SEEDS:
            _results(paths, "aime24", {50: acc / 4, STEPS: acc / 5})  # the best is the checkpoint here
    return m


def _results(paths: RunPaths, benchmark: str, curve: dict[int, float]) -> None:
    for step, acc in curve.items():
        write_result(paths, {"benchmark": benchmark, "weights": "final" if step == STEPS else f"checkpoint-{step}",
                             "step": step, "settings_key": "0123456789ab", "settings": {}, "accuracy": acc,
                             "pass@8": min(1.0, acc + 0.2), "n": 500, "time": f"2026-01-01T00:{step // 10:02d}:00"})


# Results by the reasoning papers' protocol: per-problem records of N_SAMPLES samples each.
N_PROBLEMS, N_SAMPLES = 40, 8
# Each problem's chance of a correct sample (shared by both arms: pairing by problem removes it).
DIFFICULTY = np.random.default_rng(7).uniform(0.2, 0.8, N_PROBLEMS)


def correct_counts(seed: int, gain: float, step_share: float = 1.0, benchmark: str = "math500") -> list[int]:
    """Correct samples per problem of one run on a benchmark: difficulty + the arm's gain + a small seed effect,
    scaled up to the step's share of training (0: the initial weights)."""
    rng = np.random.default_rng([seed, int(gain * 1000), int(step_share * 100), sum(map(ord, benchmark))])
    p = np.clip(DIFFICULTY * (0.5 + 0.5 * step_share) + gain * step_share + rng.normal(0, 0.01), 0, 1)
    return rng.binomial(N_SAMPLES, p).tolist()


def write_benchmark(paths: RunPaths, benchmark: str, step: int, counts: list[int], vocab: bool,
                    skip: tuple[int, ...] = ()) -> None:
    """One result of the protocol (avg@n, greedy accuracy, lengths, shares for the vocabulary arm) with its
    per-problem records; problems in `skip` are missing from it."""
    problems = [{"index": i, "samples": N_SAMPLES, "correct": c, "voted_correct": c > N_SAMPLES / 2,
                 "greedy_correct": c > N_SAMPLES / 2, "mean_length": 100.0 - c, "mean_think_length": 60.0 - c}
                for i, c in enumerate(counts) if i not in skip]
    result = {"benchmark": benchmark, "weights": "initial" if step == 0 else "final" if step == STEPS else
              f"checkpoint-{step}", "step": step, "protocol": 2, "settings_key": "abcdef012345", "settings": {},
              "n": len(problems), "num_samples": N_SAMPLES,
              "avg@n": float(np.mean([p["correct"] / N_SAMPLES for p in problems])),
              "accuracy": float(np.mean([p["greedy_correct"] for p in problems])),
              "mean_length": 90.0 - 10 * vocab - step / 10, "mean_think_length": 50.0 - 10 * vocab - step / 20,
              "problems": problems, "time": f"2026-01-01T00:{step // 10:02d}:00"}
    if vocab:
        result.update({"reasoning_share": 0.3, "reasoning_share_in_think": 0.5 + step / 1000,
                       "reasoning_share_outside_think": 0.02})
    write_result(paths, result)


def make_arm(root: Path, sweep: str, exp: str, seeds: str, gain: float, vocab: bool = False,
             skip: dict[str, tuple[int, ...]] | None = None, benchmarks: tuple[str, ...] = ("math500",)) -> None:
    """A sweep whose runs are evaluated on `benchmarks` at steps 0, 50 and 100 (final); `skip`: seed -> problems its
    final results lack."""
    for seed in seeds:
        make_run(root, sweep, exp, seed, 0.5, size=64 if vocab else 0, benchmarks=False)
        paths = RunPaths(root / exp / f"lr=3e-6,seed={seed}")
        for benchmark in benchmarks:
            for step in (0, 50, STEPS):
                counts = correct_counts(int(seed), gain, step / STEPS, benchmark)
                write_benchmark(paths, benchmark, step, counts, vocab, (skip or {}).get(seed, ()) if step == STEPS
                                else ())


@pytest.fixture
def no_slurm(monkeypatch, tmp_path):
    """A PATH without sacct: every run here is settled anyway."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.fixture
def arms(experiments_root):
    """Sweep `base` (seeds 0-3, seed 1 requeued once) and sweep `rv` (seeds 0-2, a reasoning vocabulary)."""
    for seed, acc in BASE.items():
        make_run(experiments_root, "base", "baseline", seed, acc, requeued=seed == "1")
    for seed, acc in RV.items():
        make_run(experiments_root, "rv", "reasoning_vocab", seed, acc, size=64)
    return experiments_root


def cli(capsys, *args):
    code = main(list(args))
    return code, capsys.readouterr()


# ---------------------------------------------------------------------------------------------- compare


def test_compare_adds_benchmark_columns_with_summaries_over_seeds(arms, capsys, no_slurm):
    code, out = cli(capsys, "compare", "--sweep", "base", "--json")
    assert code == 0
    (row,) = json.loads(out.out)  # only seed is swept: one setting
    expected = stats.summarize(list(BASE.values()))
    assert row["n"] == 4 and row["math500 final"] == pytest.approx(expected["mean"])
    for field in ("std", "n", "ci_low", "ci_high"):
        assert row[f"math500 final_{field}"] == pytest.approx(expected[field])
    best = stats.summarize([BASE[s] / 4 for s in AIME_SEEDS])
    assert row["aime24 best"] == pytest.approx(best["mean"]) and row["aime24 best_n"] == 2
    assert row["aime24 best_ci_low"] == pytest.approx(best["ci_low"])
    assert row["note"] == stats.SMALL_N_NOTE  # aime24 has 2 seeds
    assert "aime24 best_step" not in row and row["acc_final"] == pytest.approx(sum(BASE.values()) / 4 - 0.1)

    code, out = cli(capsys, "compare", "--sweep", "base", "--runs", "--json")
    runs = {r["seed"]: r for r in json.loads(out.out)}
    assert runs["0"]["math500 final"] == pytest.approx(0.50) and runs["0"]["math500 best_step"] == STEPS
    assert runs["0"]["aime24 best_step"] == 50 and runs["3"]["aime24 final"] is None

    code, out = cli(capsys, "compare", "--sweep", "base")
    header = out.out
    assert code == 0 and "math500 final" in header and "math500 best" in header
    assert f"{expected['mean']:.3f} ± {expected['std']:.3f} [{expected['ci_low']:.3f}, " in header
    assert "(n=2)" in header and "note: some settings have n < 3 seeds" in header


def test_compare_without_benchmarks_keeps_todays_columns(experiments_root, capsys, no_slurm):
    for seed in "012":
        make_run(experiments_root, "plain", "baseline", seed, 0.5, benchmarks=False)
    code, out = cli(capsys, "compare", "--sweep", "plain", "--json")
    (row,) = json.loads(out.out)
    assert code == 0 and row["note"] is None and not any(" " in k for k in row)
    assert {"n", "reward", "reward_std", "acc_final", "acc_final_std", "acc_gain"} <= set(row)


def test_compare_vs_pairs_runs_by_seed(arms, capsys, no_slurm):
    expected = stats.paired_difference(BASE, RV)
    capsys.readouterr()  # its warning of the unpaired seed
    code, out = cli(capsys, "compare", "--sweep", "base", "--vs", "rv", "--json")
    assert code == 0
    result = json.loads(out.out)
    assert result["a"]["sweep"] == "base" and result["b"]["seeds"] == ["0", "1", "2"]
    rows = {r["metric"]: r for r in result["rows"]}
    assert list(rows)[:4] == ["aime24 final", "aime24 best", "math500 final", "math500 best"]
    math = rows["math500 final"]
    assert math["a"] == pytest.approx(stats.summarize(list(BASE.values())))
    assert math["b"] == pytest.approx(stats.summarize(list(RV.values())))
    assert math["diff"]["mean_diff"] == pytest.approx(expected["mean_diff"])
    assert math["diff"]["ci_low"] == pytest.approx(expected["ci_low"]) and math["diff"]["ci_low"] > 0
    assert math["diff"]["seeds"] == ["0", "1", "2"] and math["diff"]["a_only"] == ["3"]
    assert math["diff"]["b_only"] == [] and math["verdict"] == "B better" and math["note"] is None
    aime = rows["aime24 final"]
    assert aime["diff"]["n"] == 2 and aime["note"] == stats.SMALL_N_NOTE and result["note"] == stats.SMALL_N_NOTE
    assert rows["acc_final"]["diff"]["mean_diff"] == pytest.approx(expected["mean_diff"])

    code, out = cli(capsys, "compare", "--sweep", "base", "--vs", "rv")
    table = out.out
    assert code == 0 and "A = base vs B = rv" in table and "only A: 3" in table and "B better" in table
    assert f"{expected['mean_diff']:+.3f} [{expected['ci_low']:+.3f}, {expected['ci_high']:+.3f}]" in table
    assert "note: * n < 3 seeds" in table and "unpaired" not in out.err  # said in the table, not warned

    code, out = cli(capsys, "compare", "--sweep", "base", "--vs", "rv", "--csv")
    lines = out.out.splitlines()
    assert lines[0].startswith("setting,metric,a_mean,a_std,a_n,") and "diff_mean_diff" in lines[0]
    assert len(lines) == 1 + len(result["rows"]) and any(",0 1 2,3,,B better," in line for line in lines)


def test_compare_vs_pairs_the_same_other_swept_values(experiments_root, capsys, no_slurm):
    for lr, shift in (("1e-6", 0.0), ("3e-6", 0.1)):
        for seed in "01":
            make_run(experiments_root, "base", "baseline", seed, 0.4 + shift + int(seed) / 100, lr=lr)
            make_run(experiments_root, "rv", "reasoning_vocab", seed, 0.45 + 2 * shift + int(seed) / 100, lr=lr,
                     size=64)
    code, out = cli(capsys, "compare", "--sweep", "base", "--vs", "rv", "--json")
    rows = [r for r in json.loads(out.out)["rows"] if r["metric"] == "math500 final"]
    assert [r["label"] for r in rows] == ["learning_rate=1e-6", "learning_rate=3e-6"]
    assert [r["setting"]["both"] for r in rows] == [{"training.learning_rate": "1e-6"},
                                                    {"training.learning_rate": "3e-6"}]
    assert [r["diff"]["mean_diff"] for r in rows] == pytest.approx([0.05, 0.15])
    assert all(r["diff"]["n"] == 2 and r["note"] == stats.SMALL_N_NOTE for r in rows)


@pytest.mark.parametrize(("args", "said"), [
    (("--sweep", "nope"), "sweep 'nope': has no runs"),
    (("--sweep", "base", "--vs", "nope"), "sweep 'nope': has no runs"),
    (("--sweep", "base", "--vs", "far"), "--vs far: no seed in both arms (base has seeds [0, 1, 2, 3], far has [7])"),
    (("--sweep", "base", "--vs", "base"), "--vs: compares sweep 'base' with itself"),
    (("--sweep", "base", "--vs", "rv", "--runs"), "--runs and --vs do not go together"),
])
def test_compare_errors_are_one_line(arms, capsys, no_slurm, args, said):
    make_run(arms, "far", "reasoning_vocab", "7", 0.5)
    code, out = cli(capsys, "compare", *args)
    assert code == 2 and out.out == "" and said in out.err and out.err.count("\n") == 1


def test_report_errors_are_one_line(arms, capsys, no_slurm):
    make_run(arms, "far", "reasoning_vocab", "7", 0.5)
    code, out = cli(capsys, "report", "--sweep", "base", "--vs", "far")
    assert code == 2 and "no seed in both arms" in out.err and out.err.count("\n") == 1
    assert not (arms / "_reports").exists()


# ---------------------------------------------------------------------------------------------- plot


def _png_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def test_plot_vs_draws_one_panel_per_benchmark(arms, capsys, no_slurm, tmp_path):
    code, out = cli(capsys, "plot", "--sweep", "base", "--vs", "rv")
    default = arms / "_plots" / "base-vs-rv.png"
    assert code == 0 and out.out.strip().endswith("base-vs-rv.png") and default.read_bytes()[:8] == PNG_MAGIC
    for seed in "01":
        make_run(arms, "plain", "plain", seed, 0.5, benchmarks=False)
    assert cli(capsys, "plot", "--sweep", "plain", "--out", str(tmp_path / "plain.png"))[0] == 0
    # reward, held-out, aime24, math500: two rows of panels; without benchmarks one row, as before
    (width, height), (plain_width, plain_height) = _png_size(default), _png_size(tmp_path / "plain.png")
    assert width == plain_width and height > 1.6 * plain_height
    code, out = cli(capsys, "plot", "--vs", "rv")
    assert code == 2 and "--vs needs --sweep" in out.err


def test_benchmark_curves_come_from_the_results(arms):
    from rlvr_vocab.report.curves import load_curves, measure_curve
    from rlvr_vocab.report.plotting import group_by_arm

    curves = load_curves(arms / "baseline" / "lr=3e-6,seed=0")
    assert sorted(curves["benchmarks"]) == ["aime24", "math500"]
    assert measure_curve(curves["benchmarks"]["aime24"], "accuracy") == pytest.approx({50: 0.125, 100: 0.1})
    assert measure_curve(curves["benchmarks"]["math500"], "accuracy") == pytest.approx({50: 0.45, 100: 0.5})
    assert curves["benchmarks"]["math500"][100]["pass@8"] == pytest.approx(0.7)
    runs = Registry(arms).runs(ask_slurm=False)
    groups = group_by_arm({s: [r for r in runs if r.sweep_id == s] for s in ("base", "rv")})
    assert {k: len(v) for k, v in groups.items()} == {"base": 4, "rv": 3}


# ---------------------------------------------------------------------------------------------- report


def _html_report(root: Path, capsys) -> Path:
    code, out = cli(capsys, "report", "--sweep", "base", "--vs", "rv")
    path = root / "_reports" / "base-vs-rv.html"
    assert code == 0 and out.out.strip().endswith("_reports/base-vs-rv.html"), out
    return path


def test_report_is_one_self_contained_html_file(arms, capsys, no_slurm):
    path = _html_report(arms, capsys)
    page = path.read_text()
    assert os.listdir(path.parent) == ["base-vs-rv.html"]
    assert QUESTION in page and page.count('src="data:image/png;base64,') == 2
    assert 'src="http' not in page and "<link" not in page and "<script" not in page and "@import" not in page
    assert "url(" not in page and "<iframe" not in page
    # the config difference, A -> B
    assert "<td>model.reasoning_vocab.size</td><td>0</td><td>64</td>" in page
    assert "<td>exp_name</td><td>baseline</td><td>reasoning_vocab</td>" in page and "<td>seed</td>" in page
    assert "<td>run_name</td>" not in page and "<td>training.learning_rate</td>" not in page
    # tables: each arm's mean, the paired difference and the verdict; the caveat
    expected = stats.paired_difference(BASE, RV)
    assert "<td>math500 (final model)</td>" in page and "<td>aime24 (best checkpoint)</td>" in page
    assert f"{expected['mean_diff']:+.3f}" in page and 'class="better">B better</td>' in page
    assert "only A: 3" in page and "n &lt; 3 seeds: interval not meaningful" in page
    # the answer first, right after the title: these results are greedy accuracy, without per-problem records
    sections = [line for line in page.splitlines() if line.startswith("<h2>")]
    assert sections[:3] == ["<h2>Answer</h2>", "<h2>What differs between the arms</h2>",
                            "<h2>Results per benchmark</h2>"]
    assert '<p class="answer">math500 [greedy accuracy, 3 seeds]: B better. B - A = +0.050 [' in page
    assert "(resampled: seeds); P(B &gt; A) = 1.00 [" in page
    assert '<p class="answer">aime24 [greedy accuracy, 2 seeds]: n &lt; 3 seeds.' in page
    assert "<h2>How sure</h2>" in page and "<td>seeds needed for ±0.020</td>" not in page  # a header, not a cell
    # runs: states, attempts and requeues, W&B links
    assert 'href="https://wandb.ai/lab/rlvr/runs/wbaseline1"' in page and page.count('href="https://wandb.ai') == 7
    assert "TIMEOUT -&gt; COMPLETED" in page and "<td>COMPLETED</td>" in page
    # the commands that reproduce each arm, with the launcher settings they ran with
    base = ("python -m rlvr_vocab.train --multirun hydra/launcher=slurm hydra.launcher.partition=gpu "
            "experiment=baseline training.learning_rate=3e-6 seed=0,1,2,3")
    assert base in page and "experiment=reasoning_vocab training.learning_rate=3e-6 seed=0,1,2" in page
    assert "hydra.mode" not in page and "run_name=" not in page and "rlvr-vocab resume` continues" in page.replace(
        "<code>", "`").replace("</code>", "`")


def test_report_markdown_has_its_pngs_beside_it(arms, capsys, no_slurm, tmp_path):
    out = tmp_path / "notes" / "cmp.md"
    code, said = cli(capsys, "report", "--sweep", "base", "--vs", "rv", "--out", str(out))
    text = out.read_text()
    assert code == 0 and sorted(os.listdir(out.parent)) == ["cmp-benchmarks.png", "cmp-training.png", "cmp.md"]
    assert "](cmp-benchmarks.png)" in text and "](cmp-training.png)" in text
    assert (out.parent / "cmp-benchmarks.png").read_bytes()[:8] == PNG_MAGIC
    assert f"# {QUESTION}" in text and "| key | A | B |" in text
    assert text.index("## Answer\n") < text.index("> math500 [greedy accuracy, 3 seeds]: B better.") < \
        text.index("## What differs between the arms")
    assert "| model.reasoning_vocab.size | 0 | 64 |" in text
    assert "[W&B](https://wandb.ai/lab/rlvr/runs/wreasoning_vocab2)" in text
    assert "```bash\npython -m rlvr_vocab.train" in text and "<table" not in text and "<img" not in text
    code, said = cli(capsys, "report", "--sweep", "base", "--format", "md")
    assert code == 0 and sorted(os.listdir(arms / "_reports")) == ["base-benchmarks.png", "base-training.png",
                                                                   "base.md"]


def test_report_of_one_arm_shows_its_settings_and_swept_keys(experiments_root, capsys, no_slurm):
    for lr in ("1e-6", "3e-6"):
        for seed in "012":
            make_run(experiments_root, "grid", "baseline", seed, 0.5 + int(seed) / 100, lr=lr)
    code, _ = cli(capsys, "report", "--sweep", "grid")
    page = (experiments_root / "_reports" / "grid.html").read_text()
    assert code == 0 and "<td>training.learning_rate</td><td>1e-06, 3e-06</td>" in page
    assert "<td>learning_rate=1e-6</td>" in page and "paired seeds" not in page and "--vs &lt;sweep&gt;" in page
    assert "seed=0,1,2 training.learning_rate=1e-6,3e-6" not in page  # keys keep the order they were typed in
    assert "training.learning_rate=1e-6,3e-6 seed=0,1,2" in page


# ---------------------------------------------------------------------------------------------- rendered


@pytest.mark.slow
def test_report_renders_in_a_browser(experiments_root, capsys, no_slurm, chromium, tmp_path):
    """The report of two arms with per-problem results on two benchmarks (one problem missing from one run), step 0
    evaluated, lengths and reasoning-token shares: its answer first, as Chromium draws it (`report.png` is kept in
    the test's tmp_path: look at it)."""
    make_arm(experiments_root, "base", "baseline", "0123", gain=0.0, benchmarks=("aime24", "math500"))
    make_arm(experiments_root, "rv", "reasoning_vocab", "0123", gain=0.08, vocab=True, skip={"2": (7,)},
             benchmarks=("aime24", "math500"))
    page = _html_report(experiments_root, capsys)
    shot = tmp_path / "report.png"
    HEIGHT = 5600
    errors = screenshot(page, shot, height=HEIGHT)  # the whole page, the runs and the method at its end included
    assert errors == []
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, HEIGHT)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        # the page ends above the window's bottom: its last rows are all background
        assert image.convert("L").crop((0, HEIGHT - 100, 1280, HEIGHT)).getextrema() == (255, 255)
    assert colours is not None and len(colours) > 500  # text, tables, verdict cells and plots: not a blank page
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<table") == 8 and dom.count("<img") == 3 and "B better" in dom
    assert dom.index("<h2>Answer</h2>") < dom.index('<p class="answer">aime24 [avg@n (sampled pass@1), 39 problems') \
        < dom.index('<p class="answer">math500 [avg@n (sampled pass@1), 39 problems') \
        < dom.index('<p class="answer">overall [2 benchmarks x 4 seeds]') < dom.index("<h2>What differs")
    assert "1 problem not in every run of both arms dropped from both (index 7)" in dom


def _set_overrides(root: Path, exp: str, name: str, overrides: list[str]) -> None:
    Manifest.load(RunPaths(root / exp / name)).update(overrides=overrides)


def test_reproduce_commands_a_grid_file_or_one_command_per_run(experiments_root, no_slurm):
    for lr, seed in (("1e-6", "0"), ("3e-6", "0"), ("3e-6", "1")):  # not a full grid
        make_run(experiments_root, "holes", "baseline", seed, 0.5, lr=lr, benchmarks=False)
    for lr in ("1e-6", "3e-6"):  # `+sweep=lr_beta` brings its own grid
        for seed in "01":
            make_run(experiments_root, "file", "filed", seed, 0.5, lr=lr, benchmarks=False)
            _set_overrides(experiments_root, "filed", f"lr={lr},seed={seed}", [
                "+sweep=lr_beta", "experiment=baseline", f"training.learning_rate={lr}", "training.beta=0.0",
                f"seed={seed}", "run_name='x'", "sweep_id=file"])
    runs = Registry(experiments_root).runs(ask_slurm=False)
    holes, filed = (Arm("A", s, [r for r in runs if r.sweep_id == s]) for s in ("holes", "file"))
    prefix = "python -m rlvr_vocab.train --multirun hydra/launcher=slurm hydra.launcher.partition=gpu "
    assert reproduce_commands(holes) == [
        prefix + f"experiment=baseline training.learning_rate={lr} seed={seed}"
        for lr, seed in (("1e-6", "0"), ("3e-6", "0"), ("3e-6", "1"))]
    assert reproduce_commands(filed) == [prefix + "+sweep=lr_beta experiment=baseline"]


# ---------------------------------------------------------------------------------------------- what a user sees

# Equal means reached two ways: A's (0.575 + 0.6) / 2 prints as 0.587 at 3 decimals, B's 0.5875 as 0.588.
EQUAL_A, EQUAL_B = {"0": 0.575, "1": 0.6}, {"0": 0.5875, "1": 0.5875}


@pytest.fixture
def equal_arms(experiments_root):
    for seed in "01":
        make_run(experiments_root, "eqa", "baseline", seed, EQUAL_A[seed])
        make_run(experiments_root, "eqb", "reasoning_vocab", seed, EQUAL_B[seed], size=64)
    return experiments_root


def _vs_row(table: str, metric: str) -> list[str]:
    """The cells of the `metric` row of `compare --vs`'s terminal table (split on its runs of 2+ spaces)."""
    import re

    (line,) = [line for line in table.splitlines() if line.strip().startswith(metric + " ")]
    return re.split(r"\s{2,}", line.strip())


def test_compare_vs_prints_the_answer_and_says_what_its_columns_are(equal_arms, capsys, no_slurm):
    code, out = cli(capsys, "compare", "--sweep", "eqa", "--vs", "eqb")
    table = out.out
    assert code == 0
    # the answer first, the very lines the report leads with: per benchmark and overall, n < 3 seeds said
    blocks = build(Registry(equal_arms).runs(ask_slurm=False), "eqa", "eqb")
    answers = [b.text for b in blocks if isinstance(b, Para) and b.kind == "answer"]
    assert len(answers) == 3 and all(f"\n  {a}\n" in table for a in answers)  # aime24, math500, overall
    assert table.startswith("answer: does B (eqb) beat A (eqa)? B - A at the final model, paired by seed and problem")
    assert table.index(answers[-1]) < table.index("paired on seeds")  # then the table
    assert "\n  math500 [greedy accuracy, 2 seeds]: n < 3 seeds. B - A = +0.0000, no interval; P(B > A) = 0.50; " \
           "seeds needed to detect ±0.020: 9 (rough: from 2 seeds' spread). A 0.5875, B 0.5875; " \
           "2 paired seeds: 0, 1.\n" in table
    assert "\n  overall [2 benchmarks x 2 seeds]: n < 3 seeds. mean B - A = +0.000, no interval; IQM" in table
    # named columns and metrics, seeds listed as seeds
    assert "paired on seeds" in table and "unpaired seeds" in table and "held-out accuracy (final)" in table
    assert "training reward (last logged)" in table and "acc_final" not in table
    assert "final model: each run's last weights" in table
    metric, a, b, diff, seeds, unpaired, verdict = _vs_row(table, "math500 (final model)")
    assert seeds == "0, 1" and unpaired == "-" and verdict == "interval includes 0 *"
    # the means shown differ by the difference shown: 0.587 and 0.588 beside +0.000 needed a 4th decimal
    mean_a, mean_b, shown = a.split()[0], b.split()[0], diff.split()[0]
    assert (mean_a, mean_b, shown) == ("0.5875", "0.5875", "+0.0000")
    assert Decimal(mean_b) - Decimal(mean_a) == Decimal(shown)
    # every row with the same seeds in both arms agrees with itself
    for row in ("aime24 (final model)", "held-out accuracy (final)", "training reward (last logged)"):
        _, a, b, diff, *_ = _vs_row(table, row)
        assert Decimal(b.split()[0]) - Decimal(a.split()[0]) == Decimal(diff.split()[0]), row


def test_compare_vs_says_why_means_and_difference_differ_with_unpaired_seeds(arms, capsys, no_slurm):
    code, out = cli(capsys, "compare", "--sweep", "base", "--vs", "rv")
    assert code == 0 and "B - A is over the paired seeds only" in out.out
    assert "\n  math500 [greedy accuracy, 3 seeds]: B better. B - A = +0.050 [" in out.out
    assert "A 0.500, B 0.550; 3 paired seeds: 0, 1, 2.\n" in out.out  # A over the paired seeds: not 0.502
    _, a, b, diff, seeds, unpaired, verdict = _vs_row(out.out, "math500 (final model)")
    assert (seeds, unpaired, verdict) == ("0, 1, 2", "only A: 3", "B better") and a.startswith("0.502 ± ")


def test_numbers_round_alike_and_zero_has_no_sign():
    assert number(-1e-17, signed=True) == "+0.000" and number(-0.0004) == "0.000"
    assert number(0.0125, signed=True, digits=4) == "+0.0125" and number(None) == "-"
    row = {"a": stats.summarize(list(EQUAL_A.values())), "b": stats.summarize(list(EQUAL_B.values())),
           "diff": stats.paired_difference(EQUAL_A, EQUAL_B)}
    assert number(row["a"]["mean"]) != number(row["b"]["mean"])  # what a fixed 3 decimals showed
    assert decimals(row) == 4
    row["diff"]["a_only"] = ["3"]  # means over other seeds than the difference: nothing to agree with
    assert decimals(row) == DIGITS


def test_compare_says_what_its_short_column_names_mean(experiments_root, capsys, no_slurm):
    for seed in "012":
        make_run(experiments_root, "plain", "baseline", seed, 0.5, benchmarks=False)
    code, out = cli(capsys, "compare", "--sweep", "plain")
    legend = [line for line in out.out.splitlines() if line.startswith("columns: ")]
    assert code == 0 and len(legend) == 1
    assert "acc_final: held-out accuracy (greedy) of the final model" in legend[0]
    assert "acc_initial: held-out accuracy (greedy) before GRPO" in legend[0] and "_std: sample std" in legend[0]


def _figure(root: Path, arms: dict[str, str], panels=("reward", "accuracy", "benchmarks")):
    from rlvr_vocab.report.plotting import build_figure, group_by_arm

    runs = Registry(root).runs(ask_slurm=False)
    groups = group_by_arm({label: [r for r in runs if r.sweep_id == sweep] for label, sweep in arms.items()})
    return build_figure({k: [r.run_dir for r in v] for k, v in groups.items()}, "test", panels)


def test_plot_draws_equal_arms_apart_from_step_0_and_no_empty_panel(equal_arms):
    # the reasoning arm's math500 also has the model before GRPO evaluated: a result at step 0
    for seed in "01":
        _results(RunPaths(equal_arms / "reasoning_vocab" / f"lr=3e-6,seed={seed}"), "math500", {0: 0.3})
    fig = _figure(equal_arms, {"A eqa": "eqa", "B eqb": "eqb"})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["training reward", "held-out accuracy (greedy; step 0: before GRPO)",
                      "aime24: greedy accuracy", "math500: greedy accuracy"]
    for ax in fig.axes:
        lines = ax.get_lines()
        assert len(lines) == 2, ax.get_title()  # each arm drawn, none an empty panel
        assert len({line.get_marker() for line in lines}) == 2 and len({line.get_linestyle() for line in lines}) == 2
        assert ax.get_xlim()[0] <= 0  # every panel's axis shows step 0
    held_out, aime, math = fig.axes[1:]
    assert all(line.get_xdata()[0] == 0 for line in held_out.get_lines())  # eval.initial, at step 0
    assert [line.get_xdata()[0] for line in math.get_lines()] == [50, 0]  # only B has a result at step 0
    said = [t.get_text() for t in aime.texts]
    assert said == ["no evaluation at step 0 (before GRPO)"] and not math.texts and not held_out.texts
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["A eqa  (n=2)", "B eqb  (n=2)"]
    assert {(h.get_marker(), h.get_linestyle()) for h in fig.legends[0].legend_handles} == {("o", "-"), ("s", "--")}


def test_plot_draws_only_panels_with_data(experiments_root, capsys, no_slurm, tmp_path):
    for seed in "01":
        make_run(experiments_root, "plain", "plain", seed, 0.5, benchmarks=False)
    Manifest.load(RunPaths(experiments_root / "plain" / "lr=3e-6,seed=0")).update(eval={})
    Manifest.load(RunPaths(experiments_root / "plain" / "lr=3e-6,seed=1")).update(eval={})
    fig = _figure(experiments_root, {"plain": "plain"})
    assert [ax.get_title() for ax in fig.axes] == ["training reward"]  # no held-out evaluation, no benchmark
    empty = _figure(experiments_root, {"plain": "plain"}, ["benchmarks"])
    assert empty.axes == [] and "no data yet" in " ".join(t.get_text() for t in empty.texts)
    # three panels: two on top, the third over the whole width below, not beside an empty slot
    for seed in "01":
        make_run(experiments_root, "one", "one", seed, 0.5, benchmarks=False)
        _results(RunPaths(experiments_root / "one" / f"lr=3e-6,seed={seed}"), "math500", {50: 0.4, STEPS: 0.5})
    fig = _figure(experiments_root, {"one": "one"})
    fig.draw_without_rendering()  # constrained layout places the axes at draw time
    boxes = [ax.get_position() for ax in fig.axes]
    assert len(boxes) == 3 and boxes[2].width > 1.8 * boxes[0].width
