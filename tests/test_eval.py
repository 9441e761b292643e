"""Held-out evaluation as a user sees it: during training, and standalone with `rlvr-vocab eval`."""

import json

import pytest
from conftest import DEMO, manifest, run_module

pytestmark = pytest.mark.slow

MEASURES = ("accuracy", "pass@2", "format_rate", "mean_length", "n")


def cli(*args: str):
    return run_module(*args, module="rlvr_vocab")


def evaluated(*args: str) -> dict:
    out = cli("eval", *args, "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short demo run evaluated every 2 steps, with pass@2."""
    root = tmp_path_factory.mktemp("experiments")
    done = run_module("run_name=evald", "training.max_steps=4", "training.save_steps=2", "eval.eval_steps=2",
                      "eval.k=2", *DEMO, env={"RLVR_EXPERIMENTS_ROOT": str(root)})
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "demo" / "evald", done


@pytest.fixture
def use_root(trained, monkeypatch):
    monkeypatch.setenv("RLVR_EXPERIMENTS_ROOT", str(trained[0].parent.parent))
    return trained[0]


def test_training_evaluates_before_every_eval_steps_and_after(trained):
    run_dir, done = trained
    evals = manifest(run_dir)["eval"]
    assert evals["initial"]["step"] == 0 and evals["final"]["step"] == 4
    assert [e["step"] for e in evals["history"]] == [2]  # the last step is the final evaluation
    for entry in (evals["initial"], evals["history"][0], evals["final"]):
        assert set(MEASURES) <= set(entry)
        assert 0 <= entry["pass@2"] <= 1 and entry["pass@2"] >= entry["accuracy"] - 0.5
    assert "step 2/4 held-out: accuracy" in done.stderr
    # The trainer's own log history (trainer_state.json) has it too.
    state = json.loads((run_dir / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert any(e.get("step") == 2 and "eval/accuracy" in e for e in state["log_history"])


def test_eval_of_last_checkpoint_equals_eval_of_final(use_root):
    run_dir = use_root
    at_checkpoint = evaluated("evald", "--checkpoint", "4")
    at_final = evaluated("evald", "--checkpoint", "final")
    assert at_checkpoint["weights"] == "checkpoint-4" and at_final["weights"] == "final"
    assert {k: at_checkpoint[k] for k in MEASURES} == {k: at_final[k] for k in MEASURES}
    in_training = manifest(run_dir)["eval"]["final"]
    assert {k: at_final[k] for k in MEASURES} == {k: in_training[k] for k in MEASURES}
    standalone = manifest(run_dir)["eval"]["standalone"]
    assert {"checkpoint-4-own-k2", "final-own-k2"} <= set(standalone)
    assert (run_dir / "eval" / "final-own-k2.json").is_file()


def test_eval_on_another_data_set_with_other_k(use_root, tmp_path):
    sums = tmp_path / "sums.jsonl"
    sums.write_text("".join(json.dumps({"question": f"{a}+{a}", "answer": str(2 * a)}) + "\n" for a in range(6)))
    result = evaluated("evald", "--dataset", str(sums), "--k", "3")
    assert result["dataset"] == "sums" and result["n"] == 6 and "pass@3" in result
    assert (use_root / "eval" / "final-sums-k3.json").is_file()


@pytest.mark.parametrize("args, words", [
    (["--checkpoint", "3"], "checkpoint-3 does not exist; kept checkpoints: [2, 4]"),
    (["--checkpoint", "last"], "neither a step nor 'final'"),
    (["--dataset", "gsm9k"], "use one of arithmetic, deepscaler, finqa, gsm8k, math500"),
    (["--k", "0"], "eval.k: must be positive"),
    (["--launcher", "slurmm"], "unknown launcher profile 'slurmm'"),
])
def test_bad_eval_requests_are_one_line_and_exit_2(use_root, args, words):
    out = cli("eval", "evald", *args)
    assert out.returncode == 2 and words in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1

