"""What differs between two runs, or two attempts of runs: their resolved configs and the code they ran."""

import difflib
from pathlib import Path
from typing import Any

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.run.identity import changes, flatten
from rlvr_vocab.run.layout import RootPaths, RunPaths


def attempt_config(paths: RunPaths, attempt: int | None) -> dict[str, Any] | None:
    """An attempt's resolved config, flattened (the latest attempt's by default); None for an attempt that recorded
    none (it failed its checks at start)."""
    import yaml

    path = paths.config if attempt is None else paths.attempt_config(attempt)
    if not path.is_file():
        if attempt is not None:
            return None
        raise ConfigError(str(path), "does not exist", "the run has not started yet (see `rlvr-vocab show`)")
    return flatten(yaml.safe_load(path.read_text()) or {})


def config_changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """`key: a -> b` for every key whose value differs, bookkeeping keys (names, the sweep) left out."""
    bookkeeping = ("run_name", "sweep_id")
    return [f"{k}: {x} -> {y}" for k, x, y in changes(a, b) if k not in bookkeeping]


def code_changes(root: Path, a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """How the code two attempts ran differs: a unified diff of their snapshots' files, or what is known of each
    (the git commit) where a snapshot is missing (a local run, or one removed)."""
    a, b = a or {}, b or {}
    if a.get("snapshot") and a.get("snapshot") == b.get("snapshot"):
        return []
    dirs = [RootPaths(root).code(c["snapshot"]) if c.get("snapshot") else None for c in (a, b)]
    if not all(d is not None and d.is_dir() for d in dirs):
        said = [f"snapshot {c['snapshot']}" if c.get("snapshot") else "the checkout" for c in (a, b)]
        commits = [f"git {c.get('git_commit') or '?'}{' (dirty)' if c.get('git_dirty') else ''}" for c in (a, b)]
        if said[0] == said[1] and commits[0] == commits[1] and not a.get("git_dirty"):
            return []
        return [f"code: {said[0]}, {commits[0]} -> {said[1]}, {commits[1]} (files not kept: no line diff)"]
    return list(_tree_diff(*dirs))


def _tree_diff(old: Path, new: Path):
    names = sorted({p.relative_to(d).as_posix() for d in (old, new) for p in d.rglob("*")
                    if p.is_file() and p.parent != d})  # code.json and git.diff describe a snapshot, not its code
    for name in names:
        before = (old / name).read_text().splitlines(keepends=True) if (old / name).is_file() else []
        after = (new / name).read_text().splitlines(keepends=True) if (new / name).is_file() else []
        if before != after:
            yield from (line.rstrip("\n") for line in difflib.unified_diff(
                before, after, f"{old.name}/{name}", f"{new.name}/{name}"))
