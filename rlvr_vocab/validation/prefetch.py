"""An experiment's files on the Hugging Face hub: which repos, whether a job could load them offline from this
machine's caches (`rlvr_vocab.model.hub_cache` reads those), and fetching them on a login node (`rlvr-vocab prefetch`),
recording the commit hashes fetched under the experiments root so that jobs load exactly those revisions.
"""

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.model.hub_cache import (
    dataset_prepared,
    datasets_cache,
    hub_cache,
    looks_local,
    model_missing,
    model_snapshot,
    offline,
    pinned_revision,
)
from rlvr_vocab.run.layout import RootPaths

# Formats transformers never loads for a torch model: not worth a login node's download or the shared cache's space.
MODEL_IGNORE = ["*.gguf", "*.onnx", "*.msgpack", "*.h5", "*.ot", "*.tflite", "onnx/*", "original/*"]


@dataclass(frozen=True)
class HubRepo:
    repo_id: str
    kind: str  # "model" or "dataset"
    where: str  # the config key that names it
    revision: str | None = None  # as the config asks (None: main)
    config_name: str | None = None  # a data set's config, load_dataset's `name`

    @property
    def label(self) -> str:
        return f"{self.repo_id} ({self.kind}, {self.where})"


@dataclass(frozen=True)
class CacheState:
    repo: HubRepo
    found: str | None  # what this machine holds, e.g. "revision 0123abcd4567 (pinned by prefetch)"
    problem: str | None  # why a job could not load it offline


# ------------------------------------------------------------------------------------------------ what and where


def hub_repos(cfg: DictConfig, benchmarks: bool = True) -> list[HubRepo]:
    """The hub repos a run of `cfg` loads: its model, its data set and (`benchmarks`) its benchmark suite's data
    sets, except what is embedded or a local path."""
    repos = []
    if cfg.model.name_or_path is not None and not looks_local(str(cfg.model.name_or_path)):
        revision = (cfg.model.model_kwargs or {}).get("revision")
        repos.append(HubRepo(str(cfg.model.name_or_path), "model", "model.name_or_path", revision))
    if cfg.dataset.path is not None and not looks_local(str(cfg.dataset.path)):
        repos.append(HubRepo(str(cfg.dataset.path), "dataset", "dataset.path", None, cfg.dataset.config_name))
    if benchmarks:
        from rlvr_vocab.eval.benchmarks import load_benchmark_config

        local = set(cfg.eval.benchmark_paths or {})
        for name in [n for n in cfg.eval.benchmarks or [] if n not in local]:
            bench = load_benchmark_config(name)
            if bench.path is not None and not looks_local(bench.path):
                repos.append(HubRepo(bench.path, "dataset", f"eval.benchmarks.{name}", None, bench.config_name))
    unique = {}
    for repo in repos:
        unique.setdefault((repo.repo_id, repo.kind, repo.revision, repo.config_name), repo)
    return list(unique.values())


# ------------------------------------------------------------------------------------------------ the caches


def cache_state(repo: HubRepo, root: str | Path) -> CacheState:
    """Whether a job could load `repo` offline from this machine's caches (at the revision prefetch pinned)."""
    if repo.kind == "dataset":
        prepared = dataset_prepared(repo.repo_id, repo.config_name)
        if prepared is None:
            return CacheState(repo, None, f"is not prepared in the datasets cache ({datasets_cache()})")
        return CacheState(repo, f"prepared ({prepared.parent.parent.name}, {prepared})", None)
    pinned = pinned_revision(root, repo.repo_id, repo.revision, kind="model")
    snapshot = model_snapshot(repo.repo_id, pinned or repo.revision)
    if snapshot is None:
        at = f" at the revision prefetch pinned ({pinned[:12]})" if pinned else ""
        return CacheState(repo, None, f"is not in the Hugging Face cache ({hub_cache()}){at}")
    sha, path = snapshot
    missing = model_missing(path)
    if missing:
        return CacheState(repo, None, f"is incomplete in the Hugging Face cache: {missing} ({path})")
    return CacheState(repo, f"revision {sha[:12]}{' (pinned by prefetch)' if pinned else ''}", None)


def prefetch_command(overrides: list[str] | None) -> str:
    from rlvr_vocab.core.secrets import redact_override

    return " ".join(["rlvr-vocab prefetch", *(redact_override(o) for o in overrides or [])])


def offline_problem(cfg: DictConfig, overrides: list[str] | None = None) -> str | None:
    """One line on the first hub file a job of `cfg` could not load offline from this machine's caches, or None.

    For validation before a submission whose jobs run with HF_HUB_OFFLINE=1: the caches must be the ones the
    compute nodes share (HF_HOME on a shared file system). Benchmarks count when evaluation is chained."""
    gap = first_gap(cfg, benchmarks=bool(cfg.eval.chain))
    if gap is None:
        return None
    repo, problem = gap
    return (
        f"{repo.label} {problem}, and jobs on compute nodes load it offline; on a login node (with "
        f"internet) run: {prefetch_command(overrides)}"
    )


def first_gap(cfg: DictConfig, benchmarks: bool) -> tuple[HubRepo, str] | None:
    """The first hub repo of `cfg` a job could not load offline from this machine's caches, and why."""
    for repo in hub_repos(cfg, benchmarks=benchmarks):
        problem = cache_state(repo, cfg.experiments_root).problem
        if problem:
            return repo, problem
    return None


# ------------------------------------------------------------------------------------------------ the record


def write_record(root: str | Path, exp_name: str, overrides: list[str], fetched: list[dict[str, Any]]) -> Path:
    """Merge `fetched` into the experiment's record (earlier entries for other repos stay) and write it."""
    from rlvr_vocab.core.secrets import redact_override
    from rlvr_vocab.run.fsio import atomic_write_text
    from rlvr_vocab.run.manifest import now_iso

    path = RootPaths(root).prefetch_record(exp_name)
    path.parent.mkdir(parents=True, exist_ok=True)  # the umask's mode, like every file under the root
    try:
        earlier = json.loads(path.read_text()).get("repos") or []
    except (OSError, ValueError, AttributeError):
        earlier = []
    keys = {(r["repo_id"], r["kind"], r["requested"], r.get("config_name")) for r in fetched}
    kept = [
        r for r in earlier if (r.get("repo_id"), r.get("kind"), r.get("requested"), r.get("config_name")) not in keys
    ]
    record = {
        "experiment": exp_name,
        "overrides": [redact_override(o) for o in overrides],
        "host": socket.gethostname(),
        "time": now_iso(),
        "repos": kept + fetched,
    }
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return path


# ------------------------------------------------------------------------------------------------ fetching


def _one_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return " / ".join(lines)[:400] or type(e).__name__


def fetch(repo: HubRepo) -> dict[str, Any]:
    """Download `repo` into the hub cache (a data set also prepared by datasets); returns its record entry.

    Offline (HF_HUB_OFFLINE=1), or where the hub does not answer, huggingface_hub resolves the revision from the
    cache: what is cached is recorded, what is not is refused."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    from rlvr_vocab.run.manifest import now_iso

    fix = (
        "run it on a machine that reaches huggingface.co (a login node), without HF_HUB_OFFLINE=1; gated repos "
        "need HF_TOKEN or `hf auth login`"
    )
    try:
        path = Path(
            snapshot_download(
                repo.repo_id,
                repo_type=repo.kind,
                revision=repo.revision,
                cache_dir=hub_cache(),
                ignore_patterns=MODEL_IGNORE if repo.kind == "model" else None,
            )
        )
    except (OSError, HfHubHTTPError, ValueError) as e:
        raise ConfigError(repo.label, f"cannot be fetched: {_one_line(e)}", fix) from None
    if repo.kind == "model":
        missing = model_missing(path)
        if missing:
            raise ConfigError(repo.label, f"is incomplete in the cache ({missing}) and was not downloaded", fix)
    elif dataset_prepared(repo.repo_id, repo.config_name) is None or not offline():
        _prepare_dataset(repo, path.name, fix)
    return {
        "repo_id": repo.repo_id,
        "kind": repo.kind,
        "where": repo.where,
        "requested": repo.revision or "main",
        "revision": path.name,
        "config_name": repo.config_name,
        "path": str(path),
        "time": now_iso(),
    }


def _prepare_dataset(repo: HubRepo, sha: str, fix: str) -> None:
    """Build datasets' Arrow cache from the downloaded snapshot: offline, `load_dataset` reads nothing else."""
    from datasets import load_dataset

    try:
        load_dataset(repo.repo_id, repo.config_name, revision=sha, cache_dir=str(datasets_cache()))
    except (ConnectionError, OSError, ValueError) as e:
        raise ConfigError(repo.label, f"cannot be prepared by datasets: {_one_line(e)}", fix) from None


def prefetch(cfg: DictConfig, overrides: list[str]) -> tuple[Path | None, list[dict[str, Any]]]:
    """Fetch every hub repo of the experiment (benchmarks included) and record them; (record path, entries)."""
    repos = hub_repos(cfg, benchmarks=True)
    if not repos:
        return None, []
    fetched = [fetch(repo) for repo in repos]
    return write_record(cfg.experiments_root, cfg.exp_name, overrides, fetched), fetched
