"""The job end to end on the embedded demo, as a user runs it."""

import json

import pytest
from conftest import run_module
from transformers import AutoModelForCausalLM, AutoTokenizer

pytestmark = pytest.mark.slow

# A few steps of the demo on a smaller warm start: the same code path, in seconds.
QUICK = [
    "training.per_device_train_batch_size=16", "training.save_steps=2", "model.embedded.warm_start_steps=60",
    "dataset.embedded.n_test=20", "eval.max_samples=20", "logging=wandb", "logging.mode=offline",
]


SECRETS = {"WANDB_API_KEY": "wandb-key-0123456789abcdef", "HF_TOKEN": "hf_token_0123456789abcdef"}


def test_demo_run_then_resume_with_more_steps_then_never_again(experiments_root):
    first = run_module("run_name=e2e", "training.max_steps=4", *QUICK, env=SECRETS)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = experiments_root / "demo" / "e2e"
    for name in ("config.yaml", "overrides.yaml", "run.json", "train.log", "final"):
        assert (run_dir / name).exists(), name
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "COMPLETED" and manifest["last_step"] == 4
    assert manifest["checkpoints"][-1]["step"] == 4
    assert {"initial", "final"} <= set(manifest["eval"])
    assert "accuracy after GRPO" in first.stderr
    wandb_id = manifest["wandb_id"]
    assert wandb_id

    model = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "final")
    assert model.config.model_type == "qwen2" and tokenizer.chat_template

    second = run_module("run_name=e2e", "training.max_steps=6", *QUICK)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from checkpoint-4" in (run_dir / "train.log").read_text()
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["last_step"] == 6 and manifest["status"] == "COMPLETED"
    assert manifest["wandb_id"] == wandb_id
    assert [a["resumed_from_step"] for a in manifest["attempts"][1:]] == [4]
    assert len(manifest["attempts"]) == 2

    files = {name: (run_dir / name).read_bytes() for name in ("run.json", "train.log", "metrics.jsonl")}
    again = run_module("run_name=e2e", "training.max_steps=6", *QUICK)  # a finished run is never trained again
    assert again.returncode == 0, again.stderr[-3000:]
    assert "is already complete at step 6" in again.stderr and "step 7" not in again.stderr
    assert {name: (run_dir / name).read_bytes() for name in files} == files, "nothing touched"
    assert (run_dir / "final" / "rlvr_complete.json").exists()

    for path in experiments_root.rglob("*"):  # secrets never reach the run dir (logs, manifest, W&B files)
        if path.is_file():
            data = path.read_bytes()
            assert all(v.encode() not in data for v in SECRETS.values()), path
    assert all(v not in first.stderr + first.stdout for v in SECRETS.values())


def test_failure_is_recorded_with_its_summary(experiments_root, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "1+1", "answer": "2"}\nnot json at all\n')
    result = run_module("run_name=broken", "dataset.path=" + str(broken), "dataset.embedded=null",
                        "dataset.test_split=null", "dataset.test_size=1", "model.embedded.warm_start_steps=60")
    assert result.returncode != 0
    manifest = json.loads((experiments_root / "demo" / "broken" / "run.json").read_text())
    assert manifest["status"] == "FAILED"
    assert manifest["error"] and manifest["attempts"][-1]["end_state"] == "FAILED"
    assert "Traceback" in (experiments_root / "demo" / "broken" / "train.log").read_text()


def test_reasoning_vocab_demo_resumes_and_final_model_maps_back(experiments_root):
    from rlvr_vocab.reasoning_vocab.surgery import load_reasoning_vocab

    args = ["experiment=demo_reasoning", "run_name=rv", "model.reasoning_vocab.size=12", *QUICK[:5]]
    first = run_module(*args, "training.max_steps=2")
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_module(*args, "training.max_steps=4")
    assert second.returncode == 0, second.stderr[-3000:]
    run_dir = experiments_root / "demo_reasoning" / "rv"
    assert "resumed from checkpoint-2" in (run_dir / "train.log").read_text()
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("reasoning_vocab/share" in m for m in metrics)
    assert all(m.get("reasoning_vocab/share_outside_think", 0) == 0 for m in metrics)  # think_only

    model = AutoModelForCausalLM.from_pretrained(run_dir / "final")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "final")
    rv = load_reasoning_vocab(model, tokenizer)
    assert rv is not None and rv.size == 12
    mirrored = [rv.reasoning_ids[0], rv.reasoning_ids[1]]
    assert rv.decode_to_base(mirrored, tokenizer) == tokenizer.decode(rv.to_base_ids(mirrored))


def test_two_cpu_processes_train_data_parallel(experiments_root):
    """The demo under torchrun: 2 ranks (gloo), rank 0 alone writes the run dir."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "rlvr_vocab.train", "run_name=ddp",
         "training.max_steps=2", *QUICK[:5], "training.per_device_train_batch_size=8"],
        capture_output=True, text=True, timeout=600, env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((experiments_root / "demo" / "ddp" / "run.json").read_text())
    assert manifest["status"] == "COMPLETED" and manifest["last_step"] == 2
    assert [a["world_size"] for a in manifest["attempts"]] == [2]
    assert "on 2 processes (distributed)" in (experiments_root / "demo" / "ddp" / "train.log").read_text()


def test_a_failing_rank_is_the_recorded_cause_not_rank_0s_lost_connection(experiments_root):
    """Rank 1 raises at step 2: its process exits non-zero (so torchrun and `srun --kill-on-bad-exit` end the job),
    and rank 0, which sees only a closed connection or a SIGTERM, records rank 1's error and classifies from it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "rlvr_vocab.train", "run_name=rank1",
         "training.max_steps=3", *QUICK[:5], "training.per_device_train_batch_size=8"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "RLVR_INJECT_FAULT": "bug:2:1:1"},
    )
    assert result.returncode != 0
    manifest = json.loads((experiments_root / "demo" / "rank1" / "run.json").read_text())
    attempt = manifest["attempts"][-1]
    assert manifest["status"] == "FAILED" and attempt["end_state"] == "FAILED", attempt
    assert attempt["reason"].startswith("rank 1 failed first: ValueError: injected bug at step 2"), attempt["reason"]
    assert attempt["failure_class"] == "code_error" and manifest["error"] == attempt["reason"]


def test_resume_refuses_a_changed_experiment_and_force_is_for_one_attempt(experiments_root):
    first = run_module("run_name=kept", "training.max_steps=2", *QUICK[:5])
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = experiments_root / "demo" / "kept"
    config = (run_dir / "config.yaml").read_bytes()

    changed = run_module("resume", "kept", "dataset.embedded.seed=1", "training.learning_rate=1e-5",
                         module="rlvr_vocab")
    lines = changed.stderr.strip().splitlines()
    assert changed.returncode == 2 and len(lines) == 1, changed.stderr
    assert "dataset.embedded.seed: 0 -> 1" in lines[0] and "training.learning_rate: 0.0003 -> 1e-05" in lines[0]
    assert "force_resume=true" in lines[0] and "run_name" in lines[0]
    assert (run_dir / "config.yaml").read_bytes() == config, "nothing written"

    forced = run_module("resume", "kept", "training.learning_rate=1e-5", "training.max_steps=4", "--force",
                        module="rlvr_vocab")
    assert forced.returncode == 0, forced.stderr[-3000:]
    more = run_module("resume", "kept", "training.max_steps=6", module="rlvr_vocab")
    assert more.returncode == 0, more.stderr[-3000:]
    manifest = json.loads((run_dir / "run.json").read_text())
    attempts = manifest["attempts"]
    assert [a["forced"] for a in attempts] == [False, True, False], "force holds for one attempt"
    assert "training.learning_rate: 0.0003 -> 1e-05" in attempts[1]["config_changes"]
    assert attempts[2]["config_changes"] == ["training.max_steps: 4 -> 6"]
    assert manifest["last_step"] == 6 and "force_resume=true" not in manifest["overrides"]
    assert sorted(p.name for p in (run_dir / "configs").iterdir()) == [f"attempt-{n}.yaml" for n in (1, 2, 3)]
