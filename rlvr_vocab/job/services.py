"""The run's services (`services`, rlvr_vocab.config.services) started inside the job before training, stopped when
the job ends; a requeued job starts them again with its new attempt.

Rank 0 makes the run's token, starts each service with its log in the run dir (an srun step on the allocation's last
nodes, or a plain process bound to 127.0.0.1 outside Slurm) and waits until it answers at its health path as this
attempt's service (`health_check`). Every rank then gets the token, through its environment only, and the services'
addresses in the config keys that receive them. A service that exits or stays unhealthy fails the run, on every rank,
with one line: the cause and the log's path.
"""

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from omegaconf import DictConfig, OmegaConf, open_dict

from rlvr_vocab.config.services import ServiceConfig, service_configs
from rlvr_vocab.core.secrets import SERVICE_TOKEN_ENV, redact
from rlvr_vocab.model.remote_reward import NO_PROXY, health_proof
from rlvr_vocab.run.layout import RunPaths
from rlvr_vocab.run.manifest import Manifest, now_iso
from rlvr_vocab.slurm import client as slurm_client
from rlvr_vocab.slurm import steps
from rlvr_vocab.validation.services import LOCAL_HOST, address, service_line

# Seconds between rounds of health checks, and the most one check may take.
_POLL_S = 0.5
_CHECK_TIMEOUT_S = 5.0
# How long a stopped service gets to exit on SIGTERM before it is killed.
_STOP_GRACE_S = 15.0
# Where an OpenAI-compatible server (vLLM) lists the models it serves.
_MODELS_PATH = "/v1/models"


class ServiceFailed(RuntimeError):
    """A service could not be started or did not become healthy: one line, its cause and its log."""


@dataclass
class Running:
    name: str
    svc: ServiceConfig
    url: str
    log: Path
    process: subprocess.Popen
    # time.monotonic() at its start: its startup_timeout_s counts from there.
    started: float
    # The Slurm job whose step it is; None: a process on this machine.
    job: str | None
    healthy: bool = False
    # Why it is not healthy yet, as the last check saw it.
    why: str = "no answer yet"


# record(name, fields): a service's state for the run's records (the attempt's `services`, which `show` and
# `status` read); rank 0 only.
Record = Callable[[str, dict[str, Any]], None]


def _unrecorded(name: str, fields: dict[str, Any]) -> None:
    pass


class Services:
    """The services this rank started (rank 0's; none on the others)."""

    def __init__(self, running: list[Running], record: Record = _unrecorded):
        self.running, self.record = running, record

    def stop(self) -> None:
        """SIGTERM each service (srun passes it on to the step's tasks), SIGKILL after a grace period."""
        for r in reversed(self.running):
            exited = r.process.poll()
            if exited is None:
                r.process.terminate()
                try:
                    r.process.wait(_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    _kill(r)
            logger.info(f"service {r.name} stopped (exit code {r.process.returncode}); log {r.log}")
            if r.healthy:  # a failed start is recorded with its cause already
                state = "stopped" if exited is None else f"exited with code {exited} while training ran"
                self.record(r.name, {"state": state, "exit_code": r.process.returncode, "ended": now_iso()})
        self.running = []


def _kill(r: Running) -> None:
    """SIGKILL the service: an srun step through Slurm first, since killing srun alone may leave the step running."""
    if r.job is not None:
        try:
            slurm_client.kill_steps(r.job, r.name)
        except slurm_client.SlurmError as e:
            logger.warning(f"service {r.name}: could not kill its step: {e}")
    r.process.kill()
    r.process.wait()


def placement(services: Mapping[str, ServiceConfig], hostnames: list[str],
              trainer_nodes: list[str] | None) -> dict[str, list[str]]:
    """Each service's nodes of the allocation (`hostnames`, in order): its last ones. The trainers' step must not
    hold any of them (its `trainer_nodes`, when known)."""
    try:
        _, placed = steps.split_nodes(hostnames, {name: svc.nodes for name, svc in services.items()})
    except ValueError as e:
        raise ServiceFailed(f"{e}; give the job more nodes (hydra.launcher.nodes)") from None
    for name, nodes in placed.items():
        shared = sorted(set(nodes) & set(trainer_nodes or []))
        if shared:
            raise ServiceFailed(f"the trainers run on {','.join(shared)}, which services.{name} takes: keep their "
                                "step to the first nodes (hydra.launcher.srun_args --nodes=K --ntasks=N --relative=0)")
    return placed


def _allocation(services: Mapping[str, ServiceConfig]) -> tuple[dict[str, list[str] | None], dict[str, int | None]]:
    """Where each service runs, its nodes in a Slurm job (None: this machine, outside one), and the CPUs the job
    holds on each of them (the fewest, over several)."""
    if "SLURM_JOB_ID" not in os.environ:
        return dict.fromkeys(services), dict.fromkeys(services)
    hosts = slurm_client.hostnames(os.environ["SLURM_JOB_NODELIST"])
    step = os.environ.get("SLURM_STEP_NODELIST")
    placed = placement(services, hosts, slurm_client.hostnames(step) if step else None)
    try:
        cpus = dict(zip(hosts, steps.node_cpus(os.environ.get("SLURM_JOB_CPUS_PER_NODE", "")), strict=True))
    except ValueError as e:
        raise ServiceFailed(f"the job's CPUs per node are unknown: {e}") from None
    return placed, {name: min(cpus[n] for n in nodes) for name, nodes in placed.items()}


def start_services(cfg: DictConfig, grpo_kwargs: dict[str, Any], run_dir: Path, model: str, main: bool,
                   beat: Callable[[], None] = lambda: None, record: Record = _unrecorded) -> Services:
    """Start the run's services (rank 0), wait until each is healthy, and give every rank the token and addresses:
    the keys of `cfg` and, for `training.*` keys, `grpo_kwargs` (GRPOConfig's arguments, built already). Each
    service's state goes to `record` as it changes: starting, healthy, failed (with its cause), stopped."""
    services = service_configs(cfg.get("services"))
    if not services:
        return Services([])
    placed, node_cpus = _allocation(services)
    urls = {name: address(nodes[0] if nodes else LOCAL_HOST, svc) for (name, svc), nodes in
            zip(services.items(), placed.values(), strict=True)}
    running: list[Running] = []
    token = secrets.token_urlsafe(32) if main else None
    if main:
        os.environ[SERVICE_TOKEN_ENV] = token  # the services inherit it; never a file, a log line or the config

    def ready() -> bool:
        """Rank 0, once a round: start the services (the first time), then check each until it is healthy."""
        if not running:
            for name, svc in services.items():
                running.append(_start(name, svc, placed[name], node_cpus[name], model, run_dir, urls[name]))
                record(name, {"state": "starting", "nodes": placed[name] or ["this machine"], "url": urls[name],
                              "log": RunPaths(run_dir).relative(running[-1].log), "started": now_iso()})
        healthy = []
        for r in running:  # each one checked: any may have failed
            was = r.healthy
            try:
                healthy.append(_healthy(r, model, token))
            except ServiceFailed as e:
                record(r.name, {"state": "failed", "reason": str(e), "ended": now_iso()})
                raise
            if r.healthy and not was:
                record(r.name, {"state": "healthy", "healthy_at": now_iso()})
        return all(healthy)

    try:
        os.environ[SERVICE_TOKEN_ENV] = _wait_together(ready if main else None, token, beat)
    except BaseException:
        Services(running, record).stop()
        raise
    inject(cfg, grpo_kwargs, {key: urls[name] for name, svc in services.items() for key in svc.address_keys})
    return Services(running, record)


def record_on_attempt(manifest: Manifest) -> Record:
    """`record` into the run's manifest: the current attempt's `services`, saved at each change."""
    def record(name: str, fields: dict[str, Any]) -> None:
        manifest.last_attempt.setdefault("services", {}).setdefault(name, {}).update(fields)
        manifest.save()

    return record


def _wait_together(ready: Callable[[], bool] | None, token: str | None, beat: Callable[[], None]) -> str:
    """The token, once rank 0's services are healthy. Rank 0 (`ready`) tells every rank how they stand once a round:
    still waiting, the token, or the one line of a failure, which every rank then raises. The other ranks wait in
    these short rounds, never in one collective as long as the services' start: a vLLM server may take longer than
    the process group's timeout (10 minutes for NCCL by default)."""
    while True:
        news = None
        if ready is not None:
            try:
                news = ("ready", token) if ready() else ("waiting", None)
            except ServiceFailed as e:
                news = ("failed", str(e))
        state, value = _from_rank_0(news)
        if state == "failed":
            raise ServiceFailed(value)
        if state == "ready":
            return value
        beat()  # waiting for a service is progress: the watchdog must not end the job for it
        time.sleep(_POLL_S)


def _from_rank_0(news: tuple[str, str | None] | None) -> tuple[str, str | None]:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return news
    from accelerate.utils import broadcast_object_list

    box = [news]
    broadcast_object_list(box, from_process=0)
    return box[0]


def _start(name: str, svc: ServiceConfig, nodes: list[str] | None, node_cpus: int | None, model: str, run_dir: Path,
           url: str) -> Running:
    line = service_line(name, svc, nodes, model, run_dir, node_cpus)
    log = RunPaths(run_dir).service_log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"== {now_iso()} {steps.shown(line)}\n")
        out.flush()
        try:
            process = subprocess.Popen(line, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       env=steps.service_env(os.environ, srun=nodes is not None))
        except OSError as e:
            raise ServiceFailed(f"service {name} could not be started: {e.strerror or e} ({line[0]}; log: {log})"
                                ) from None
    where = f"on {','.join(nodes)}" if nodes else "on this machine"
    logger.info(f"service {name}: started {where} for {url}; log {log}")
    return Running(name, svc, url, log, process, time.monotonic(), os.environ["SLURM_JOB_ID"] if nodes else None)


def _healthy(r: Running, model: str, token: str) -> bool:
    """Whether the service is healthy, checking it once if it was not; ServiceFailed, in one line with the cause and
    the log's path, once it exited, refused the run's token, or was not healthy within its startup_timeout_s."""
    if r.healthy:
        return True
    code = r.process.poll()
    if code is not None:
        raise ServiceFailed(f"service {r.name} exited with code {code} before it was healthy: {last_line(r.log)} "
                            f"(log: {r.log})")
    why = _check(r, model, token)
    # The answer came from the process the job started only if that still runs (else the next round says it exited).
    if why is None and r.process.poll() is None:
        r.healthy = True
        logger.info(f"service {r.name} is healthy at {r.url}")
        return True
    r.why = why or r.why
    if time.monotonic() - r.started >= r.svc.startup_timeout_s:
        raise ServiceFailed(f"service {r.name} was not healthy at {r.url}{r.svc.health_path} within "
                            f"{r.svc.startup_timeout_s:g} s ({r.why}); its log ends: {last_line(r.log)} (log: {r.log})")
    return False


def _check(r: Running, model: str, token: str) -> str | None:
    """One health check: None when the service answers as this attempt's service (its `health_check`), else why not;
    ServiceFailed when it refuses the run's token."""
    svc, nonce = r.svc, secrets.token_hex(16)
    try:
        status, body = _get(r.url + svc.health_path + (f"?nonce={nonce}" if svc.health_check == "token" else ""),
                            token)
        if status == 200 and svc.health_check == "model":
            status, body = _get(r.url + _MODELS_PATH, token)
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise ServiceFailed(f"service {r.name} refused the run's token at {r.url} (HTTP {e.code}) (log: {r.log})"
                                ) from None
        return f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return str(getattr(e, "reason", None) or e)
    if status != 200:
        return f"HTTP {status}"
    if svc.health_check == "token" and _json(body).get("proof") != health_proof(token, nonce):
        return "a 200 without proof of the run's token: not this attempt's server"
    if svc.health_check == "model":
        served = [m.get("id") for m in _json(body).get("data") or [] if isinstance(m, dict)]
        if model not in served:
            return f"the server on the port serves {', '.join(map(str, served)) or 'no model'}, not {model}"
    return None


def _get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with NO_PROXY.open(request, timeout=_CHECK_TIMEOUT_S) as response:
        return response.status, response.read()


def _json(body: bytes) -> dict:
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def last_line(log: Path, most: int = 300) -> str:
    """The service's last non-empty line in its log, secrets redacted: usually what went wrong. srun's own report of
    the step's end ("srun: error: ... Exited with exit code 3") says less, and may come after it."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    lines = [ln for ln in lines if not ln.startswith("srun: ")] or lines
    text = redact(lines[-1]) if lines else "(empty log)"
    return text if len(text) <= most else text[:most - 3] + "..."


def inject(cfg: DictConfig, grpo_kwargs: dict[str, Any], addresses: Mapping[str, str]) -> None:
    """Each service's address into the config keys that receive it; `training.<field>` into GRPOConfig's arguments
    too, which validation built before the services ran."""
    for key, url in addresses.items():
        section, _, field = key.partition(".")
        if section == "training":
            grpo_kwargs[field] = url
        with open_dict(cfg):
            OmegaConf.update(cfg, key, url, force_add=True)
