"""What `rlvr-vocab doctor` checks: can this machine run an experiment, before anything is submitted?

Every check gives `Check` lines (ok / warn / FAIL, what, what was found, how to fix). Slurm is asked through
rlvr_vocab.slurm_client where it has the call; the questions it has no function for (partitions, associations, QOS,
accounting) are asked here with its conventions: short timeouts, and a missing or silent command is one line.
"""

import getpass
import importlib.metadata
import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlvr_vocab import slurm_client
from rlvr_vocab.errors import ConfigError
from rlvr_vocab.slurm_client import SlurmError

OK, WARN, FAIL = "ok", "warn", "FAIL"
LOCKED_PACKAGES = ("torch", "transformers", "trl", "vllm")
LOCK_FILE = Path(__file__).resolve().parent.parent / "uv.lock"
_TIMEOUT_S = 30
_GB = 1024**3
_MB = 1024**2
# Shapes of the embedded models (rlvr_vocab.demo): vocabulary rows and MLP width per hidden size.
_EMBEDDED = {"tiny_qwen2": {"vocab_size": 300, "mlp": 4}, "tiny_qwen3": {"vocab_size": 151936, "mlp": 3}}


@dataclass(frozen=True)
class Check:
    status: str
    what: str
    found: str
    fix: str = ""


# ------------------------------------------------------------------------------------------------ the experiment


def named_launcher(overrides: list[str]) -> str | None:
    """The launcher profile the overrides name (`hydra/launcher=...`), if they do."""
    return next((o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("hydra/launcher=")), None)


def compose_experiment(overrides: list[str]) -> tuple[DictConfig, int]:
    """The experiment's config (a sweep's first point) with Hydra's settings, composed as a submission composes it,
    and the number of runs the overrides and `+sweep=` grid make. `hydra.launcher` is the profile the overrides name
    (`hydra/launcher=...`), else the experiment's own: the profile of its jobs, its eval.launcher (the demo's
    slurm_cpu, as `python -m rlvr_vocab.demo` submits it; a GPU experiment's slurm)."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rlvr_vocab import CONF_DIR
    from rlvr_vocab.config import register_configs
    from rlvr_vocab.launch import register_hydra_plugins

    register_configs()
    register_hydra_plugins()
    parser = OverridesParser.create()

    def points(arguments: list[str]) -> list[list[str]]:
        return BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)[0]

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        if named_launcher(overrides) is None:
            own = compose("config", overrides=points(overrides)[0]).eval.launcher
            overrides = [f"hydra/launcher={own}", *overrides]
        first = points(overrides)
        cfg = compose("config", overrides=first[0], return_hydra_config=True)
        grid = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.get("params") or {}).items()]
        if not grid:
            return cfg, len(first)
        # The grid file's values first, then the command line's, as the sweeper orders them.
        every = points([*grid, *overrides])
        return compose("config", overrides=every[0], return_hydra_config=True), len(every)


def launcher_params(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def on_slurm(params: dict[str, Any]) -> bool:
    return "Slurm" in str(params.get("_target_"))


def requested_gpus(params: dict[str, Any]) -> int:
    gpus = params.get("gpus_per_node")
    return gpus if on_slurm(params) and isinstance(gpus, int) and gpus > 0 else 0


def needs_vllm(cfg: DictConfig) -> bool:
    return bool(cfg.training.get("use_vllm")) or (bool(cfg.eval.chain) and cfg.eval.backend == "vllm")


def launcher_check(cfg: DictConfig, overrides: list[str]) -> Check:
    """Which launcher profile the other checks vetted, and why that one."""
    from rlvr_vocab import CONF_DIR

    profile = cfg.hydra.runtime.choices["hydra/launcher"]
    if named_launcher(overrides) is not None:
        return Check(OK, "launcher profile", f"{profile}, as named (hydra/launcher={profile})")
    profiles = ", ".join(sorted(p.stem for p in (CONF_DIR / "hydra" / "launcher").glob("*.yaml")))
    return Check(OK, "launcher profile", f"{profile}: none named, so the experiment's own (its eval.launcher)",
                 f"to check another: hydra/launcher=<one of {profiles}>")


def run_checks(cfg: DictConfig, n_runs: int, overrides: list[str]) -> list[Check]:
    params = launcher_params(cfg)
    checks = [launcher_check(cfg, overrides)]
    checks += slurm_checks(params, n_runs)
    checks += gpu_checks(cfg, params)
    checks += version_checks(cfg)
    checks += hub_checks(cfg, overrides)
    checks.append(wandb_check(cfg))
    checks.append(disk_check(cfg, params, n_runs))
    checks.append(root_check(Path(cfg.experiments_root)))
    return checks


# ------------------------------------------------------------------------------------------------ Slurm


def _run(args: list[str]) -> str:
    """stdout of a Slurm command, or SlurmError in one line (slurm_client's conventions)."""
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=_TIMEOUT_S)
    except FileNotFoundError:
        raise SlurmError(f"{args[0]} not found (no Slurm client on this machine)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{args[0]} did not answer within {_TIMEOUT_S} s") from None
    if out.returncode:
        said = " / ".join(ln.strip() for ln in (out.stderr or out.stdout).splitlines() if ln.strip())
        raise SlurmError(f"{' '.join(args[:2])} failed: {said or f'exit code {out.returncode}'}")
    return out.stdout


def slurm_minutes(text: str) -> float | None:
    """Slurm's time format (`UNLIMITED`, `MM`, `MM:SS`, `HH:MM:SS`, `D-HH[:MM[:SS]]`) in minutes; None: unlimited."""
    text = text.strip()
    if not text or text.upper() in ("UNLIMITED", "INFINITE", "NONE", "N/A"):
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:
        hours, minutes, seconds = 0, *parts
    else:
        hours, minutes, seconds = 0, parts[0], 0
    return int(days or 0) * 1440 + hours * 60 + minutes + seconds / 60


def partitions() -> dict[str, dict[str, str]]:
    """`scontrol show partition`: name -> fields."""
    found = {}
    for line in _run(["scontrol", "show", "partition", "-o"]).splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "PartitionName" in fields:
            found[fields["PartitionName"]] = fields
    return found


def associations(user: str) -> list[dict[str, str]]:
    """The user's associations (account, partition, QOS list, default QOS)."""
    out = _run(
        ["sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}", "format=Account,Partition,QOS,DefaultQOS"]
    )
    rows = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) >= 4:
            rows.append({"account": parts[0], "partition": parts[1], "qos": parts[2], "default_qos": parts[3]})
    return rows


def default_account(user: str) -> str | None:
    out = _run(["sacctmgr", "-n", "-P", "show", "user", user, "format=DefaultAccount"]).strip()
    return out.splitlines()[0] if out else None


def qos_limits(name: str) -> tuple[float | None, int | None] | None:
    """(MaxWall in minutes, MaxSubmitJobsPerUser) of a QOS, None for no limit; None if it does not exist."""
    out = _run(["sacctmgr", "-n", "-P", "show", "qos", "where", f"name={name}", "format=Name,MaxWall,MaxSubmitPU"])
    for line in out.splitlines():
        qos, wall, submit = (line.split("|") + ["", ""])[:3]
        if qos == name:
            return slurm_minutes(wall), int(submit) if submit.isdigit() else None
    return None


def accounting_problem() -> str | None:
    """None when Slurm's accounting answers (sacct has the history `status` reads), else why not."""
    storage = slurm_client.config_value("AccountingStorageType") or ""
    if storage.endswith("/none") or not storage:
        return f"accounting is off (AccountingStorageType={storage or 'unset'})"
    try:
        _run(["sacct", "-n", "-X", "-P", "-o", "JobID", "-j", "1"])
    except SlurmError as e:
        return str(e)
    return None


def _limits_line(timeout_min: float | None, limit: float | None, of: str) -> tuple[str, str]:
    if limit is None:
        return OK, f"{of}: no time limit"
    if not timeout_min:
        return OK, f"{of}: time limit {limit:g} min (the profile sets no timeout_min)"
    if timeout_min > limit:
        return FAIL, f"{of}: time limit {limit:g} min, the profile asks timeout_min={timeout_min:g}"
    return OK, f"{of}: time limit {limit:g} min >= timeout_min={timeout_min:g}"


def slurm_checks(params: dict[str, Any], n_runs: int) -> list[Check]:
    if not on_slurm(params):
        return [Check(OK, "Slurm", "not used (hydra/launcher=local runs here)")]
    down = slurm_client.controller_down()
    if down:
        from rlvr_vocab.resources import scripts_dir

        script = scripts_dir() / "local_cluster.sh"
        return [
            Check(
                FAIL,
                "Slurm controller",
                down,
                f"start slurmctld (the local cluster: bash {script} start; a "
                "cluster: ask its admins), or hydra/launcher=local",
            )
        ]
    checks = [Check(OK, "Slurm controller", "slurmctld answers (scontrol ping)")]
    nodes = slurm_client.cluster_problem()
    checks.append(
        Check(WARN, "Slurm nodes", nodes, "jobs wait until a node is up (sinfo -R says why)")
        if nodes
        else Check(OK, "Slurm nodes", "a node is up")
    )
    accounting = accounting_problem()
    checks.append(
        Check(
            WARN,
            "accounting",
            accounting,
            "rlvr-vocab status then sees only jobs still queued; ended ones show UNKNOWN until slurmdbd answers",
        )
        if accounting
        else Check(OK, "accounting", "on (sacct answers)")
    )
    checks += _partition_checks(params)
    if not accounting:
        checks += _association_checks(params, n_runs)
    checks.append(_array_check(n_runs))
    checks.append(_test_only_check(params, n_runs))
    return checks


def _partition_checks(params: dict[str, Any]) -> list[Check]:
    try:
        known = partitions()
    except SlurmError as e:
        return [Check(WARN, "partition", f"cannot read partitions: {e}")]
    wanted = params.get("partition")
    name = wanted or next((n for n, f in known.items() if f.get("Default") == "YES"), None)
    fix = f"hydra.launcher.partition=<one of {', '.join(known)}>"
    if name not in known:
        what = f"'{wanted}' does not exist" if wanted else "no default partition: the profile must name one"
        return [Check(FAIL, "partition", f"{what} (partitions: {', '.join(known)})", fix)]
    fields = known[name]
    label = f"{name}{'' if wanted else ' (default)'}"
    state = fields.get("State", "UP")
    if state != "UP":
        return [Check(FAIL, "partition", f"{label} is {state}: jobs would not start", fix)]
    account = params.get("account")
    allowed = fields.get("AllowAccounts", "ALL")
    if account and allowed != "ALL" and account not in allowed.split(","):
        return [
            Check(
                FAIL,
                "partition",
                f"{label} does not allow account {account} (AllowAccounts={allowed})",
                "another hydra.launcher.account or partition",
            )
        ]
    status, found = _limits_line(params.get("timeout_min"), slurm_minutes(fields.get("MaxTime", "UNLIMITED")), label)
    checks = [
        Check(
            status,
            "partition",
            found,
            "lower hydra.launcher.timeout_min (runs requeue and resume at the "
            "limit) or pick a partition with a longer one"
            if status == FAIL
            else "",
        )
    ]
    gpus = requested_gpus(params)
    if not gpus:
        checks.append(Check(OK, "GPUs per node", "none requested (CPU jobs)"))
        return checks
    most = slurm_client.most_gpus_per_node(name)
    if most is None:
        checks.append(Check(WARN, "GPUs per node", f"cannot read {name}'s GPUs from sinfo"))
    elif most < gpus:
        checks.append(
            Check(
                FAIL,
                "GPUs per node",
                f"the profile asks {gpus}, {label}'s nodes have at most {most}",
                "a GPU partition (hydra.launcher.partition=...), fewer gpus_per_node, or "
                "hydra/launcher=slurm_cpu for CPU jobs",
            )
        )
    else:
        checks.append(Check(OK, "GPUs per node", f"{gpus} requested, {label}'s nodes have up to {most}"))
    return checks


def _association_checks(params: dict[str, Any], n_runs: int) -> list[Check]:
    user = getpass.getuser()
    try:
        rows = associations(user)
        account = params.get("account") or default_account(user)
    except SlurmError as e:
        return [Check(WARN, "account", f"cannot ask sacctmgr: {e}")]
    mine = sorted({r["account"] for r in rows})
    if not rows:
        return [
            Check(
                FAIL,
                "account",
                f"user {user} has no Slurm association: the cluster refuses their jobs",
                "ask the cluster's admins to add you (sacctmgr add user)",
            )
        ]
    if account not in mine:
        return [
            Check(
                FAIL,
                "account",
                f"user {user} has no association with account {account} (theirs: {', '.join(mine)})",
                f"hydra.launcher.account=<one of {', '.join(mine)}>",
            )
        ]
    how = "" if params.get("account") else " (the user's default)"
    checks = [Check(OK, "account", f"{account}{how}")]
    rows = [r for r in rows if r["account"] == account]
    # Without a QOS in the profile or the association, Slurm gives the cluster's default, `normal` unless renamed.
    qos = params.get("qos") or next((r["default_qos"] for r in rows if r["default_qos"]), None) or "normal"
    allowed = sorted({q for r in rows for q in r["qos"].split(",") if q})
    try:
        limits = qos_limits(qos)
    except SlurmError as e:
        checks.append(Check(WARN, "QOS", f"cannot ask sacctmgr about {qos}: {e}"))
        return checks
    if limits is None and not params.get("qos"):
        checks.append(Check(OK, "QOS", "the association's default (no limits read)"))
        return checks
    if limits is None or (params.get("qos") and allowed and qos not in allowed):
        what = "does not exist" if limits is None else f"is not allowed for account {account}"
        checks.append(
            Check(
                FAIL,
                "QOS",
                f"{qos} {what} (the account's: {', '.join(allowed) or 'none listed'})",
                f"hydra.launcher.qos=<one of {', '.join(allowed)}>" if allowed else "ask the admins",
            )
        )
        return checks
    wall, max_submit = limits
    label = f"{qos}{'' if params.get('qos') else ' (default)'}"
    status, found = _limits_line(params.get("timeout_min"), wall, label)
    checks.append(
        Check(status, "QOS", found, "lower hydra.launcher.timeout_min or use another QOS" if status == FAIL else "")
    )
    # Every array task counts as one job against the per-user limit: a larger sweep is refused at sbatch.
    if max_submit is not None and n_runs > max_submit:
        checks.append(
            Check(
                FAIL,
                "QOS",
                f"{label} takes at most {max_submit} queued jobs per user, the sweep has {n_runs} runs",
                "submit the grid in parts, or another QOS",
            )
        )
    return checks


def _array_check(n_runs: int) -> Check:
    limit = slurm_client.max_array_size()
    if limit is None:
        return Check(WARN, "job array", "cannot read MaxArraySize (scontrol show config)")
    runs = f"{n_runs} run{'s' if n_runs != 1 else ''}"
    arrays = -(-n_runs // limit)
    # The launcher submits a sweep larger than MaxArraySize as several arrays.
    return Check(OK, "job array", f"{runs}, {'one array' if arrays == 1 else f'{arrays} arrays'}; MaxArraySize {limit}")


def _test_only_check(params: dict[str, Any], n_runs: int) -> Check:
    """The launcher's own pre-flight: its values type-checked, then `sbatch --test-only` of the script it submits."""
    from hydra.utils import instantiate

    with tempfile.TemporaryDirectory() as folder:
        # submitit's job folder: a throwaway, doctor writes nothing under the experiments root.
        launcher = instantiate({**params, "submitit_folder": f"{folder}/%j"})
        try:
            launcher.check_settings()
            launcher.preflight(n_runs)
        except ConfigError as e:
            return Check(FAIL, "sbatch --test-only", f"{e.where}: {e.problem}", e.fix)
    return Check(OK, "sbatch --test-only", "Slurm would accept the job with this profile's resources")


# ------------------------------------------------------------------------------------------------ this node


def _nvidia_smi() -> list[str]:
    """`name, driver` of each GPU nvidia-smi sees (none without the tool or a driver)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return []
    return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else []


def gpu_checks(cfg: DictConfig, params: dict[str, Any]) -> list[Check]:
    try:
        import torch as th
    except ImportError as e:
        return [Check(FAIL, "torch", f"cannot be imported ({e})", "uv sync (or pip install -e .)")]
    gpus, here = requested_gpus(params), not on_slurm(params)
    build = f"torch {th.__version__} ({f'CUDA {th.version.cuda}' if th.version.cuda else 'CPU build'})"
    if th.cuda.is_available():
        names = sorted({th.cuda.get_device_name(i) for i in range(th.cuda.device_count())})
        bf16 = th.cuda.is_bf16_supported()
        found = f"{th.cuda.device_count()} x {', '.join(names)}; {build}; bf16 {'yes' if bf16 else 'no'}"
        if cfg.precision == "bf16" and not bf16:
            return [Check(FAIL, "GPU (this node)", found, "precision=auto (or fp16) on these GPUs")]
        return [Check(OK, "GPU (this node)", found)]
    seen = _nvidia_smi()
    if seen:
        return [
            Check(
                FAIL,
                "GPU (this node)",
                f"nvidia-smi sees {len(seen)} ({seen[0]}) but {build} cannot use them",
                "a torch build for this driver's CUDA (newer driver, or torch from an older CUDA index)",
            )
        ]
    if gpus and th.version.cuda is None:
        return [
            Check(
                FAIL,
                "GPU (this node)",
                f"{build}, and the jobs ask {gpus} GPU(s) per node: they run this environment",
                "install the CUDA build where jobs run: uv sync (PyPI's torch is the CUDA build "
                "on Linux), or pip install torch without a CPU index",
            )
        ]
    if gpus:
        return [
            Check(
                OK,
                "GPU (this node)",
                f"none here (a login node?); jobs get {gpus} per node from Slurm; {build}",
                "to check a compute node: srun --gpus=1 rlvr-vocab doctor <the same overrides>",
            )
        ]
    if here and (cfg.precision in ("bf16", "fp16") or needs_vllm(cfg)):
        what = "vLLM" if needs_vllm(cfg) else f"precision={cfg.precision}"
        return [
            Check(
                FAIL,
                "GPU (this node)",
                f"none visible, and {what} needs one (hydra/launcher=local runs here)",
                "precision=auto, or a GPU machine",
            )
        ]
    return [Check(OK, "GPU (this node)", f"none; {build}: training runs on CPU in fp32")]


def locked_versions(lock: Path = LOCK_FILE) -> dict[str, set[str]] | None:
    """Package name -> the versions uv.lock pins (a package may be pinned per platform); None without a lock."""
    import tomllib

    try:
        data = tomllib.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    versions: dict[str, set[str]] = {}
    for package in data.get("package", []):
        versions.setdefault(package["name"], set()).add(str(package.get("version")))
    return versions


def version_checks(cfg: DictConfig, lock: Path = LOCK_FILE) -> list[Check]:
    locked = locked_versions(lock)
    checks = []
    for name in LOCKED_PACKAGES:
        pins = sorted((locked or {}).get(name, ()))
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is None:
            if name == "vllm" and not needs_vllm(cfg):
                checks.append(Check(OK, name, "not installed, not used (use_vllm=false, eval.backend=transformers)"))
            else:
                extra = " --extra gpu" if name == "vllm" else ""
                checks.append(
                    Check(
                        FAIL,
                        name,
                        "not installed",
                        f"uv sync{extra} (or pip install -e '.[gpu]')" if extra else "uv sync (or pip install -e .)",
                    )
                )
        elif locked is None:
            checks.append(Check(OK, name, f"{installed} (not compared: no uv.lock beside the package, a wheel)"))
        elif not pins or installed.split("+")[0] in pins:
            checks.append(Check(OK, name, f"{installed}" + (f" (uv.lock: {', '.join(pins)})" if pins else "")))
        else:
            checks.append(
                Check(
                    WARN,
                    name,
                    f"{installed}, uv.lock pins {', '.join(pins)}",
                    f"uv sync (or pip install {name}=={pins[-1]}): jobs then run what the group locked",
                )
            )
    return checks


def hub_checks(cfg: DictConfig, overrides: list[str]) -> list[Check]:
    from rlvr_vocab.prefetch import cache_state, hub_repos, offline, prefetch_command

    repos = hub_repos(cfg, benchmarks=bool(cfg.eval.chain))
    if not repos:
        return [Check(OK, "hub files", "none needed (model and data built locally or local paths)")]
    checks = []
    for repo in repos:
        state = cache_state(repo, cfg.experiments_root)
        if state.problem:
            # Without HF_HUB_OFFLINE the job would download it, on a compute node that may have no internet.
            status = FAIL if offline() else WARN
            checks.append(
                Check(
                    status,
                    repo.where,
                    f"{repo.repo_id} {state.problem}",
                    f"on a login node: {prefetch_command(overrides)}",
                )
            )
        else:
            checks.append(Check(OK, repo.where, f"{repo.repo_id}: {state.found}"))
    return checks


def wandb_check(cfg: DictConfig) -> Check:
    from rlvr_vocab.validate import wandb_credentials

    log = cfg.logging
    if log.backend != "wandb":
        return Check(OK, "W&B", f"not used (logging backend {log.backend})")
    mode = os.environ.get("WANDB_MODE") or log.mode
    source = "WANDB_MODE" if os.environ.get("WANDB_MODE") else "logging.mode"
    if mode == "online":
        credentials = wandb_credentials()
        if credentials is None:
            return Check(
                FAIL,
                "W&B",
                f"online ({source}) without credentials (no WANDB_API_KEY, no netrc entry)",
                "export WANDB_API_KEY (or wandb login), or WANDB_MODE=offline and wandb sync later",
            )
        return Check(
            OK,
            "W&B",
            f"online ({source}), credentials from {credentials}",
            "compute nodes without internet: WANDB_MODE=offline, then wandb sync <run dir>/wandb",
        )
    if mode in ("offline", "disabled"):
        return Check(
            OK,
            "W&B",
            f"{mode} ({source})" + (": wandb sync <run dir>/wandb from a login node" if mode == "offline" else ""),
        )
    return Check(FAIL, "W&B", f"unknown mode '{mode}' ({source})", "online, offline or disabled")


# ------------------------------------------------------------------------------------------------ disk


def safetensors_parameters(directory: Path) -> int | None:
    """Parameters in a model directory's safetensors files (from their headers), or None without them."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with path.open("rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total


def config_parameters(config: dict[str, Any]) -> int | None:
    """A decoder-only transformer's parameters from its config.json (attention, gated MLP, embeddings)."""
    c = config.get("text_config", config)
    try:
        hidden, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    except KeyError:
        return None
    heads = c.get("num_attention_heads") or max(1, hidden // 64)
    kv_heads = c.get("num_key_value_heads") or heads
    head_dim = c.get("head_dim") or hidden // heads
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    mlp = 3 * hidden * c.get("intermediate_size", 4 * hidden)
    return layers * (attention + mlp) + vocab * hidden * (1 if c.get("tie_word_embeddings", True) else 2)


def model_shape(cfg: DictConfig) -> tuple[int, int, bool] | None:
    """(parameters, hidden size, tied embeddings) of the experiment's base model, where this machine can tell."""
    from rlvr_vocab.prefetch import model_snapshot, pinned_revision
    from rlvr_vocab.validate import looks_local

    m = cfg.model
    if m.name_or_path is None:
        e = m.embedded
        shape = _EMBEDDED.get(e.kind, _EMBEDDED["tiny_qwen3"])
        config = {
            "hidden_size": e.hidden_size,
            "num_hidden_layers": e.num_layers,
            "vocab_size": shape["vocab_size"],
            "intermediate_size": shape["mlp"] * e.hidden_size,
            "num_attention_heads": max(1, e.hidden_size // 16),
            "tie_word_embeddings": e.tie_embeddings,
        }
        return config_parameters(config), e.hidden_size, e.tie_embeddings
    name = str(m.name_or_path)
    if looks_local(name):
        directory = Path(name).expanduser()
    else:
        revision = (m.model_kwargs or {}).get("revision")
        snapshot = model_snapshot(name, pinned_revision(cfg.experiments_root, name, revision, "model") or revision)
        if snapshot is None:
            return None
        directory = snapshot[1]
    try:
        config = json.loads((directory / "config.json").read_text())
        count = safetensors_parameters(directory) or config_parameters(config)
    except (OSError, ValueError, KeyError):
        return None
    c = config.get("text_config", config)
    return (count, c.get("hidden_size", 0), c.get("tie_word_embeddings", True)) if count else None


@dataclass(frozen=True)
class DiskEstimate:
    parameters: int
    checkpoint: int  # bytes of one checkpoint
    kept: int  # checkpoints on disk at once, at most
    models: int  # bytes of final/, the weights-only milestones and (with a reasoning vocabulary) model/

    @property
    def total(self) -> int:
        return self.checkpoint * self.kept + self.models

    def describe(self) -> str:
        count = f"{self.parameters / 1e9:.2f}B" if self.parameters >= 1e9 else f"{self.parameters / 1e6:.1f}M"
        return (
            f"{count} parameters ({self.kept} checkpoint{'s' if self.kept != 1 else ''} x {size(self.checkpoint)} "
            f"+ {size(self.models)} of weights-only models)"
        )


def size(n_bytes: float) -> str:
    return f"{n_bytes / _GB:.1f} GB" if n_bytes >= _GB else f"{n_bytes / _MB:.1f} MB"


def disk_estimate(cfg: DictConfig, gpu_target: bool) -> DiskEstimate | None:
    """Most bytes one run keeps under its run dir: weights plus AdamW's two moments (in the weights' dtype, as torch
    keeps them) per checkpoint, times the checkpoints kept at once, plus final/ (and model/ with a reasoning
    vocabulary, and the retention's weights-only milestones). With LoRA an upper bound (its checkpoints hold the
    adapter only)."""
    shape = model_shape(cfg)
    if shape is None:
        return None
    parameters, hidden, tied = shape
    rv = cfg.model.reasoning_vocab.size or 0
    parameters += rv * hidden * (1 if tied else 2)
    dtype = str((cfg.model.model_kwargs or {}).get("torch_dtype") or "")
    precision = cfg.precision if cfg.precision != "auto" else "bf16" if gpu_target else "fp32"
    # rlvr_vocab.modeling loads bf16 runs in bf16 and fp16 runs in fp32 (AMP's master weights).
    width = 2 if dtype in ("bfloat16", "float16") or (not dtype and precision == "bf16") else 4
    weights = parameters * width
    t = cfg.training
    checkpoint = weights * (1 if t.get("save_only_model") else 3)
    max_steps, save_steps = t.get("max_steps") or 0, t.get("save_steps") or 500
    saved = max(1, max_steps // save_steps) if max_steps > 0 else None
    limit = t.get("save_total_limit")
    # Rotation removes the oldest only once a newer checkpoint is complete; a chained milestone waits for its eval.
    kept = limit + 1 + int(bool(cfg.eval.chain)) if limit else saved or 1
    kept = min(kept, saved) if saved else kept
    every = cfg.retention.milestone_every_steps
    milestones = max_steps // every if every and max_steps > 0 else 0
    return DiskEstimate(parameters, checkpoint, kept, weights * (1 + milestones + int(bool(rv))))


def _existing(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_check(cfg: DictConfig, params: dict[str, Any], n_runs: int) -> Check:
    root = Path(cfg.experiments_root)
    free = shutil.disk_usage(_existing(root)).free
    gpu_target = bool(requested_gpus(params)) if on_slurm(params) else _cuda_here()
    estimate = disk_estimate(cfg, gpu_target)
    if estimate is None:
        return Check(
            WARN,
            "disk",
            f"{size(free)} free under {root}; the model's size is unknown here (not cached)",
            "rlvr-vocab prefetch first, then doctor again",
        )
    need = estimate.total * n_runs
    runs = f"{n_runs} runs x " if n_runs > 1 else ""
    found = f"~{size(need)} needed ({runs}{estimate.describe()}), {size(free)} free under {root}"
    if need > free:
        return Check(
            FAIL,
            "disk",
            found,
            "free space, lower training.save_total_limit, or point RLVR_EXPERIMENTS_ROOT at a larger file system",
        )
    return Check(OK, "disk", found)


def _cuda_here() -> bool:
    import torch as th

    return th.cuda.is_available()


def root_check(root: Path) -> Check:
    """The experiments root: writable (a file really written) and, for teammates, group-readable."""
    from rlvr_vocab.run.fsio import umask

    existing = _existing(root)
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".rlvr-doctor-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return Check(
            FAIL,
            "experiments root",
            f"cannot write {existing} ({e.strerror})",
            "RLVR_EXPERIMENTS_ROOT=<a writable directory>, or fix its permissions",
        )
    mask = umask()
    where = f"{root}" if existing == root.expanduser().absolute() else f"{root} (created by the first run)"
    if mask & 0o040:
        return Check(
            WARN,
            "experiments root",
            f"writable, but umask {mask:04o}: run files will not be group-readable",
            "umask 002 (or 022) before submitting, so teammates can read the runs",
        )
    mode = existing.stat().st_mode
    if existing == root.expanduser().absolute() and (mode & 0o050) != 0o050:
        return Check(
            WARN,
            "experiments root",
            f"{root} is not group-readable ({oct(mode & 0o777)})",
            f"chmod g+rx {root} (a shared root: chgrp <group> {root} && chmod g+rwxs {root})",
        )
    shared = ", setgid (new dirs keep its group)" if mode & 0o2000 else ""
    return Check(OK, "experiments root", f"{where} writable; umask {mask:04o}: runs group-readable{shared}")
