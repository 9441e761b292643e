"""`services`: processes a job starts inside its own allocation before training (a generation server, a reward
server), one entry per service, name -> ServiceConfig. conf/services/ holds the shipped ones.

The defaults of an entry live here; `services.<name>` in YAML sets only what differs. The job
(rlvr_vocab.job.services) starts each one, waits until it answers at its health path, and gives its address to the
config keys in `address_keys`.
"""

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlvr_vocab.core.errors import ConfigError

# What a service's command may name; the job fills them in: the python running the job, the host and port the
# service binds to (the node's address inside the allocation, 127.0.0.1 outside Slurm), the model the trainers load
# (the extended model of a reasoning-vocabulary run), the run dir.
PLACEHOLDERS = ("python", "host", "port", "model", "run_dir")
# How the job knows the 200 at the health path is this attempt's service, not another process on the port:
# `token`: it answers GET <health_path>?nonce=N with the HMAC of N keyed by the run's token (the reward server);
# `model`: an OpenAI-compatible server (vLLM) whose /v1/models lists {model};
# `status`: the 200 alone, while the process the job started still runs (a service that can prove neither).
HEALTH_CHECKS = ("status", "token", "model")
# An interpolation in an entry's command that resolved to null: OmegaConf's own words.
_NULL_ITEM = re.compile(r"interpolation '(\$\{[^']*\})': Incompatible value 'None'")


@dataclass
class ServiceConfig:
    # The command, one argument per item; {python}, {host}, {port}, {model} and {run_dir} are filled in by the job.
    command: list[str] = field(default_factory=list)
    # Nodes taken out of the job's allocation (its last ones); the trainers keep the others.
    nodes: int = 1
    # srun tasks over those nodes (a server that spreads itself over its GPUs, as vLLM does, is one task).
    tasks: int = 1
    # GPUs per node of the service (null: all the job's GPUs on its nodes, Slurm's default for a step).
    gpus_per_node: int | None = None
    # null: the job's CPUs on each of its nodes, shared among its tasks there (srun 22.05 would give it one a task).
    cpus_per_task: int | None = None
    # The port it listens on; required.
    port: int | None = None
    # GET <address><health_path> answers 200 once the service can serve.
    health_path: str = "/health"
    # How that 200 is known to come from this service (HEALTH_CHECKS): status, token or model.
    health_check: str = "status"
    # How long the job waits for that before the run fails.
    startup_timeout_s: float = 300.0
    # Config keys that receive the service's address, http://<host>:<port> (e.g. remote_rewards.url,
    # training.vllm_server_base_url).
    address_keys: list[str] = field(default_factory=list)


def service_configs(node: Any) -> dict[str, ServiceConfig]:
    """The `services` section as typed entries, the defaults above filled in; a ConfigError names a bad key."""
    if node is None:
        return {}
    if type(node).__module__.startswith("omegaconf"):
        try:
            node = OmegaConf.to_container(node, resolve=True)
        except OmegaConfBaseException as e:
            raise _resolve_error(e) from None
    if not isinstance(node, Mapping):
        raise ConfigError("services", f"expected a mapping of service name to settings, got {node!r}")
    found = {}
    for name, entry in node.items():
        where = f"services.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigError(where, f"expected the service's settings, got {entry!r}", "see conf/services/")
        try:
            typed = OmegaConf.merge(OmegaConf.structured(ServiceConfig), entry)
        except OmegaConfBaseException as e:
            key = f"{where}.{e.key}" if getattr(e, "key", None) else where
            raise ConfigError(key, str(e.msg).splitlines()[0] if getattr(e, "msg", None) else str(e),
                              f"the keys a service takes: {', '.join(ServiceConfig.__dataclass_fields__)}") from None
        found[str(name)] = OmegaConf.to_object(typed)
    return found


def _resolve_error(e: OmegaConfBaseException) -> ConfigError:
    """A value of `services` that does not resolve, e.g. `${..gpus_per_node}` in a command with gpus_per_node null
    (`--tensor_parallel_size None`), as one line naming the key."""
    key, said = getattr(e, "full_key", None) or "services", str(getattr(e, "msg", None) or e).splitlines()[0]
    null = _NULL_ITEM.search(said)
    if null is None:
        return ConfigError(key, said)
    named = null[1][2:-1]
    if named.startswith("..") and "[" in key:  # relative to the command's list: a key of the service's entry
        named = f"{key.rsplit('.', 1)[0]}.{named[2:]}"
    return ConfigError(key, f"{null[1]} is null", f"set {named}")


def command_fields(command: list[str]) -> set[str]:
    """The placeholders the command names ({port} -> port)."""
    return {name for arg in command for _, name, _, _ in string.Formatter().parse(str(arg)) if name is not None}


def render(command: list[str], values: Mapping[str, str]) -> list[str]:
    """The command with its placeholders filled in (each checked by `command_fields` first)."""
    return [str(arg).format_map(values) for arg in command]
