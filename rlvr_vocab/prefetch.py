"""An experiment's files on the Hugging Face hub: which repos, whether this machine's caches hold them, fetching them
on a login node (`rlvr-vocab prefetch`) and the revisions that fetch pinned.

Compute nodes often have no internet and run with HF_HUB_OFFLINE=1. A model must then be a complete snapshot in the
hub cache (`<hub cache>/models--org--name/snapshots/<sha>/`); a data set must be prepared in datasets' own cache,
since offline `load_dataset` reads only its Arrow files (`<datasets cache>/org___name/<config>/<version>/<hash>/`),
never the hub snapshot. What a prefetch fetched is recorded with its commit hash in
`<experiments root>/_prefetch/<exp_name>.json`, so jobs can load exactly that revision (`pinned_revision`).
"""

import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rlvr_vocab.errors import ConfigError

PREFETCH_DIR = "_prefetch"
_SHA = re.compile(r"[0-9a-f]{40}")
# Formats transformers never loads for a torch model: not worth a login node's download or the shared cache's space.
MODEL_IGNORE = ["*.gguf", "*.onnx", "*.msgpack", "*.h5", "*.ot", "*.tflite", "onnx/*", "original/*"]
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


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
    from rlvr_vocab.validate import looks_local

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


# Read at call time: huggingface_hub and datasets read these variables once, at import.
def hf_home() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(os.environ.get("HF_HOME") or default).expanduser()


def hub_cache() -> Path:
    return Path(
        os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or hf_home() / "hub"
    ).expanduser()


def datasets_cache() -> Path:
    return Path(os.environ.get("HF_DATASETS_CACHE") or hf_home() / "datasets").expanduser()


def offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _snakecase(name: str) -> str:
    """datasets.naming.camelcase_to_snakecase, which names a data set's cache directory (not imported: importing
    datasets costs seconds on every submission)."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


# ------------------------------------------------------------------------------------------------ the caches


def model_snapshot(repo_id: str, revision: str | None = None) -> tuple[str, Path] | None:
    """(commit hash, snapshot dir) of a model in the hub cache at `revision` (branch, tag or hash; None: main)."""
    folder = hub_cache() / f"models--{repo_id.replace('/', '--')}"
    rev = revision or "main"
    ref = folder / "refs" / rev
    sha = rev if _SHA.fullmatch(rev) else ref.read_text().strip() if ref.is_file() else None
    snapshot = folder / "snapshots" / sha if sha else None
    return (sha, snapshot) if snapshot is not None and snapshot.is_dir() else None


def model_missing(snapshot: Path) -> str | None:
    """What a model snapshot lacks for `from_pretrained` offline (config, every weight shard, tokenizer), or None."""
    if not (snapshot / "config.json").is_file():  # is_file follows the blob symlink: a dangling one is missing
        return "no config.json"
    index = next((snapshot / n for n in _WEIGHT_INDEXES if (snapshot / n).is_file()), None)
    if index is not None:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [s for s in shards if not (snapshot / s).is_file()]
        if missing:
            return f"weight shard {missing[0]} missing ({len(missing)} of {len(shards)})"
    elif not any((snapshot / n).is_file() for n in _WEIGHTS):
        return "no weights (model.safetensors)"
    if not any((snapshot / n).is_file() for n in _TOKENIZER):
        return "no tokenizer files"
    return None


def dataset_prepared(repo_id: str, config_name: str | None = None) -> Path | None:
    """datasets' prepared copy of a hub data set (what `load_dataset` reads offline), the newest; None if absent.

    The same search as datasets' offline fallback (packaged_modules/cache): `<config>/<version>/<hash>/` whose
    dataset_info.json names that config."""
    namespace, _, name = repo_id.rpartition("/")
    root = datasets_cache() / f"{namespace}___{_snakecase(name)}"
    found = []
    for info in root.glob(f"{config_name or '*'}/*/*/dataset_info.json"):
        try:
            if json.loads(info.read_text()).get("config_name") == info.parent.parent.parent.name:
                found.append(info.parent)
        except (OSError, ValueError):
            continue
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


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
    from rlvr_vocab.secrets import redact_override

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


def record_path(root: str | Path, exp_name: str) -> Path:
    return Path(root) / PREFETCH_DIR / f"{exp_name}.json"


def _records(root: str | Path) -> list[dict[str, Any]]:
    entries = []
    for path in sorted((Path(root) / PREFETCH_DIR).glob("*.json")):
        try:
            entries.extend(json.loads(path.read_text()).get("repos") or [])
        except (OSError, ValueError, AttributeError):
            continue  # a teammate's unreadable or hand-broken record pins nothing
    return entries


def pinned_revision(
    root: str | Path, repo_id: str, requested: str | None = None, kind: str | None = None
) -> str | None:
    """The commit `rlvr-vocab prefetch` last fetched of `repo_id` for the revision a config asks for (`requested`,
    None: main), over every experiment's record under the experiments root `root`; None if never prefetched.

    Loading this hash (not the branch) keeps every job of a sweep on the same files, whatever is downloaded later."""
    wanted = requested or "main"
    matches = [
        r
        for r in _records(root)
        if r.get("repo_id") == repo_id
        and r.get("requested", "main") == wanted
        and (kind is None or r.get("kind") == kind)
        and _SHA.fullmatch(str(r.get("revision", "")))
    ]
    return max(matches, key=lambda r: r.get("time", ""))["revision"] if matches else None


def write_record(root: str | Path, exp_name: str, overrides: list[str], fetched: list[dict[str, Any]]) -> Path:
    """Merge `fetched` into the experiment's record (earlier entries for other repos stay) and write it."""
    from rlvr_vocab.run.fsio import atomic_write_text
    from rlvr_vocab.run.manifest import now_iso
    from rlvr_vocab.secrets import redact_override

    path = record_path(root, exp_name)
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
