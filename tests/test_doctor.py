"""`rlvr-vocab doctor`: one line per check, exit 0 when the experiment can run here, 2 when a check fails.

The fast tier runs what needs no Slurm (hydra/launcher=local, the checks' parts one by one); the `slurm` tier asks
the real local cluster, also with slurmctld stopped.
"""

import json
import os
import shutil
from types import SimpleNamespace

import pytest
from test_prefetch import MODEL, OVERRIDES, cache_everything, cache_model, hf_home, safetensors_bytes  # noqa: F401

from rlvr_vocab.cli import main as cli
from rlvr_vocab.doctor import node
from rlvr_vocab.doctor.check import FAIL, OK, WARN
from rlvr_vocab.doctor.environment import version_checks, wandb_check
from rlvr_vocab.doctor.experiment import compose_experiment, launcher_params
from rlvr_vocab.doctor.hub import hub_checks
from rlvr_vocab.doctor.node import gpu_checks
from rlvr_vocab.doctor.storage import disk_check, root_check
from rlvr_vocab.slurm import parse as slurm_parse
from rlvr_vocab.slurm.parse import slurm_minutes

LOCAL = ["hydra/launcher=local"]


def doctor(capsys, *overrides: str) -> tuple[int, dict[str, list[str]]]:
    """Exit code and the table's lines by check name (a check may have several lines)."""
    code = cli(["doctor", *overrides])
    out = capsys.readouterr().out.splitlines()
    lines: dict[str, list[str]] = {}
    for line in out[:-1]:
        status, _, rest = line.partition("  ")
        lines.setdefault(rest.strip().split("  ")[0], []).append(f"{status.strip()} {rest.strip()}")
    return code, lines


def statuses(lines: dict[str, list[str]]) -> dict[str, str]:
    return {what: found[0].split()[0] for what, found in lines.items()}


def test_the_demo_can_run_here_with_the_local_launcher(capsys):
    code, lines = doctor(capsys, *LOCAL)
    assert code == 0, lines
    assert statuses(lines)["Slurm"] == OK and "not used" in lines["Slurm"][0]
    for what in (
        "GPU (this node)",
        "torch",
        "transformers",
        "trl",
        "vllm",
        "hub files",
        "W&B",
        "disk",
        "experiments root",
    ):
        assert statuses(lines)[what] in (OK, WARN), lines[what]
    assert "none needed" in lines["hub files"][0]


def test_a_sweep_counts_its_runs(capsys):
    cfg, n_runs = compose_experiment([*LOCAL, "+sweep=lr_beta", "seed=0,1,2,3"])
    assert n_runs == 3 * 2 * 4  # the grid file's lr x beta, its seeds replaced by the command line's
    assert cfg.training.learning_rate == 1e-6 and cfg.seed == 0


def test_bad_overrides_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli(["doctor", "training.learnin_rate=1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "training.learnin_rate" in err


def test_slurm_time_formats():
    assert slurm_minutes("UNLIMITED") is None and slurm_minutes("INFINITE") is None
    assert slurm_minutes("30") == 30 and slurm_minutes("30:00") == 30
    assert slurm_minutes("12:00:00") == 720 and slurm_minutes("1-00:00:00") == 1440 and slurm_minutes("2-12") == 3600


def test_slurm_answers_doctor_reads():
    partitions = slurm_parse.partitions(
        "PartitionName=debug Default=YES MaxTime=UNLIMITED State=UP\n"
        "PartitionName=gpu AllowAccounts=ml,vision MaxTime=2-00:00:00 State=DRAIN\n"
    )
    assert partitions["debug"]["Default"] == "YES" and partitions["gpu"]["AllowAccounts"] == "ml,vision"
    sinfo = "debug* (null)\ngpu gpu:a100:4(S:0-1),gpu:v100:2\ngpu gpu:a100:2\n"
    assert slurm_parse.most_gpus_per_node(sinfo, None) == 0 and slurm_parse.most_gpus_per_node(sinfo, "gpu") == 6
    assert slurm_parse.most_gpus_per_node(sinfo, "nope") is None
    [row] = slurm_parse.associations("ml||normal,long|normal\n")
    assert row == {"account": "ml", "partition": "", "qos": "normal,long", "default_qos": "normal"}
    qos = "normal||\nlong|7-00:00:00|50\n"
    assert slurm_parse.qos_limits(qos, "normal") == (None, None) and slurm_parse.qos_limits(qos, "long") == (10080, 50)
    assert slurm_parse.qos_limits(qos, "nope") is None
    assert slurm_parse.seconds_left("1-00:00:05\n") == 86405 and slurm_parse.seconds_left("29:30") == 1770
    assert slurm_parse.seconds_left("UNLIMITED") is None


def test_wandb_online_without_credentials_fails(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    cfg, _ = compose_experiment([*LOCAL, "logging=wandb", "logging.mode=online"])
    check = wandb_check(cfg)
    assert check.status == FAIL and "without credentials" in check.found and "WANDB_API_KEY" in check.fix
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_check(cfg).status == OK and "offline (WANDB_MODE)" in wandb_check(cfg).found
    monkeypatch.delenv("WANDB_MODE")
    code, lines = doctor(capsys, *LOCAL, "logging=wandb", "logging.mode=online")
    assert code == 2 and statuses(lines)["W&B"] == FAIL


def test_versions_against_the_lock(tmp_path):
    import importlib.metadata
    import importlib.util

    cfg, _ = compose_experiment(LOCAL)
    # The committed uv.lock: a newer release installed by pip is a warning, never a failure.
    assert all(c.status in (OK, WARN) for c in version_checks(cfg)), version_checks(cfg)
    torch_version = importlib.metadata.version("torch").split("+")[0]
    lock = tmp_path / "uv.lock"
    lock.write_text(
        f'version = 1\n[[package]]\nname = "torch"\nversion = "{torch_version}"\n'
        '[[package]]\nname = "transformers"\nversion = "0.0.1"\n'
    )
    checks = {c.what: c for c in version_checks(cfg, lock)}
    assert checks["torch"].status == OK and checks["transformers"].status == WARN
    assert "uv.lock pins 0.0.1" in checks["transformers"].found and "uv sync" in checks["transformers"].fix
    assert "not compared" in {c.what: c for c in version_checks(cfg, tmp_path / "none")}["trl"].found
    vllm = {c.what: c for c in version_checks(compose_experiment([*LOCAL, "+training.use_vllm=true"])[0], lock)}
    if importlib.util.find_spec("vllm") is None:
        assert vllm["vllm"].status == FAIL and "--extra gpu" in vllm["vllm"].fix


def test_jobs_asking_for_gpus_need_a_cuda_torch(monkeypatch):
    import torch as th

    # A login node: no GPU, no driver; the build of torch is what the jobs, on this same environment, will have.
    monkeypatch.setattr(th.cuda, "is_available", lambda: False)
    monkeypatch.setattr(node, "_nvidia_smi", lambda: [])
    gpu_job, _ = compose_experiment(["hydra/launcher=slurm"])  # 1 GPU per node
    monkeypatch.setattr(th.version, "cuda", None)
    [check] = gpu_checks(gpu_job, launcher_params(gpu_job))
    assert check.status == FAIL and "CPU build" in check.found and "uv sync" in check.fix
    monkeypatch.setattr(th.version, "cuda", "13.0")
    [check] = gpu_checks(gpu_job, launcher_params(gpu_job))
    assert check.status == OK and "jobs get 1 per node" in check.found and "srun --gpus=1" in check.fix
    here, _ = compose_experiment([*LOCAL, "precision=bf16"])
    [check] = gpu_checks(here, launcher_params(here))
    assert check.status == FAIL and "precision=bf16" in check.found
    # GPUs the driver shows but this torch cannot use (a CUDA build newer than the driver).
    monkeypatch.setattr(node, "_nvidia_smi", lambda: ["NVIDIA A100-SXM4-80GB, 535.104.05"])
    [check] = gpu_checks(gpu_job, launcher_params(gpu_job))
    assert check.status == FAIL and "nvidia-smi sees 1" in check.found


def test_hub_files_fail_offline_and_warn_online(hf_home, monkeypatch):  # noqa: F811
    cfg, _ = compose_experiment([*LOCAL, *OVERRIDES])
    checks = {c.what: c for c in hub_checks(cfg, OVERRIDES)}
    model = checks["model.name_or_path"]
    assert model.status == FAIL and MODEL in model.found
    assert model.fix.startswith("on a login node: rlvr-vocab prefetch")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    assert {c.status for c in hub_checks(cfg, OVERRIDES)} == {WARN}  # the job would download: on a compute node?
    cache_everything()
    assert {c.status for c in hub_checks(cfg, OVERRIDES)} == {OK}


def test_disk_estimate_from_the_cached_weights(hf_home, monkeypatch):  # noqa: F811
    # A 0.5B-parameter model by its safetensors header (the data itself is not needed to count).
    files = {
        "config.json": json.dumps({"hidden_size": 1000, "num_hidden_layers": 1, "vocab_size": 10}).encode(),
        "model.safetensors": safetensors_bytes({"w": [500_000, 1000]}),
        "tokenizer.json": b"{}",
    }
    cache_model(files=files)
    cfg, _ = compose_experiment(
        [
            *LOCAL,
            *OVERRIDES,
            "precision=bf16",
            "training.max_steps=1000",
            "training.save_steps=50",
            "training.save_total_limit=2",
            "eval.chain=false",
        ]
    )
    params = launcher_params(cfg)
    check = disk_check(cfg, params, 1)
    # 2 bytes a weight; weights + AdamW's 2 moments a checkpoint; 2 kept + 1 while the next is written; final/.
    assert check.status == OK and "500.0M parameters (3 checkpoints x 2.8 GB + 953.7 MB" in check.found, check.found
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=100, used=99, free=1))
    check = disk_check(cfg, params, 1)
    assert check.status == FAIL and "save_total_limit" in check.fix
    cfg, _ = compose_experiment([*LOCAL, *OVERRIDES, "model.name_or_path=acme/NotCached"])
    assert disk_check(cfg, params, 1).status == WARN


def test_the_experiments_root(tmp_path):
    assert root_check(tmp_path / "new" / "root").status == OK
    blocked = tmp_path / "file"
    blocked.write_text("")
    check = root_check(blocked / "root")  # under a file: nothing can be created there, whoever runs it
    assert check.status == FAIL and "RLVR_EXPERIMENTS_ROOT" in check.fix
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert root_check(private).status == WARN and "chmod g+rx" in root_check(private).fix
    old = os.umask(0o077)
    try:
        check = root_check(tmp_path)
    finally:
        os.umask(old)
    assert check.status == WARN and "umask 0077" in check.found
