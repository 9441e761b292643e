"""A run dir is one experiment: its identity, its states and its lifecycle (issue "Trustworthy runs"), fast tier.

The lifecycle is walked here without training (a body stands in for GRPO); the slow and slurm tiers run the same
paths end to end.
"""

import json
import os
import re
import signal
from pathlib import Path

import pytest
from conftest import REPO, run_train
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from rlvr_vocab import CONF_DIR
from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.secrets import move_secrets_to_env, redact_obj
from rlvr_vocab.core.states import TRANSITIONS, Event, InvalidTransition, RunState, transition
from rlvr_vocab.job.lifecycle import JobLifecycle
from rlvr_vocab.run import checkpoints, claims
from rlvr_vocab.run.identity import Identity, changes, describe
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import read_manifest


def config(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("config", overrides=list(overrides))
    return cfg


# ------------------------------------------------------------------------------------------ the state table


def readme_transitions() -> set[tuple[str, str, str]]:
    """(from, event, to) rows of the state-transition table in docs/run-dir.md."""
    text = (REPO / "docs" / "run-dir.md").read_text()
    section = text[text.index("## Run states"):]
    rows = set()
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if cells[0] in ("from", "---") or set(cells[0]) <= {"-"}:
            continue
        for source in cells[0].split(", "):
            for target in cells[2].split(", "):
                rows.add((source, cells[1], target))
    return rows


def test_the_readme_table_is_the_code_table():
    code = {(s.value if s else "(new)", e.value, t.value) for (s, e), targets in TRANSITIONS.items() for t in targets}
    assert readme_transitions() == code


def test_transitions_outside_the_table_are_refused():
    for state in [None, *RunState]:
        for event in Event:
            for target in RunState:
                allowed = target in TRANSITIONS.get((state, event), ())
                if allowed:
                    assert transition(state, event, target) == target
                else:
                    with pytest.raises(InvalidTransition):
                        transition(state, event, target)


# ------------------------------------------------------------------------------------------ identity


def test_identity_ignores_what_may_change_between_attempts():
    base = Identity.of(config("run_name=a"))
    same = Identity.of(config("run_name=b", "training.max_steps=999", "training.save_steps=7", "eval.k=2",
                              "logging=wandb", "max_requeues=9", "dry_run=true", "force_resume=true"))
    assert base == same
    other = Identity.of(config("training.learning_rate=1e-5"))
    assert base != other
    assert describe(changes(base.config, other.config)) == "training.learning_rate: 0.0003 -> 1e-05"


def test_identity_never_holds_a_secret(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_identityTestToken12345")
    cfg = config("+model.model_kwargs.token=${oc.env:HF_TOKEN}")
    identity = Identity.of(cfg)
    assert "hf_identityTestToken12345" not in json.dumps(identity.to_json())
    monkeypatch.setenv("HF_TOKEN", "hf_rotatedTokenValue67890")
    assert Identity.of(config("+model.model_kwargs.token=${oc.env:HF_TOKEN}")) == identity  # rotating it is fine


def test_secrets_are_redacted_by_key_at_any_depth_and_moved_out_of_overrides(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "wandb-value-0123456789")
    data = {"model": {"model_kwargs": {"token": "hf_literal1234567", "pad_token": "<|endoftext|>"}},
            "overrides": ["+training.hub_token=hf_literal1234567", "note=wandb-value-0123456789",
                          "x.token=${oc.env:HF_TOKEN}"]}
    clean = json.dumps(redact_obj(data))
    assert "hf_literal1234567" not in clean and "wandb-value-0123456789" not in clean
    assert "<|endoftext|>" in clean and "${oc.env:HF_TOKEN}" in clean  # a tokenizer's token, a reference: kept
    safe, env = move_secrets_to_env(["seed=1", "+model.model_kwargs.token=hf_literal1234567"])
    assert safe[0] == "seed=1" and re.fullmatch(r"\+model\.model_kwargs\.token=\$\{oc\.env:RLVR_SECRET_\w+\}", safe[1])
    assert list(env.values()) == ["hf_literal1234567"]


# ------------------------------------------------------------------------------------------ the lifecycle walked


def job(cfg, run_dir: Path):
    return JobLifecycle(cfg, run_dir, cfg.training.max_steps, 1, [f"run_name={cfg.run_name}"])


def finish(j: JobLifecycle, step: int) -> None:
    """What training does at its end: the last step recorded, final/ committed."""
    j.manifest.update(last_step=step)
    j.finish_training(step)

    def write(d):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"w")

    checkpoints.commit_final(j.paths, write, step)


def test_the_lifecycle_walks_the_table(experiments_root):
    cfg = config("run_name=walk", "training.max_steps=2")
    paths = RunPaths(experiments_root / "demo" / "walk")
    with job(cfg, paths.run_dir) as j:  # (new) --start--> RUNNING
        assert j.already_complete is None and j.manifest.state == RunState.RUNNING
        finish(j, 2)
    assert read_manifest(paths.run_dir)["status"] == "COMPLETED"  # --finish--> COMPLETED

    before = paths.manifest.read_bytes()
    with job(cfg, paths.run_dir) as j:  # COMPLETED --already_complete--> COMPLETED: nothing touched
        assert j.already_complete == 2
    assert paths.manifest.read_bytes() == before

    more = config("run_name=walk", "training.max_steps=3")
    with pytest.raises(RuntimeError, match="boom"), job(more, paths.run_dir) as j:  # COMPLETED --start--> RUNNING
        assert j.manifest.state == RunState.RUNNING
        raise RuntimeError("boom")
    m = read_manifest(paths.run_dir)  # --fail--> FAILED
    assert m["status"] == "FAILED" and m["error"] == "RuntimeError: boom"
    assert m["attempts"][1]["config_changes"] == ["training.max_steps: 2 -> 3"]
    assert (paths.configs / "attempt-1.yaml").exists() and (paths.configs / "attempt-2.yaml").exists()

    from rlvr_vocab.job.lifecycle import Terminated

    with pytest.raises(Terminated), job(more, paths.run_dir):  # FAILED --start--> RUNNING --terminate--> CANCELLED
        os.kill(os.getpid(), signal.SIGTERM)
    assert read_manifest(paths.run_dir)["status"] == "CANCELLED"

    with job(more, paths.run_dir) as j:  # --stop_requeue--> REQUEUED --stop_end--> PREEMPTED (no Slurm to requeue)
        os.kill(os.getpid(), signal.SIGUSR2)
        j.manifest.update(last_step=2)
        j.finish_training(2)
    m = read_manifest(paths.run_dir)
    assert m["status"] == "PREEMPTED" and m["attempts"][-1]["end_state"] == "PREEMPTED"
    assert m["error"].startswith("not requeued: not running under SLURM")

    with job(more, paths.run_dir) as j:  # a stop signal after the last step is ignored: the run completes
        j.manifest.update(last_step=3)
        j.finish_training(3)
        os.kill(os.getpid(), signal.SIGUSR2)
        finish(j, 3)
    m = read_manifest(paths.run_dir)
    assert m["status"] == "COMPLETED" and [a["end_state"] for a in m["attempts"]] == [
        "COMPLETED", "FAILED", "CANCELLED", "PREEMPTED", "COMPLETED"]


def test_an_attempt_killed_outright_is_settled_before_the_next(experiments_root):
    cfg = config("run_name=killed", "training.max_steps=2")
    paths = RunPaths(experiments_root / "demo" / "killed")
    j = job(cfg, paths.run_dir)
    j.__enter__()
    j.lease.release()  # the process "died": no end recorded, its lease free
    with job(cfg, paths.run_dir) as again:
        first = again.manifest.data["attempts"][0]
        assert first["end_state"] == "LOST" and "recorded no end" in first["reason"]
        finish(again, 2)


def test_a_changed_config_is_refused_and_force_is_for_one_attempt(experiments_root):
    paths = RunPaths(experiments_root / "demo" / "forced")
    with job(config("run_name=forced", "training.max_steps=2"), paths.run_dir) as j:
        finish(j, 2)
    other = config("run_name=forced", "training.max_steps=4", "training.learning_rate=1e-5")
    with pytest.raises(ConfigError, match=r"training.learning_rate: 0.0003 -> 1e-05.*force_resume=true"):
        job(other, paths.run_dir).__enter__()
    with open_dict(other):
        other.force_resume = True
    with job(other, paths.run_dir) as j:
        assert j.manifest.last_attempt["forced"] is True
        finish(j, 4)
    # The forced config is the run's now: the same overrides continue without force.
    assert claims.stored_identity(paths) == Identity.of(config("training.learning_rate=1e-5"))


# ------------------------------------------------------------------------------------------ from the shell


def test_dry_run_refuses_online_wandb_without_credentials(tmp_path):
    no_credentials = {"HOME": str(tmp_path), "NETRC": str(tmp_path / "netrc")}
    args = ["experiment=baseline", "model=tiny", "dataset=arithmetic", "training=grpo_local", "eval.chain=false",
            "dry_run=true"]
    online = run_train(*args, env=no_credentials, unset=("WANDB_API_KEY", "WANDB_MODE"))
    assert online.returncode == 2 and "logging.mode: is online but no W&B credentials" in online.stderr
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    assert run_train(*args, env=no_credentials, unset=("WANDB_API_KEY", "WANDB_MODE")).returncode == 0
    offline = run_train(*args, env={**no_credentials, "WANDB_MODE": "offline", "NETRC": "/nonexistent"},
                         unset=("WANDB_API_KEY",))
    assert offline.returncode == 0, offline.stderr  # the environment's mode is the config's


def test_a_single_file_is_not_its_own_held_out_split(tmp_path):
    data = tmp_path / "local.jsonl"
    data.write_text("".join(f'{{"question": "{i}+1", "answer": "{i + 1}"}}\n' for i in range(30)))
    result = run_train(f"dataset.path={data}", "dataset.embedded=null", "dry_run=true")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "dataset.test_split" in result.stderr and "set dataset.test_split=null" in result.stderr


def submitted(stdout: str) -> list[str]:
    return re.findall(r"^\s+submit\s+(\S+)", stdout, re.MULTILINE)


def test_dry_run_names_colliding_points_uniquely_and_keeps_the_sweep_id(experiments_root):
    prompts = "dataset.system_prompt='Answer in <think> tags','Answer in [think] tags'"
    result = run_train("--multirun", "hydra/launcher=local", prompts, "dry_run=true")
    assert result.returncode == 0, result.stderr
    names = submitted(result.stdout)
    assert len(names) == 2 and len(set(names)) == 2
    assert all(re.fullmatch(r"system_prompt=_Answer_in__think__tags-[0-9a-f]{6}", n) for n in names), names
    sweep = re.search(r"^sweep (\S+):", result.stdout, re.MULTILINE).group(1)
    again = run_train("--multirun", "hydra/launcher=local", prompts, "dry_run=true", "training.max_steps=99")
    assert re.search(r"^sweep (\S+):", again.stdout, re.MULTILINE).group(1) == sweep  # more steps: the same sweep
    other = run_train("--multirun", "hydra/launcher=local", prompts, "dry_run=true", "seed=3")
    assert re.search(r"^sweep (\S+):", other.stdout, re.MULTILINE).group(1) != sweep
    assert not experiments_root.exists() or not any(experiments_root.rglob("*.json"))  # nothing written


def test_the_same_grid_over_other_data_gets_its_own_run_dirs(experiments_root):
    lr = "training.learning_rate=1e-4,2e-4"
    cfg = config("run_name='lr=0.0001'", "training.learning_rate=1e-4")
    claims.claim(RunPaths(experiments_root / "demo" / "lr=0.0001"), Identity.of(cfg))  # the first grid's run
    same = run_train("--multirun", "hydra/launcher=local", lr, "dry_run=true")
    assert submitted(same.stdout) == ["lr=0.0001", "lr=0.0002"]
    other = run_train("--multirun", "hydra/launcher=local", lr, "dataset.embedded.seed=1", "dry_run=true")
    names = submitted(other.stdout)
    assert names[0].startswith("lr=0.0001-") and names[1] == "lr=0.0002", names


def test_points_that_are_one_run_are_refused(experiments_root):
    twice = run_train("--multirun", "hydra/launcher=local", "seed=1,1", "dry_run=true")
    assert twice.returncode == 2 and "are the same run" in twice.stderr
    named = run_train("--multirun", "hydra/launcher=local", "seed=1,2", "run_name=mine", "dry_run=true")
    assert named.returncode == 2 and "run_name: is fixed" in named.stderr


def test_an_sbatch_that_does_not_answer_is_one_line(tmp_path, experiments_root, monkeypatch, capsys):
    """`sbatch --test-only` against an overloaded controller: one line, exit 2, nothing submitted or written."""
    from rlvr_vocab.slurm import client as slurm_client
    from rlvr_vocab.train import main

    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "sbatch").write_text("#!/bin/sh\nsleep 30\n")
    (shims / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(slurm_client, "SUBMIT_TIMEOUT_S", 1)
    monkeypatch.setattr("sys.argv", ["rlvr_vocab.train", "--multirun", "hydra/launcher=slurm_cpu", "run_name=slow"])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err
    assert "sbatch did not answer within 1 s" in err and "retry" in err
    assert not (experiments_root / "demo" / "slow").exists()
