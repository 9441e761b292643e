"""pass@k, learning-curve plots from run dirs, the plot subcommand and compare's mean over seeds."""

import argparse
import json
import math

import pytest

from rlvr_vocab.cli import compare, plot
from rlvr_vocab.eval.passk import mean_pass_at_k, pass_at_k
from rlvr_vocab.registry import Registry
from rlvr_vocab.report.curves import load_curves
from rlvr_vocab.report.plotting import build_figure, group_by_setting, plot_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (5, 2, 1, 0.4), (5, 2, 2, 0.7), (5, 0, 3, 0.0), (5, 5, 1, 1.0), (5, 3, 3, 1.0), (10, 1, 10, 1.0),
    (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
])
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_matches_binomials_and_rejects_bad_input():
    assert pass_at_k(200, 13, 50) == pytest.approx(1 - math.comb(187, 50) / math.comb(200, 50))
    assert mean_pass_at_k([(5, 2), (5, 0), (5, 5)], 1) == pytest.approx((0.4 + 0 + 1) / 3)
    for n, c, k in [(5, 2, 6), (5, 2, 0), (5, 6, 1), (5, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)
    with pytest.raises(ValueError):
        mean_pass_at_k([], 1)


# Synthetic sweep "s": two learning rates x two seeds; final accuracy and reward differ by setting and seed.
SETTINGS = [("1e-5", "0", 0.30, 0.50), ("1e-5", "1", 0.40, 0.60), ("1e-6", "0", 0.20, 0.30), ("1e-6", "1", 0.22, 0.32)]


def write_run(root, name, lr, seed, acc, reward, sweep="s", steps=10):
    run_dir = root / "demo" / name
    run_dir.mkdir(parents=True)
    manifest = {
        "run_id": f"id{name}", "exp_name": "demo", "run_name": name, "sweep_id": sweep, "status": "COMPLETED",
        "overrides": [f"training.learning_rate={lr}", f"seed={seed}", f"run_name={name}", f"sweep_id={sweep}"],
        "last_step": steps, "metrics": {"reward": reward},
        "eval": {
            "initial": {"accuracy": 0.1, "mean_length": 40.0, "n": 20, "step": 0},
            "history": [{"step": steps // 2, "accuracy": (0.1 + acc) / 2}],
            "final": {"accuracy": acc, "pass@8": acc + 0.2, "format_rate": 0.9, "mean_length": 30.0, "n": 20,
                      "step": steps},
        },
    }
    (run_dir / "run.json").write_text(json.dumps(manifest))
    lines = [{"step": s, "time": s, "reward": reward * s / steps, "loss": 0.1} for s in range(1, steps + 1)]
    # A resume from checkpoint-6 logs steps 7.. again: the re-logged values must win.
    lines += [{"step": s, "time": 100 + s, "reward": reward * s / steps + 0.01} for s in range(7, steps + 1)]
    lines.append({"step": steps, "train_runtime": 12.0})  # the trainer's closing line has no reward
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 11, "rew')
    return run_dir


@pytest.fixture
def sweep(experiments_root):
    for lr, seed, acc, reward in SETTINGS:
        write_run(experiments_root, f"lr={lr},seed={seed}", lr, seed, acc, reward)
    write_run(experiments_root, "other", "1e-4", "0", 0.9, 0.9, sweep="t")
    return experiments_root


def test_load_curves_dedups_resumed_steps(sweep):
    curves = load_curves(sweep / "demo" / "lr=1e-5,seed=0")
    assert list(curves["reward"]) == list(range(1, 11))  # the cut-short last line is skipped
    assert curves["reward"][5] == pytest.approx(0.25) and curves["reward"][10] == pytest.approx(0.51)
    assert curves["accuracy"] == pytest.approx({0: 0.1, 5: 0.2, 10: 0.3})


def test_group_by_setting_ignores_seed_and_names(sweep):
    runs = [r for r in Registry(sweep).runs(ask_slurm=False) if r.sweep_id == "s"]
    groups = group_by_setting(runs)
    assert list(groups) == ["learning_rate=1e-6", "learning_rate=1e-5"]
    assert sorted(r.run_name for r in groups["learning_rate=1e-5"]) == ["lr=1e-5,seed=0", "lr=1e-5,seed=1"]


def test_plot_runs_writes_png(sweep, tmp_path):
    groups = {"lr=1e-5": [sweep / "demo" / "lr=1e-5,seed=0", sweep / "demo" / "lr=1e-5,seed=1"],
              "lr=1e-6": [sweep / "demo" / "lr=1e-6,seed=0"], "empty": [tmp_path / "missing"]}
    out = plot_runs(groups, tmp_path / "plots" / "s.png", "sweep s")
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 10_000
    # what the PNG shows: no benchmark, so no benchmark panel; the group without data said so in the legend
    fig = build_figure(groups, "sweep s")
    assert [ax.get_title() for ax in fig.axes] == ["training reward", "held-out accuracy (greedy; step 0: before GRPO)"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["lr=1e-5  (n=2)", "lr=1e-6  (n=1)",
                                                                  "empty  (n=1), no data yet"]
    for ax in fig.axes:
        assert len({(line.get_marker(), line.get_linestyle()) for line in ax.get_lines()}) == 2
    assert [list(line.get_xdata()) for line in fig.axes[1].get_lines()] == [[0, 5, 10]] * 2


def cli_args(root, *argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--root")
    sub = parser.add_subparsers(dest="command", required=True)
    plot.add_parser(sub)
    compare.add_parser(sub)
    return parser.parse_args(["--root", str(root), *argv])


def test_plot_command_writes_default_and_given_paths(sweep, tmp_path, capsys):
    args = cli_args(sweep, "plot", "--sweep", "s")
    assert args.handler(args) == 0
    default = sweep / "_plots" / "s.png"
    assert default.read_bytes()[:8] == PNG_MAGIC and capsys.readouterr().out.strip().endswith("s.png")
    args = cli_args(sweep, "plot", "lr=1e-5,seed=0", "other", "--out", str(tmp_path / "two.png"))
    assert args.handler(args) == 0 and (tmp_path / "two.png").stat().st_size > 0


def test_compare_means_over_seeds_per_setting(sweep, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sacct: the runs are all in final states anyway
    args = cli_args(sweep, "compare", "--sweep", "s", "--json")
    assert args.handler(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["training.learning_rate"], r["n"]) for r in rows] == [("1e-6", 2), ("1e-5", 2)]
    high = rows[1]
    assert "seed" not in high and "run" not in high
    assert high["reward"] == pytest.approx(0.55) and high["reward_std"] == pytest.approx(0.1 / math.sqrt(2))
    assert high["acc_final"] == pytest.approx(0.35) and high["acc_final_std"] == pytest.approx(0.1 / math.sqrt(2))
    assert high["acc_initial"] == pytest.approx(0.1) and high["acc_gain"] == pytest.approx(0.25)
    assert high["pass@8"] == pytest.approx(0.55) and high["format_rate"] == pytest.approx(0.9)

    args = cli_args(sweep, "compare", "--sweep", "s", "--runs", "--csv")
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("run,training.learning_rate,seed,") and len(lines) == 5

    args = cli_args(sweep, "compare", "--sweep", "s")
    assert args.handler(args) == 0
    assert "mean over seeds" in capsys.readouterr().out
