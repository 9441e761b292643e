"""The answer `compare --vs` prints first and the report leads with, on synthetic run dirs whose benchmark results carry
per-problem records: a clear gain, none, fewer than 3 seeds, problems paired by index, learning speed and lengths."""

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_compare_report import (
    N_PROBLEMS,
    N_SAMPLES,
    STEPS,
    cli,
    correct_counts,
    make_arm,
    make_run,
    no_slurm,  # noqa: F401 - a fixture, used by every test here
)

from rlvr_vocab.eval.paired import paired_bootstrap
from rlvr_vocab.registry import Registry
from rlvr_vocab.report.answer import answer
from rlvr_vocab.report.arms import load_arms
from rlvr_vocab.report.learning import area, first_reaching, learning_speed
from rlvr_vocab.run.layout import RunPaths

pytestmark = pytest.mark.usefixtures("no_slurm")


def answer_of(root: Path, sweep: str = "a", vs: str = "b", effect: float = 0.02):
    a, b = load_arms(Registry(root).runs(ask_slurm=False), sweep, vs)
    return a, b, answer(a, b, effect)


def answer_block(out: str) -> list[str]:
    """The lines `compare --vs` prints before its table: the heading and the indented answer lines."""
    lines = out.splitlines()
    assert lines[0].startswith("answer: does B (b) beat A (a)? B - A at the final model"), lines[0]
    return lines[1:lines.index("")]


def test_a_clear_gain_is_said_first_with_its_interval(experiments_root, capsys):
    make_arm(experiments_root, "a", "baseline", "0123", gain=0.0)
    make_arm(experiments_root, "b", "reasoning_vocab", "0123", gain=0.1, vocab=True)
    code, out = cli(capsys, "compare", "--sweep", "a", "--vs", "b")
    assert code == 0
    math, overall, *notes = answer_block(out.out)
    assert math.startswith(f"  math500 [avg@n (sampled pass@1), {N_PROBLEMS} problems x 4 seeds]: B better. "
                           "B - A = +0.")
    assert "(resampled: seeds, problems); P(B > A) = 1.00 [" in math and "; detectable at this n: ±0.0" in math
    assert math.endswith("4 paired seeds: 0, 1, 2, 3.")
    assert overall.startswith("  overall [1 benchmark x 4 seeds]: B better. mean B - A = +0.")
    assert "IQM B - A = +0." in overall and "P(B > A) = 1.00 [" in overall
    # the numbers are those of eval.paired on the per-problem scores, paired by seed and problem
    a, b, found = answer_of(experiments_root)
    (x,) = found.benchmarks
    scores = {arm: np.array([[c / N_SAMPLES for c in correct_counts(s, gain)] for s in range(4)])
              for arm, gain in (("a", 0.0), ("b", 0.1))}
    expected = paired_bootstrap(scores["a"], scores["b"], n_boot=2000, rng=np.random.default_rng(0))
    assert x.difference == expected and x.difference.low > 0 and x.verdict == "B better"
    assert f"B - A = {x.difference.difference:+.3f} [{x.difference.low:+.3f}, {x.difference.high:+.3f}]" in math
    # then the existing table, and the same answer again: deterministic
    assert out.out.index("B - A [95% CI]") > out.out.index(overall) and "math500 (final model)" in out.out
    assert cli(capsys, "compare", "--sweep", "a", "--vs", "b")[1].out == out.out


def test_no_gain_is_no_difference_shown(experiments_root, capsys):
    make_arm(experiments_root, "a", "baseline", "0123", gain=0.0)
    make_arm(experiments_root, "b", "reasoning_vocab", "0123", gain=0.0, vocab=True)  # the same runs, seed by seed
    for seed in "13":  # B flips one sample up on seeds 1 and 3, one down on problem 5 of seed 3
        result = RunPaths(experiments_root / "reasoning_vocab" / f"lr=3e-6,seed={seed}").eval / "math500"
        path = result / "final-abcdef012345.json"
        data = json.loads(path.read_text())
        data["problems"][0]["correct"] = min(N_SAMPLES, data["problems"][0]["correct"] + 1)
        if seed == "3":
            data["problems"][5]["correct"] -= 1
        path.write_text(json.dumps(data))
    code, out = cli(capsys, "compare", "--sweep", "a", "--vs", "b", "--json")
    found = json.loads(out.out)["answer"]
    (x,) = found["benchmarks"]
    assert code == 0 and x["verdict"] == "no difference shown"
    assert x["difference"]["low"] < 0 < x["difference"]["high"] and x["difference"]["levels"] == ["seeds", "problems"]
    code, out = cli(capsys, "compare", "--sweep", "a", "--vs", "b")
    math, overall, *_ = answer_block(out.out)
    assert ": no difference shown. B - A = +0.00" in math and "detectable at this n: ±0.0" in math
    assert ": no difference shown. mean B - A = +0.00" in overall


def test_fewer_than_3_seeds_say_so_and_give_the_seeds_needed_instead(experiments_root, capsys):
    make_arm(experiments_root, "a", "baseline", "01", gain=0.0)
    make_arm(experiments_root, "b", "reasoning_vocab", "01", gain=0.1, vocab=True)
    code, out = cli(capsys, "compare", "--sweep", "a", "--vs", "b", "--effect", "0.05")
    math, overall, *_ = answer_block(out.out)
    assert code == 0 and ": n < 3 seeds. B - A = +0." in math and ", no interval; P(B > A) = 1.00;" in math
    assert re.search(r"; seeds needed to detect ±0\.050: \d+ \(rough: from 2 seeds' spread\)\. ", math), math
    assert math.endswith("2 paired seeds: 0, 1.")
    assert ": n < 3 seeds. mean B - A = +0." in overall and "[" not in overall.split("]: ", 1)[1]
    _, _, found = answer_of(experiments_root, effect=0.05)
    assert found.benchmarks[0].difference.low is None and found.overall[0].iqm.low is None
    with pytest.raises(SystemExit) as refused:  # argparse's own refusal
        cli(capsys, "compare", "--sweep", "a", "--vs", "b", "--effect", "2")
    assert refused.value.code == 2 and "argument --effect: '2' is not a difference between 0 and 1" in \
        capsys.readouterr().err


def test_problems_are_paired_by_index_and_one_missing_is_dropped_from_both(experiments_root):
    make_arm(experiments_root, "a", "baseline", "012", gain=0.0)
    make_arm(experiments_root, "b", "reasoning_vocab", "012", gain=0.1, vocab=True, skip={"1": (3, 39)})
    _, _, found = answer_of(experiments_root)
    (x,) = found.benchmarks
    assert x.n_problems == N_PROBLEMS - 2 and x.difference.n_problems == N_PROBLEMS - 2
    assert x.notes == ["2 problems not in every run of both arms dropped from both (indices 3, 39); per-metric "
                       "tables keep each run's own value"]
    kept = [i for i in range(N_PROBLEMS) if i not in (3, 39)]
    a_mean = np.mean([[correct_counts(s, 0.0)[i] / N_SAMPLES for i in kept] for s in range(3)])
    assert x.a_mean == pytest.approx(a_mean)
    assert found.overall[0].seeds == ["0", "1", "2"]


def test_results_without_problems_resample_seeds_only(experiments_root):
    for sweep, exp, values in (("a", "baseline", (0.50, 0.52, 0.48)), ("b", "reasoning_vocab", (0.55, 0.56, 0.54))):
        for seed, value in enumerate(values):
            make_run(experiments_root, sweep, exp, str(seed), value)  # greedy accuracy only, no problems
    _, _, found = answer_of(experiments_root)
    math = next(x for x in found.benchmarks if x.benchmark == "math500")
    assert math.measure == "accuracy" and math.n_problems is None and math.difference.levels == ("seeds",)
    assert math.notes == ["some results have no per-problem records (older results): each run's own value, paired by "
                          "seed, seeds resampled only"]
    assert math.difference.difference == pytest.approx(0.05)


def test_learning_speed_area_and_first_step():
    assert area({0: 0.0, 100: 1.0}, 0, 100) == pytest.approx(0.5)
    assert area({0: 0.0, 50: 1.0, 100: 1.0}, 0, 100) == pytest.approx(0.75)  # learns sooner: more area
    assert area({0: 0.0, 50: 1.0, 100: 1.0}, 25, 100) == pytest.approx((0.75 * 25 + 50) / 75)
    assert first_reaching({0: 0.1, 50: 0.5, 100: 0.6}, 0.5) == 50 and first_reaching({0: 0.1}, 0.5) is None


def test_learning_speed_of_two_arms(experiments_root):
    make_arm(experiments_root, "a", "baseline", "012", gain=0.0)
    make_arm(experiments_root, "b", "reasoning_vocab", "012", gain=0.1, vocab=True)
    a, b = load_arms(Registry(experiments_root).runs(ask_slurm=False), "a", "b")
    (speed,) = learning_speed(a, b)
    assert speed.span == (0, STEPS) and speed.measure == "avg@n"
    assert speed.area_diff["mean_diff"] > 0 and speed.area_diff["seeds"] == ["0", "1", "2"]
    assert speed.reached_by["B"] == (3, 3) and speed.reached["B"]["mean"] <= STEPS
    assert speed.threshold == pytest.approx(np.mean([a.metrics[i]["math500 final"] for i in range(3)]))


def test_the_report_leads_with_the_answer_then_its_sections(experiments_root, capsys):
    make_arm(experiments_root, "a", "baseline", "012", gain=0.0)
    make_arm(experiments_root, "b", "reasoning_vocab", "012", gain=0.1, vocab=True)
    code, out = cli(capsys, "report", "--sweep", "a", "--vs", "b", "--effect", "0.05")
    page = (experiments_root / "_reports" / "a-vs-b.html").read_text()
    sections = [line for line in page.splitlines() if line.startswith("<h2>")]
    assert code == 0 and sections == [
        "<h2>Answer</h2>", "<h2>What differs between the arms</h2>", "<h2>Results per benchmark</h2>",
        "<h2>Curves</h2>", "<h2>Length and vocabulary use</h2>", "<h2>How sure</h2>", "<h2>Runs</h2>",
        "<h2>Reproduce</h2>", "<h2>How these numbers are made</h2>"]
    answers = [line for line in page.splitlines() if line.startswith('<p class="answer">')]
    assert [a.split(" [")[0] for a in answers] == ['<p class="answer">math500', '<p class="answer">overall']
    assert page.index(answers[-1]) < page.index("<h2>What differs")
    # the same lines compare --vs prints first
    printed = cli(capsys, "compare", "--sweep", "a", "--vs", "b", "--effect", "0.05")[1].out
    lines = [html.unescape(a.removeprefix('<p class="answer">').removesuffix("</p>")) for a in answers]
    assert all(f"\n  {line}\n" in printed for line in lines)
    assert "<h3>Does B learn faster?</h3>" in page and "<th>seeds needed for ±0.050</th>" in page
    assert page.count('src="data:image/png;base64,') == 3  # benchmarks (step 0 drawn), training, usage
    assert "<td>B b</td><td>70.0 [70.0, 70.0]</td><td>35.0 [35.0, 35.0]</td><td>0.600 [0.600, 0.600]</td>" in page


def test_an_arm_that_ran_two_code_versions_is_warned_about(experiments_root, capsys):
    make_arm(experiments_root, "a", "baseline", "012", gain=0.0)
    make_arm(experiments_root, "b", "reasoning_vocab", "012", gain=0.1, vocab=True)
    for seed, snapshot in (("0", "c0de0000aaaa0000"), ("1", "c0de0000bbbb0000"), ("2", "c0de0000bbbb0000")):
        manifest = RunPaths(experiments_root / "reasoning_vocab" / f"lr=3e-6,seed={seed}").manifest
        m = json.loads(manifest.read_text())
        m["attempts"][-1]["code"] = {"snapshot": snapshot, "git_commit": None, "git_dirty": None}
        manifest.write_text(json.dumps(m))
    code, out = cli(capsys, "compare", "--sweep", "a", "--vs", "b")
    warnings = [ln for ln in answer_block(out.out) if ln.startswith("  warning:")]
    assert code == 0 and warnings == [
        "  warning: arm B (b) ran 2 code versions: c0de0000aaaa0000 (1 run: lr=3e-6,seed=0); c0de0000bbbb0000 "
        "(2 runs: lr=3e-6,seed=1, lr=3e-6,seed=2); see `rlvr-vocab diff RUN1 RUN2`"], out.out
