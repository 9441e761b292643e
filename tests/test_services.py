"""Services started inside a run's allocation: where they run, the exact lines that start them, the checks before
submission, and the job's start / health / stop loop (with the reward server as a plain local process: no srun)."""

import dataclasses
import json
import os
import shlex
import socket
import subprocess
import sys
import time

import pytest
from conftest import DEMO, manifest, run_module, run_train
from hydra import compose, initialize_config_dir

from rlvr_vocab import CONF_DIR
from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.config.services import service_configs
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.secrets import SERVICE_TOKEN_ENV
from rlvr_vocab.job import services as job_services
from rlvr_vocab.job.services import Running, ServiceFailed, Services, inject, placement, start_services
from rlvr_vocab.model.rewards import build_reward_funcs
from rlvr_vocab.slurm import client as slurm_client
from rlvr_vocab.slurm.steps import node_cpus, service_env, split_nodes, task_cpus
from rlvr_vocab.validation.services import check_services, service_line, trainer_world_size

WRAPPER = ["sh", "-c", 'trap "" USR1 USR2; exec "$@"']
REMOTE = ("+services=reward_server",)
# The trainers' torch.distributed and accelerate variables: no service may get them.
TRAINER_ENV = {"RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "node1", "MASTER_PORT": "29500",
               "ACCELERATE_MIXED_PRECISION": "bf16"}


def compose_cfg(*overrides: str, launcher: str | None = None):
    """The config as a submission composes it; with `launcher`, the Hydra node that holds its profile."""
    register_configs()
    extra = [f"hydra/launcher={launcher}"] if launcher else []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose("config", overrides=[*overrides, *extra], return_hydra_config=launcher is not None)


def grpo_fields() -> dict:
    from trl import GRPOConfig

    return {f.name: f for f in dataclasses.fields(GRPOConfig)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------- where they run


def test_services_take_the_last_nodes_and_the_trainers_the_first():
    assert split_nodes(["n1", "n2", "n3"], {"vllm": 1}) == (["n1", "n2"], {"vllm": ["n3"]})
    assert split_nodes([f"n{i}" for i in range(1, 6)], {"a": 1, "b": 2}) == (["n1", "n2"], {"a": ["n3"],
                                                                                             "b": ["n4", "n5"]})
    with pytest.raises(ValueError, match="services take 2 of the job's 2 nodes"):
        split_nodes(["n1", "n2"], {"a": 2})


def test_the_reward_servers_srun_line_in_a_two_node_job(tmp_path):
    services = service_configs(compose_cfg(*REMOTE).services)
    placed = placement(services, ["rlvr-node1", "rlvr-node2"], trainer_nodes=["rlvr-node1"])
    assert placed == {"reward_server": ["rlvr-node2"]}
    line = service_line("reward_server", services["reward_server"], placed["reward_server"], "m", tmp_path, 2)
    assert line == ["srun", "--nodes=1", "--ntasks=1", "--nodelist=rlvr-node2", "--job-name=reward_server",
                    "--export=ALL", "--cpus-per-task=2", *WRAPPER, "reward_server", sys.executable, "-m",
                    "rlvr_vocab.model.reward_server", "--host", "rlvr-node2", "--port", "8765"]
    with pytest.raises(ServiceFailed, match="the trainers run on rlvr-node2, which services.reward_server takes"):
        placement(services, ["rlvr-node1", "rlvr-node2"], trainer_nodes=["rlvr-node1", "rlvr-node2"])
    # The trainers' CPU binding is theirs: the service's srun must not apply it on another node; nor is the service
    # a rank of the trainers, under srun or on this machine.
    rank_0 = {"SLURM_CPU_BIND": "quiet,mask_cpu:0x1", "SLURM_MEM_BIND_LIST": "0x1", "SLURM_JOB_ID": "7",
              SERVICE_TOKEN_ENV: "t", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4", **TRAINER_ENV}
    assert service_env(rank_0, srun=True) == {"SLURM_JOB_ID": "7", SERVICE_TOKEN_ENV: "t"}
    assert service_env(rank_0, srun=False) == {"SLURM_CPU_BIND": "quiet,mask_cpu:0x1", "SLURM_MEM_BIND_LIST": "0x1",
                                               "SLURM_JOB_ID": "7", SERVICE_TOKEN_ENV: "t"}


def test_a_service_gets_its_nodes_whole_cpu_share():
    """srun 22.05 gives a step without --cpus-per-task one CPU a task: a vLLM server confined to one core."""
    assert node_cpus("32(x2),16") == [32, 32, 16] and node_cpus("4") == [4]
    assert (task_cpus(32, tasks=1, nodes=1), task_cpus(32, tasks=4, nodes=1), task_cpus(8, tasks=3, nodes=2)) == (
        32, 8, 4)
    with pytest.raises(ValueError, match="not Slurm's format"):
        node_cpus("32(x2")


def test_the_vllm_profiles_dry_run_prints_trls_documented_command(tmp_path, experiments_root):
    """TRL's documentation of GRPO on several nodes, https://huggingface.co/docs/trl/grpo_trainer
    ("GRPO at scale: train a 70B+ Model on multiple nodes"):

        # Run vLLM server on the 5th node (Group 2)
        srun --nodes=1 --ntasks=1 --nodelist="${NODELIST[4]}" trl vllm-serve --model Qwen/Qwen2.5-72B \
            --tensor_parallel_size 8 &

    with the trainers on the first four nodes given `GRPOConfig(..., use_vllm=True, vllm_mode="server",
    vllm_server_host=...)`; and GRPOConfig's own documentation (TRL 1.16): "vllm_server_base_url: Base URL for the
    vLLM server (e.g., "http://localhost:8000"). If provided, `vllm_server_host` and `vllm_server_port` are ignored."
    """
    # The reasoning vocabulary's demo: the server loads the extended model the job writes to <run dir>/model.
    out = run_train("experiment=demo_reasoning", "model.reasoning_vocab.mode=free", "hydra/launcher=slurm_vllm_server",
                    "+services=vllm_server", "dry_run=true", "run_name=vllm-plan")
    assert out.returncode == 0, out.stderr
    shown = {line.strip().split(":", 1)[0]: line.strip().split(":", 1)[1].strip() for line in out.stdout.splitlines()
             if line.strip().startswith(("vllm_server:", "trainers get:"))}
    line = shlex.split(shown["vllm_server"])
    model = str(experiments_root / "demo_reasoning" / "vllm-plan" / "model")
    # The doc's step, on the last node with its 4 GPUs and all the CPUs the job holds there (4 tasks x 8 CPUs).
    assert line == ["srun", "--nodes=1", "--ntasks=1", "--nodelist=node3", "--job-name=vllm_server", "--export=ALL",
                    "--cpus-per-task=32", "--gpus-per-node=4", *WRAPPER, "vllm_server",
                    "trl", "vllm-serve", "--model", model, "--tensor_parallel_size", "4", "--data_parallel_size", "1",
                    "--host", "node3", "--port", "8000"]
    served = line[line.index("trl"):]
    assert "trainers on node1,node2 (srun --kill-on-bad-exit=1 --nodes=2 --ntasks=8 --relative=0)" in out.stdout
    assert shown["trainers get"] == ("training.use_vllm=True training.vllm_mode=server "
                                     "training.vllm_server_base_url=http://node3:8000")

    from trl import GRPOConfig
    from trl.scripts.vllm_serve import make_parser

    # TRL's own parser of `trl vllm-serve` takes the command as written, listening where the trainers will call.
    args, rest = make_parser().parse_args_and_config(args=served[2:], return_remaining_strings=True)
    assert (args.model, args.tensor_parallel_size, args.data_parallel_size, args.host, args.port, rest) == (
        model, 4, 1, "node3", 8000, [])
    config = GRPOConfig(output_dir=str(tmp_path), use_vllm=True, vllm_mode="server", bf16=False,
                        vllm_server_base_url="http://node3:8000")
    assert (config.use_vllm, config.vllm_mode, config.vllm_server_base_url) == (True, "server", "http://node3:8000")
    # 3 nodes x 4 tasks, the server's node trains nothing: 8 trainer processes.
    cfg = compose_cfg("experiment=baseline", "+services=vllm_server", launcher="slurm_vllm_server")
    assert trainer_world_size(cfg, 12) == 8


# --------------------------------------------------------------------------------------------- before submission


@pytest.mark.parametrize("launcher,overrides,message", [
    ("slurm_cpu_multinode", (*REMOTE, "services.reward_server.nodes=2", "services.reward_server.tasks=2"),
     "services.reward_server.nodes: the services take 2 of the job's 2 nodes: none is left to the trainers"),
    ("slurm_cpu_multinode", REMOTE,
     "hydra.launcher.srun_args: the trainers' step must keep to the job's first 1 node, leaving the last 1 to the "
     "services; add --nodes=1 --ntasks=1 --relative=0"),
    ("slurm_cpu_reward_server", (*REMOTE, "services.reward_server.address_keys=[remote_rewards.uri]"),
     "services.reward_server.address_keys: 'remote_rewards.uri' is not a key of the config"),
    (None, (*REMOTE, "services.reward_server.address_keys=[]"),
     "services.reward_server.address_keys: is empty: no config key receives the service's address"),
    (None, (*REMOTE, "services.reward_server.port=null"), "services.reward_server.port: is missing"),
    (None, (*REMOTE, "services.reward_server.command=[serve,'{hostname}']"),
     "services.reward_server.command: unknown placeholder {hostname}"),
    (None, ("remote_rewards.rewards=[accuracy]",), "remote_rewards.url: is not set and no service gives it"),
    (None, ("+services=vllm_server", "training.use_vllm=false"),
     "training.vllm_mode: services.vllm_server serves generation, but the trainers would not use it"),
    (None, ("+services=vllm_server", "services.vllm_server.address_keys=[training.vllm_url]"),
     "services.vllm_server.address_keys: 'training.vllm_url' is not a trl.GRPOConfig field"),
    ("slurm_vllm_server", ("+services=vllm_server", "services.vllm_server.gpus_per_node=8"),
     "services.vllm_server.gpus_per_node: asks for 8 GPUs per node but the job has 4"),
    ("slurm_vllm_server", ("+services=vllm_server", "services.vllm_server.gpus_per_node=null"),
     "services.vllm_server.command[5]: ${..gpus_per_node} is null; set services.vllm_server.gpus_per_node"),
    (None, ("+services=vllm_server",),
     "services.vllm_server.gpus_per_node: is 4, but outside Slurm a service runs on this machine beside the trainers, "
     "with no GPUs of its own; submit with a Slurm launcher"),
    (None, (*REMOTE, "services.reward_server.health_check=tls"),
     "services.reward_server.health_check: got 'tls', takes status, token, model"),
])
def test_bad_services_are_refused_naming_the_key_and_the_fix(launcher, overrides, message):
    cfg = compose_cfg(*overrides, launcher=launcher)
    with pytest.raises(ConfigError) as refused:
        check_services(cfg, grpo_fields())
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_a_submission_is_refused_before_sbatch_with_exit_code_2():
    out = run_train("--multirun", "hydra/launcher=slurm_cpu_multinode", *REMOTE, "dry_run=true")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "hydra.launcher.srun_args: the trainers' step must keep to the job's first 1 node" in out.stderr
    assert "sbatch" not in out.stdout
    # Never `--tensor_parallel_size None`: a run names the key to set; a sweep, planned before validation, says
    # OmegaConf's words, in one line too.
    null_gpus = ("hydra/launcher=slurm_vllm_server", "+services=vllm_server", "services.vllm_server.gpus_per_node=null",
                 "dry_run=true")
    out = run_train(*null_gpus)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr == ("error: services.vllm_server.command[5]: ${..gpus_per_node} is null; set "
                          "services.vllm_server.gpus_per_node\n")
    out = run_train("--multirun", *null_gpus)
    assert out.returncode == 2 and "sbatch" not in out.stdout, out.stdout + out.stderr
    assert out.stderr.startswith("error: services.vllm_server.command[5]: While dereferencing interpolation "
                                 "'${..gpus_per_node}': Incompatible value 'None'") and out.stderr.count("\n") == 1


def test_the_shipped_profiles_validate():
    for launcher, overrides in (("slurm_cpu_reward_server", REMOTE), ("slurm_vllm_server", ("+services=vllm_server",))):
        assert check_services(compose_cfg(*overrides, launcher=launcher), grpo_fields())


# --------------------------------------------------------------------------------------------- in the job


def test_addresses_reach_the_config_and_grpos_arguments():
    cfg = compose_cfg(*REMOTE)
    grpo_kwargs = {"max_steps": 2}
    inject(cfg, grpo_kwargs, {"remote_rewards.url": "http://n2:8765", "training.vllm_server_base_url": "http://n3:1"})
    assert cfg.remote_rewards.url == "http://n2:8765" and cfg.training.vllm_server_base_url == "http://n3:1"
    assert grpo_kwargs == {"max_steps": 2, "vllm_server_base_url": "http://n3:1"}


@pytest.fixture
def local_job(monkeypatch, tmp_path):
    """Outside Slurm, as a local run: the services run here, bound to 127.0.0.1. Each variable is set before it is
    removed, so that monkeypatch restores it, or removes what the test set (the token), whether it was set or not."""
    for name in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_STEP_NODELIST", SERVICE_TOKEN_ENV, "WORLD_SIZE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return tmp_path / "run"


def test_the_reward_server_starts_answers_and_stops_in_the_job(local_job):
    port = free_port()
    cfg = compose_cfg(*REMOTE, f"services.reward_server.port={port}")
    local = build_reward_funcs(cfg.reward)[0]
    tokens, states = [], []
    for _attempt in range(2):  # a requeued job starts its services again, with a token of its own
        services = start_services(cfg, {}, local_job, "unused", main=True,
                                  record=lambda name, fields: states.append((name, fields["state"])))
        try:
            assert cfg.remote_rewards.url == f"http://127.0.0.1:{port}"
            tokens.append(os.environ[SERVICE_TOKEN_ENV])
            remote = build_reward_funcs(cfg.reward, cfg.remote_rewards)[0]
            batch = {"completions": ["<think>2+2</think>4", "<think>no</think>5", "4"], "answer": ["4", "4", "4"]}
            assert [f(**batch) for f in remote] == [f(**batch) for f in local] == [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
        finally:
            process = services.running[0].process
            services.stop()
        assert process.returncode is not None  # stopped, not left behind
    assert tokens[0] != tokens[1] and len(tokens[0]) >= 32
    assert [state for _, state in states] == ["starting", "healthy", "stopped"] * 2, "the run's records follow it"
    log = local_job / "services" / "reward_server.log"
    assert "reward server on http://127.0.0.1" in log.read_text()
    written = "".join(p.read_text(errors="replace") for p in local_job.rglob("*") if p.is_file())
    assert not any(token in written for token in tokens)


@pytest.mark.parametrize("command,timeout,cause", [
    ("import sys; print('vllm: CUDA is not available', flush=True); sys.exit(3)", 30,
     r"service reward_server exited with code 3 before it was healthy: vllm: CUDA is not available \(log: .*"
     r"services/reward_server.log\)$"),
    ("import json, os, time; json.dump([k for k in os.environ if k in {trainer_env}], open(r'{run_dir}/env', 'w')); "
     "open(r'{run_dir}/pid', 'w').write(str(os.getpid())); print('loading', flush=True); time.sleep(60)", 3,
     r"service reward_server was not healthy at http://127.0.0.1:\d+/health within 3 s \(.*\); its log ends: "
     r"loading \(log: .*services/reward_server.log\)$"),
])
def test_a_service_that_never_becomes_healthy_fails_the_run_with_its_cause(local_job, monkeypatch, command, timeout,
                                                                           cause):
    for name, value in TRAINER_ENV.items():  # rank 0's: the service must not see them
        monkeypatch.setenv(name, value)
    cfg = compose_cfg(*REMOTE, f"services.reward_server.port={free_port()}",
                      f"services.reward_server.startup_timeout_s={timeout}")
    names = "{{" + repr(sorted(TRAINER_ENV))[1:-1] + "}}"  # a set literal, its braces escaped for the job's format
    cfg.services.reward_server.command = ["{python}", "-c", command.replace("{trainer_env}", names)]
    local_job.mkdir(parents=True)
    recorded = {}
    with pytest.raises(ServiceFailed, match=cause) as failed:
        start_services(cfg, {}, local_job, "unused", main=True,
                       record=lambda name, fields: recorded.setdefault(name, {}).update(fields))
    assert recorded["reward_server"]["state"] == "failed" and recorded["reward_server"]["reason"] == str(failed.value)
    if "pid" in command:  # the service that hung is stopped, not left running
        assert (local_job / "pid").exists() and json.loads((local_job / "env").read_text()) == []
        with pytest.raises(ProcessLookupError):
            os.kill(int((local_job / "pid").read_text()), 0)


def fake_server(answers: dict[str, str]) -> list[str]:
    """The command of a server answering every GET with 200 and these bodies (path -> text): someone else's."""
    code = (f"import http.server as h; A = {answers!r}\n"
            "class H(h.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        body = A.get(self.path.split('?')[0], '').encode(); self.send_response(200)\n"
            "        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n"
            "h.HTTPServer(('127.0.0.1', int(PORT)), H).serve_forever()")
    # The job fills in {port}: every other brace is the code's own.
    return ["{python}", "-c", code.replace("{", "{{").replace("}", "}}").replace("PORT", "'{port}'")]


@pytest.mark.parametrize("check,answers,cause", [
    ("token", {"/health": '{"status": "ok", "proof": "0123"}'},
     "a 200 without proof of the run's token: not this attempt's server"),
    ("model", {"/health": "", "/v1/models": '{"data": [{"id": "Qwen/Qwen3-0.6B"}]}'},
     "the server on the port serves Qwen/Qwen3-0.6B, not /run/model"),
    ("model", {"/health": ""}, "the server on the port serves no model, not /run/model"),
])
def test_a_200_from_another_server_is_not_healthy(local_job, check, answers, cause):
    """Any 200 is not enough: the reward server proves it holds the run's token, vLLM serves the run's model."""
    cfg = compose_cfg(*REMOTE, f"services.reward_server.port={free_port()}",
                      "services.reward_server.startup_timeout_s=3", f"services.reward_server.health_check={check}")
    cfg.services.reward_server.command = fake_server(answers)
    local_job.mkdir(parents=True)
    with pytest.raises(ServiceFailed, match=f"within 3 s \\({cause}"):
        start_services(cfg, {}, local_job, "/run/model", main=True)


def test_vllms_model_list_makes_it_healthy(local_job):
    cfg = compose_cfg(*REMOTE, f"services.reward_server.port={free_port()}",
                      "services.reward_server.health_check=model")
    cfg.services.reward_server.command = fake_server({"/health": "", "/v1/models": json.dumps(
        {"object": "list", "data": [{"id": "/run/model", "object": "model"}]})})
    services = start_services(cfg, {}, local_job, "/run/model", main=True)
    services.stop()
    assert cfg.remote_rewards.url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("rounds,outcome", [
    ([("waiting", None), ("waiting", None), ("ready", "the-token-0123456789")], "the-token-0123456789"),
    ([("waiting", None), ("failed", "service vllm_server exited with code 1 before it was healthy: no GPU (log: x)")],
     "service vllm_server exited with code 1 before it was healthy: no GPU"),
])
def test_the_other_ranks_wait_in_short_rounds_and_share_rank_0s_outcome(local_job, monkeypatch, rounds, outcome):
    """A rank other than 0 never waits in one collective as long as the services' start (a vLLM server may take
    longer than the process group's timeout): rank 0 tells it how they stand once a round."""
    told = iter(rounds)
    asked = []
    monkeypatch.setattr(job_services, "_from_rank_0", lambda news: asked.append(news) or next(told))
    monkeypatch.setattr(job_services, "_POLL_S", 0.01)
    cfg = compose_cfg(*REMOTE, f"services.reward_server.port={free_port()}")
    if outcome.startswith("service"):
        with pytest.raises(ServiceFailed, match=outcome):
            start_services(cfg, {}, local_job, "unused", main=False)
    else:
        assert start_services(cfg, {}, local_job, "unused", main=False).running == []
        assert os.environ[SERVICE_TOKEN_ENV] == outcome and cfg.remote_rewards.url.startswith("http://127.0.0.1:")
    assert asked == [None] * len(rounds) and not local_job.exists()  # it started nothing


def test_a_step_that_ignores_sigterm_is_killed_through_slurm(tmp_path, monkeypatch):
    """Killing srun alone may leave its step running: the step is killed by `scancel --signal=KILL <job>.<step>`."""
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "squeue").write_text("#!/bin/sh\necho \"$@\" >> " + str(tmp_path / "calls") + "\n"
                                  "printf '77.0 python\\n77.3 reward_server\\n77.4 vllm_server\\n'\n")
    (shims / "scancel").write_text("#!/bin/sh\necho scancel \"$@\" >> " + str(tmp_path / "calls") + "\n")
    for shim in shims.iterdir():
        shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")
    monkeypatch.setattr(job_services, "_STOP_GRACE_S", 0.3)
    srun = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
                             "; print('up', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    assert srun.stdout.readline() == b"up\n"  # its SIGTERM handler is set
    svc = service_configs(compose_cfg(*REMOTE).services)["reward_server"]
    Services([Running("reward_server", svc, "http://n2:8765", tmp_path / "log", srun, time.monotonic(), "77")]).stop()
    srun.stdout.close()
    assert srun.returncode == -9
    assert (tmp_path / "calls").read_text().splitlines() == ["-h -s -j 77 -o %i %j", "scancel --signal=KILL 77.3"]


def test_jobs_submitted_from_the_job_do_not_inherit_the_services_token(monkeypatch):
    monkeypatch.setenv(SERVICE_TOKEN_ENV, "the-token-0123456789")
    monkeypatch.setenv("MASTER_ADDR", "node1")
    with slurm_client.outside_job():
        assert SERVICE_TOKEN_ENV not in os.environ and "MASTER_ADDR" not in os.environ
    assert os.environ[SERVICE_TOKEN_ENV] == "the-token-0123456789"


@pytest.mark.slow
def test_a_failing_service_fails_the_run_with_its_cause_in_run_json(demo_model, experiments_root):
    """Through the job itself (a local run, 11 s here besides building the demo model): the run is FAILED, its
    error the one line of the service's failure."""
    out = run_module("run_name=no-service", "training.max_steps=1", "eval.enabled=false", *DEMO, *REMOTE,
                     f"services.reward_server.port={free_port()}",
                     "services.reward_server.command=[sh,-c,'echo reward server broken; exit 3']", timeout=300)
    assert out.returncode != 0
    run = manifest(experiments_root / "demo" / "no-service")
    assert run["status"] == "FAILED", run
    assert run["error"].startswith("ServiceFailed: service reward_server exited with code 3 before it was healthy: "
                                   "reward server broken (log: "), run["error"]
    assert run["error"].endswith("services/reward_server.log)") and "\n" not in run["error"]


def test_the_cause_is_the_services_last_line_not_sruns_report(tmp_path):
    from rlvr_vocab.job.services import last_line

    log = tmp_path / "svc.log"
    log.write_text("== start\nno GPU on this node\nsrun: error: vm: task 0: Exited with exit code 3\n")
    assert last_line(log) == "no GPU on this node"
    log.write_text("srun: error: vm: task 0: Exited with exit code 3\n")
    assert last_line(log) == "srun: error: vm: task 0: Exited with exit code 3", "srun's word when it is all there is"
