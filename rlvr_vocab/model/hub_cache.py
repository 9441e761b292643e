"""Where a model or data set comes from and what this machine's Hugging Face caches hold of it, read-only.

Compute nodes often have no internet and run with HF_HUB_OFFLINE=1. A model must then be a complete snapshot in the
hub cache (`<hub cache>/models--org--name/snapshots/<sha>/`); a data set must be prepared in datasets' own cache,
since offline `load_dataset` reads only its Arrow files (`<datasets cache>/org___name/<config>/<version>/<hash>/`),
never the hub snapshot. What `rlvr-vocab prefetch` fetched is recorded with its commit hash under the experiments
root (`RootPaths.prefetch`), so jobs load exactly that revision (`pinned_revision`).
"""

import json
import os
import re
from pathlib import Path
from typing import Any

from rlvr_vocab.run.layout import RootPaths

SHA = re.compile(r"[0-9a-f]{40}")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def looks_local(name: str) -> bool:
    """Hub ids are `org/name`; anything else, or anything that exists here, is a local path."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") != 1 or Path(name).exists()


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


def model_snapshot(repo_id: str, revision: str | None = None) -> tuple[str, Path] | None:
    """(commit hash, snapshot dir) of a model in the hub cache at `revision` (branch, tag or hash; None: main)."""
    folder = hub_cache() / f"models--{repo_id.replace('/', '--')}"
    rev = revision or "main"
    ref = folder / "refs" / rev
    sha = rev if SHA.fullmatch(rev) else ref.read_text().strip() if ref.is_file() else None
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


def prefetch_records(root: str | Path) -> list[dict[str, Any]]:
    """Every experiment's prefetch record entries under the experiments root."""
    entries = []
    for path in sorted(RootPaths(root).prefetch.glob("*.json")):
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
        for r in prefetch_records(root)
        if r.get("repo_id") == repo_id
        and r.get("requested", "main") == wanted
        and (kind is None or r.get("kind") == kind)
        and SHA.fullmatch(str(r.get("revision", "")))
    ]
    return max(matches, key=lambda r: r.get("time", ""))["revision"] if matches else None
