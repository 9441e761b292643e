"""What a newcomer sees: `status` elsewhere names the root it read and creates nothing; `doctor` says which launcher
profile it checked; `resume` refuses another experiment before an offline cache check; an attempt ends when Slurm
ended its job; a failure's summary carries the cause a wrapper hides."""

import json
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from test_cli import no_slurm  # noqa: F401 - a fixture
from test_trustworthy_runs import config, finish, job

from rlvr_vocab.cli import main
from rlvr_vocab.launch import resume as resume_cmd
from rlvr_vocab.run import manifest as manifest_module
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import Manifest, iso, read_manifest
from rlvr_vocab.slurm import client as slurm_client

DEFAULT = "the default: ./experiments; set --root or RLVR_EXPERIMENTS_ROOT"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------------------------------------ status elsewhere


def test_status_elsewhere_names_the_root_and_how_it_was_chosen(tmp_path, capsys, monkeypatch, no_slurm):  # noqa: F811
    monkeypatch.delenv("RLVR_EXPERIMENTS_ROOT")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    code, out, _ = cli(capsys, "status")
    assert code == 0 and out.splitlines() == [f"no runs under {elsewhere / 'experiments'} ({DEFAULT})"]
    monkeypatch.setenv("RLVR_EXPERIMENTS_ROOT", str(tmp_path / "env-root"))
    _, out, _ = cli(capsys, "status")
    assert out.splitlines() == [f"no runs under {tmp_path / 'env-root'} (from RLVR_EXPERIMENTS_ROOT)"]
    _, out, _ = cli(capsys, "status", "--root", str(tmp_path / "given"))
    assert out.splitlines() == [f"no runs under {tmp_path / 'given'} (from --root)"]
    _, out, _ = cli(capsys, "status", "--exp", "demo")  # a filter on a root that does not exist: still named
    assert out.splitlines() == [f"no runs under {tmp_path / 'env-root'} (from RLVR_EXPERIMENTS_ROOT)"]

    monkeypatch.delenv("RLVR_EXPERIMENTS_ROOT")
    for args in (["status", "--json"], ["show", "r"], ["logs", "r"], ["compare", "--sweep", "s"], ["usage"],
                 ["plot", "--sweep", "s"], ["registry", "rebuild"]):
        code, _, err = cli(capsys, *args)
        assert code in (0, 2) and "Traceback" not in err, (args, err)
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "env-root").exists()
    assert not (tmp_path / "given").exists(), "a read-only command creates nothing"


# ------------------------------------------------------------------------------------------------ doctor


def doctor_lines(capsys, *overrides: str) -> tuple[int, list[str]]:
    code = main(["doctor", *overrides])
    return code, capsys.readouterr().out.splitlines()


def test_doctor_checks_the_profile_named_or_the_experiments_own(capsys, monkeypatch):
    from rlvr_vocab.doctor.experiment import compose_experiment, launcher_params, requested_gpus

    # No Slurm here (the local cluster is not this test's): the profile's Slurm checks stop at the controller.
    monkeypatch.setattr(slurm_client, "controller_down", lambda: "scontrol not found")
    code, lines = doctor_lines(capsys, "experiment=demo")
    assert lines[0].split()[:4] == ["ok", "launcher", "profile", "slurm_cpu:"]
    assert "none named, so the experiment's own (its eval.launcher)" in lines[0]
    assert "to check another: hydra/launcher=<one of local, slurm, slurm_cpu" in lines[0]
    assert code == 2 and lines[-1].endswith("demo cannot run as configured (hydra/launcher=slurm_cpu)")
    assert not any("GPUs per node" in line for line in lines), "a CPU profile asks no GPUs of the cluster"

    cfg, _ = compose_experiment(["experiment=baseline"])  # a GPU experiment: its own GPU profile
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "slurm"
    assert requested_gpus(launcher_params(cfg)) == 1

    code, lines = doctor_lines(capsys, "experiment=demo", "hydra/launcher=local")
    assert "launcher profile  local, as named (hydra/launcher=local)" in lines[0]
    assert code == 0 and lines[-1].startswith("demo can run here with hydra/launcher=local")


# ------------------------------------------------------------------------------------------------ resume


def test_resume_refuses_another_experiment_before_any_offline_check(experiments_root, capsys, monkeypatch,
                                                                      no_slurm):  # noqa: F811
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # gsm8k is not in this cache: the job's checks would ask to prefetch
    paths = RunPaths(experiments_root / "demo" / "done")
    with capsys.disabled(), job(config("run_name=done", "training.max_steps=2"), paths.run_dir) as j:
        finish(j, 2)  # (the job's watchdog needs a real stderr)
    started = []
    monkeypatch.setattr(resume_cmd.subprocess, "run", lambda cmd, **kw: started.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0))

    code, out, err = cli(capsys, "resume", "done", "dataset=gsm8k")
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and started == []
    assert err.startswith("error: run demo/done: is another experiment: dataset.answer_format: plain -> gsm8k; ")
    assert "prefetch" not in err and "force_resume=true" in err

    code, out, _ = cli(capsys, "resume", "done", "training.max_steps=4")  # what may change goes on to the job
    assert code == 0 and len(started) == 1 and "training.max_steps=4" in started[0]


# ------------------------------------------------------------------------------------------------ attempts' ends


def _sacct_time(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%dT%H:%M:%S")  # sacct prints local time


@pytest.fixture
def sacct_says(tmp_path, monkeypatch):
    """A sacct printing the rows given (JobID, State, Start, End), scontrol saying the controller is up."""
    bin_dir, out = tmp_path / "sacct-bin", tmp_path / "sacct.out"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text(f"#!/bin/sh\ncat {out}\n")
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho 'Slurmctld(primary) at vm is UP'\n")
    (bin_dir / "squeue").write_text("#!/bin/sh\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def say(*rows: tuple[str, str, float, float | None]) -> None:
        out.write_text("".join(f"{job}|{state}|0:0|n1|{_sacct_time(start)}|"
                               f"{_sacct_time(end) if end else 'Unknown'}|{_sacct_time(start - 5)}|60|1|cpu=1|\n"
                               for job, state, start, end in rows))

    return say


def _run(root: Path, name: str, status: str, attempts: list[dict]) -> None:
    run_dir = root / "demo" / name
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({
        "schema_version": 2, "run_id": f"id-{name}", "exp_name": "demo", "run_name": name, "status": status,
        "created": attempts[0]["started"], "updated": attempts[-1]["started"], "last_step": 4, "max_steps": 8,
        "attempts": attempts}))


def test_an_attempt_ends_when_slurm_ended_its_job(experiments_root, capsys, sacct_says):
    t0 = time.time() - 2 * 86400
    # Killed outright, no attempt since: the job recorded no end.
    _run(experiments_root, "killed", "RUNNING",
         [{"n": 1, "started": iso(t0), "ended": None, "slurm_job_id": "55", "end_state": None}])
    # Killed, and taken over by the next attempt two hours later, which wrote its own start as the end.
    _run(experiments_root, "taken", "COMPLETED",
         [{"n": 1, "started": iso(t0), "ended": iso(t0 + 7800), "slurm_job_id": "56", "end_state": "NODE_FAIL",
           "reason": "Slurm: NODE_FAIL (exit code 0:0); the job recorded no end"},
          {"n": 2, "started": iso(t0 + 7800), "ended": iso(t0 + 8400), "slurm_job_id": "56",
           "end_state": "COMPLETED"}])
    sacct_says(("55", "NODE_FAIL", t0 - 2, t0 + 600),
               ("56", "NODE_FAIL", t0 - 2, t0 + 900), ("56", "COMPLETED", t0 + 7799, t0 + 8401))

    code, out, _ = cli(capsys, "status", "--json")
    killed = next(r for r in json.loads(out) if r["run_name"] == "killed")
    assert code == 0 and killed["state"] == "NODE_FAIL" and killed["elapsed_s"] == 600
    code, out, _ = cli(capsys, "show", "killed")
    assert code == 0 and f"#1 {iso(t0)} -> {iso(t0 + 600)} on " in out and ": NODE_FAIL" in out
    code, out, _ = cli(capsys, "show", "taken")
    assert f"#1 {iso(t0)} -> {iso(t0 + 900)} on " in out, "Slurm's end, not the takeover's"
    assert f"#2 {iso(t0 + 7800)} -> {iso(t0 + 8400)} on " in out, "the job's own end stands"


def test_the_next_attempt_records_slurms_end_of_a_killed_one(tmp_path, monkeypatch):
    t0 = time.time() - 3600
    paths = RunPaths(tmp_path / "demo" / "r")
    paths.run_dir.mkdir(parents=True)
    m = Manifest.new(paths, "demo", "r", "f" * 16)
    m.data["attempts"].append({"n": 1, "started": iso(t0), "ended": None, "slurm_job_id": "57", "end_state": None})
    m.data["status"] = "RUNNING"
    monkeypatch.setattr(manifest_module.slurm_client, "job_runs", lambda job: [
        slurm_client.SacctRow("57", "NODE_FAIL", "0:0", "n1", t0 - 1, t0 + 300),
        slurm_client.SacctRow("57", "RUNNING", "0:0", "n2", t0 + 3000, None)])
    m.settle_last_attempt()
    m.save()
    first = read_manifest(paths.run_dir)["attempts"][0]
    assert first["end_state"] == "NODE_FAIL" and first["ended"] == iso(t0 + 300)


# ------------------------------------------------------------------------------------------------ the error's cause


def test_a_wrapped_failure_records_its_cause_and_file(experiments_root, tmp_path, capsys, no_slurm):  # noqa: F811
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "1+1", "answer": "2"}\nnot json at all\n')
    paths = RunPaths(experiments_root / "demo" / "broken")
    cfg = config("run_name=broken", "training.max_steps=2")
    with capsys.disabled(), pytest.raises(DatasetGenerationError), job(cfg, paths.run_dir):
        load_dataset("json", data_files=str(broken), cache_dir=str(tmp_path / "hf"))
    error = read_manifest(paths.run_dir)["error"]
    assert error.startswith("DatasetGenerationError: An error occurred while generating the dataset; cause: "
                            "ArrowInvalid: JSON parse error: ")
    assert "in row 1" in error and f"(reading {broken})" in error and "\n" not in error

    code, out, _ = cli(capsys, "status")
    assert code == 0 and f"  broken: {error}" in out.splitlines()
    code, out, _ = cli(capsys, "show", "broken")
    assert f"FAILED: {error}" in out
