"""The `services` section checked before submission, the exact line each service is started with, and what a dry run
shows of them (the srun lines and the trainers' arguments).

Under a Slurm launcher the services take the job's last nodes and the trainers' step keeps to the first ones: the
profile's `srun_args` must say so (`--nodes=K --ntasks=K*tasks_per_node --relative=0`, as
conf/hydra/launcher/slurm_vllm_server.yaml), which is checked here. Outside Slurm a service runs on this machine,
bound to 127.0.0.1, with no GPUs of its own.
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlvr_vocab.config.services import (
    HEALTH_CHECKS,
    PLACEHOLDERS,
    ServiceConfig,
    command_fields,
    render,
    service_configs,
)
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.model.remote_reward import SECTION as REMOTE_REWARDS
from rlvr_vocab.model.remote_reward import remote_settings
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.slurm import steps

LOCAL_HOST = "127.0.0.1"
# What a dry run shows for the CPUs of a service's task when the launcher does not say how many a node has.
_NODE_SHARE = "<the job's CPUs on its node>"
_MISSING = object()
# GRPOConfig fields that point the trainers at a vLLM server.
VLLM_SERVER_KEYS = ("training.vllm_server_base_url", "training.vllm_server_host")


def launcher_of(cfg: DictConfig) -> Mapping | None:
    """The launcher profile the run is submitted with when it is a Slurm one: the sweep's config holds it, a single
    run's Hydra state does; None for the local launchers and outside Hydra."""
    launcher = cfg.hydra.get("launcher") if "hydra" in cfg else None
    if launcher is None:
        from hydra.core.hydra_config import HydraConfig

        launcher = HydraConfig.get().get("launcher") if HydraConfig.initialized() else None
    return launcher if launcher is not None and "Slurm" in str(launcher.get("_target_")) else None


def check_services(cfg: DictConfig, grpo_fields: Mapping[str, Any]) -> dict[str, ServiceConfig]:
    """Every service's settings, the keys that receive their addresses, and the launcher's room for them; the first
    problem as a ConfigError naming the key and the fix."""
    services = service_configs(cfg.get("services"))
    fed: dict[str, str] = {}
    for name, svc in services.items():
        _check_one(name, svc)
        for key in svc.address_keys:
            _check_address_key(cfg, name, key, grpo_fields)
            if key in fed:
                raise ConfigError(f"services.{name}.address_keys", f"'{key}' already receives services.{fed[key]}'s "
                                  "address", "give each key one service")
            fed[key] = name
    remote = remote_settings(OmegaConf.to_container(cfg[REMOTE_REWARDS], resolve=True), list(cfg.reward))
    if remote.url is None and remote.rewards and f"{REMOTE_REWARDS}.url" not in fed:
        raise ConfigError(f"{REMOTE_REWARDS}.url", "is not set and no service gives it: remote_rewards.rewards would "
                          "be computed in the trainers", "add the reward server (+services=reward_server) or set it "
                          "to http://host:port")
    if any(k in fed for k in VLLM_SERVER_KEYS) and not (cfg.training.get("use_vllm")
                                                        and cfg.training.get("vllm_mode") == "server"):
        raise ConfigError("training.vllm_mode", f"services.{fed[next(k for k in VLLM_SERVER_KEYS if k in fed)]} "
                          "serves generation, but the trainers would not use it",
                          "set training.use_vllm=true training.vllm_mode=server")
    launcher = launcher_of(cfg)
    if services and launcher is not None:
        _check_room(services, launcher)
    elif "SLURM_JOB_ID" not in os.environ:  # started by the job on this machine (rlvr_vocab.job.services)
        for name, svc in services.items():
            if svc.gpus_per_node:
                raise ConfigError(f"services.{name}.gpus_per_node", f"is {svc.gpus_per_node}, but outside Slurm a "
                                  "service runs on this machine beside the trainers, with no GPUs of its own",
                                  "submit with a Slurm launcher (e.g. hydra/launcher=slurm_vllm_server)")
    return services


def _check_one(name: str, svc: ServiceConfig) -> None:
    where = f"services.{name}"
    if not svc.command:
        raise ConfigError(f"{where}.command", "is empty", "the command that starts the service, one argument an item")
    try:
        unknown = sorted(command_fields(svc.command) - set(PLACEHOLDERS))
    except ValueError as e:
        raise ConfigError(f"{where}.command", f"bad placeholder ({e})", "write {port}, {host}, ...; {{ for a brace"
                          ) from None
    if unknown:
        raise ConfigError(f"{where}.command", f"unknown placeholder {{{unknown[0]}}}",
                          f"the job fills in {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    if svc.port is None:
        raise ConfigError(f"{where}.port", "is missing", f"set the port it listens on, e.g. {where}.port=8000")
    if not 1 <= svc.port <= 65535:
        raise ConfigError(f"{where}.port", f"got {svc.port}, takes 1-65535")
    if svc.nodes < 1:
        raise ConfigError(f"{where}.nodes", f"got {svc.nodes}, takes at least 1", "a service runs on nodes of its own")
    if svc.tasks < svc.nodes:
        raise ConfigError(f"{where}.tasks", f"got {svc.tasks} for {svc.nodes} nodes", "at least one task per node")
    if svc.gpus_per_node is not None and svc.gpus_per_node < 0:
        raise ConfigError(f"{where}.gpus_per_node", f"got {svc.gpus_per_node}", "0 or more; null: all of its nodes'")
    if svc.cpus_per_task is not None and svc.cpus_per_task < 1:
        raise ConfigError(f"{where}.cpus_per_task", f"got {svc.cpus_per_task}", "1 or more; null: Slurm's default")
    if not svc.health_path.startswith("/"):
        raise ConfigError(f"{where}.health_path", f"got {svc.health_path!r}", "a URL path, e.g. /health")
    if svc.health_check not in HEALTH_CHECKS:
        raise ConfigError(f"{where}.health_check", f"got {svc.health_check!r}, takes {', '.join(HEALTH_CHECKS)}",
                          "token for the reward server, model for vLLM")
    if not svc.startup_timeout_s > 0:
        raise ConfigError(f"{where}.startup_timeout_s", f"got {svc.startup_timeout_s}", "seconds, more than 0")
    if not svc.address_keys:
        raise ConfigError(f"{where}.address_keys", "is empty: no config key receives the service's address",
                          "name them, e.g. [remote_rewards.url] or [training.vllm_server_base_url]")


def _check_address_key(cfg: DictConfig, name: str, key: str, grpo_fields: Mapping[str, Any]) -> None:
    where = f"services.{name}.address_keys"
    section, _, field = key.partition(".")
    if section == "training":
        if field not in grpo_fields:
            raise ConfigError(where, f"'{key}' is not a trl.GRPOConfig field", "e.g. training.vllm_server_base_url")
        return
    value = OmegaConf.select(cfg, key, default=_MISSING)
    if value is _MISSING:
        raise ConfigError(where, f"'{key}' is not a key of the config", "e.g. remote_rewards.url")
    if value is not None and not isinstance(value, str):
        raise ConfigError(where, f"'{key}' holds {type(value).__name__}, not an address", "name a key that takes a URL")


def _check_room(services: dict[str, ServiceConfig], launcher: Mapping) -> None:
    """The launcher leaves the trainers some nodes, keeps their step off the services' nodes, and has the GPUs the
    services ask for."""
    nodes, per_node = int(launcher.get("nodes") or 1), int(launcher.get("tasks_per_node") or 1)
    taken = sum(svc.nodes for svc in services.values())
    first = next(iter(services))
    if taken >= nodes:
        raise ConfigError(f"services.{first}.nodes", f"the services take {taken} of the job's {nodes} nodes: none is "
                          "left to the trainers", "raise hydra.launcher.nodes (hydra/launcher=slurm_vllm_server: 2 "
                          "training nodes + 1 for the server) or lower the services' nodes")
    keep = nodes - taken
    args = [str(a) for a in launcher.get("srun_args") or []]
    wanted = {"--nodes": str(keep), "--ntasks": str(keep * per_node), "--relative": "0"}
    if any(steps.option(args, k) != v for k, v in wanted.items()):
        raise ConfigError("hydra.launcher.srun_args", f"the trainers' step must keep to the job's first {keep} "
                          f"node{'s' if keep > 1 else ''}, leaving the last {taken} to the services",
                          f"add {' '.join(f'{k}={v}' for k, v in wanted.items())} "
                          "(as conf/hydra/launcher/slurm_vllm_server.yaml)")
    has = launcher.get("gpus_per_node") or 0
    for name, svc in services.items():
        if svc.gpus_per_node and svc.gpus_per_node > has:
            raise ConfigError(f"services.{name}.gpus_per_node", f"asks for {svc.gpus_per_node} GPUs per node but the "
                              f"job has {has}", "raise hydra.launcher.gpus_per_node or lower the service's")


def trainer_world_size(cfg: DictConfig, target_world_size: int | None) -> int | None:
    """The trainers' processes of a job of `target_world_size` tasks (the launcher's nodes x tasks_per_node): those
    on the services' nodes do not train."""
    launcher = launcher_of(cfg)
    services = service_configs(cfg.get("services"))
    if target_world_size is None or launcher is None or not services:
        return target_world_size
    taken = sum(svc.nodes for svc in services.values())
    return max(int(launcher.get("nodes") or 1) - taken, 1) * int(launcher.get("tasks_per_node") or 1)


def address(host: str, svc: ServiceConfig) -> str:
    return f"http://{host}:{svc.port}"


def service_line(name: str, svc: ServiceConfig, nodes: list[str] | None, model: str, run_dir: Path,
                 node_cpus: int | None = None) -> list[str]:
    """The exact command that starts the service: an srun step on `nodes` of the job, whose nodes have `node_cpus`
    CPUs each for it (None: unknown, in a dry run), or (None) a plain process on this machine bound to 127.0.0.1."""
    host = nodes[0] if nodes else LOCAL_HOST
    command = render(svc.command, {"python": sys.executable, "host": host, "port": str(svc.port), "model": model,
                                   "run_dir": str(run_dir)})
    if nodes is None:
        return command
    cpus = svc.cpus_per_task or (steps.task_cpus(node_cpus, svc.tasks, len(nodes)) if node_cpus else _NODE_SHARE)
    return steps.srun_line(name, nodes, svc.tasks, command, cpus, svc.gpus_per_node)


def _launcher_node_cpus(launcher: Mapping) -> int | None:
    """The CPUs a job of this launcher profile holds on each node, as far as the profile says."""
    per_task, per_gpu = launcher.get("cpus_per_task"), launcher.get("cpus_per_gpu")
    if per_task:
        return int(per_task) * int(launcher.get("tasks_per_node") or 1)
    if per_gpu and launcher.get("gpus_per_node"):
        return int(per_gpu) * int(launcher.get("gpus_per_node"))
    return None


def describe_services(cfg: DictConfig, run_dir: Path) -> str | None:
    """What a dry run shows: each service's exact start line and the address the trainers get; under a Slurm
    launcher the allocation's nodes are named node1..nodeN in order, as `scontrol show hostnames` lists them."""
    services = service_configs(cfg.get("services"))
    if not services:
        return None
    launcher = launcher_of(cfg)
    paths = RunPaths(run_dir)
    if cfg.model.reasoning_vocab.size:
        model = str(paths.extended_model)
    else:
        model = cfg.model.name_or_path or f"<the embedded {cfg.model.embedded.kind} model, built by the job>"
    lines = []
    if launcher is not None:
        hostnames = [f"node{i + 1}" for i in range(int(launcher.get("nodes") or 1))]
        trainers, placed = steps.split_nodes(hostnames, {n: s.nodes for n, s in services.items()})
        srun_args = " ".join(str(a) for a in launcher.get("srun_args") or [])
        lines.append(f"trainers on {','.join(trainers)} (srun {srun_args}); the services, started by rank 0:")
        node_cpus = _launcher_node_cpus(launcher)
    else:
        placed, node_cpus = dict.fromkeys(services), None
        lines.append("services, started on this machine by the job before training:")
    trainer_args = []
    for name, svc in services.items():
        nodes = placed[name]
        lines.append(f"  {name}: {steps.shown(service_line(name, svc, nodes, model, run_dir, node_cpus))}")
        url = address(nodes[0] if nodes else LOCAL_HOST, svc)
        lines.append(f"    healthy at {url}{svc.health_path} within {svc.startup_timeout_s:g} s; log "
                     f"{paths.service_log(name)}")
        trainer_args += [f"{key}={url}" for key in svc.address_keys]
    if any(key.split("=")[0] in VLLM_SERVER_KEYS for key in trainer_args):
        trainer_args = [f"training.use_vllm={cfg.training.use_vllm}", f"training.vllm_mode={cfg.training.vllm_mode}",
                        *trainer_args]
    if any(arg.startswith(f"{REMOTE_REWARDS}.url=") for arg in trainer_args):
        names = cfg[REMOTE_REWARDS].rewards or list(cfg.reward)
        trainer_args.append(f"(rewards computed there: {', '.join(names)})")
    lines.append(f"  trainers get: {' '.join(trainer_args)}")
    return "\n".join(lines)
