"""The code a run runs: a content-addressed snapshot of the package and its configs, taken at submission.

A job imports the package from its snapshot (the launcher puts it first on PYTHONPATH), so an edit to the checkout
while the job waits in the queue, or before a requeue, never changes what it runs. The snapshot holds the package's
Python source, its configs and the Hydra plugin, never data or checkpoints (about 1 MB):

    <experiments_root>/_code/<hash>/
      rlvr_vocab/  conf/  hydra_plugins/rlvr_vocab/   (the sbatch scripts in rlvr_vocab/slurm_scripts/)
      code.json    the hash, when it was taken, the git commit and dirty flag of the checkout it came from, the
                   installed version (and, installed from a wheel file, the wheel and its hash)
      git.diff     the checkout's changes against that commit, untracked source files included

The hash covers every file, so sweeps of the same code share one snapshot. The installed dependencies stay the
venv's.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import rlvr_vocab
from rlvr_vocab import CONF_DIR
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.resources import scripts_dir
from rlvr_vocab.run.fsio import atomic_write_text
from rlvr_vocab.run.layout import RootPaths

# Set in a job's environment: the snapshot it runs from.
ENV = "RLVR_CODE"
_PACKAGE = Path(rlvr_vocab.__file__).resolve().parent
_PLUGIN = _PACKAGE / "launch" / "hydra_plugin"
_MARKER = "code.json"


def _sources() -> list[tuple[str, Path]]:
    """(path in the snapshot, file) of everything a job imports or composes from this package."""
    found = [(f"rlvr_vocab/{p.relative_to(_PACKAGE)}", p) for p in _PACKAGE.rglob("*.py")]
    found += [(f"hydra_plugins/rlvr_vocab/{p.name}", p) for p in _PLUGIN.glob("*.py")]
    found += [(f"conf/{p.relative_to(CONF_DIR)}", p) for p in CONF_DIR.rglob("*") if p.is_file()]
    # Where an installed package keeps them (rlvr_vocab.core.resources finds them there in a snapshot).
    found += [(f"rlvr_vocab/slurm_scripts/{p.name}", p) for p in scripts_dir().glob("*.sh")]
    return sorted((name, path) for name, path in found if "__pycache__" not in name)


def code_hash(sources: list[tuple[str, Path]] | None = None) -> str:
    digest = hashlib.sha256()
    for name, path in sources if sources is not None else _sources():
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def snapshot_dir(root: str | Path) -> Path:
    """Where this code's snapshot is (or will be) under the experiments root; nothing is written."""
    return RootPaths(root).code(code_hash())


def ensure_snapshot(root: str | Path) -> Path:
    """This code's snapshot under the experiments root, taken now unless an identical one exists. A root that cannot
    hold it (full, read-only) is a ConfigError: nothing is submitted without the code it would run."""
    sources = _sources()
    target = RootPaths(root).code(code_hash(sources))
    if (target / _MARKER).is_file():
        return target
    try:
        return _take(sources, target)
    except OSError as e:
        raise ConfigError(str(target.parent), f"cannot hold the code snapshot jobs run from ({e.strerror or e})",
                          "free space there, or make it writable") from None


def _take(sources: list[tuple[str, Path]], target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".taking-", dir=target.parent))
    try:
        for name, path in sources:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, staging / name)
        commit, dirty = git_state()
        (staging / "git.diff").write_text(_git_diff() if commit else "")
        atomic_write_text(staging / _MARKER, json.dumps({
            "hash": target.name, "taken": _now(), "git_commit": commit, "git_dirty": dirty,
            "installed": _installed(),
        }, indent=1))
        try:
            staging.rename(target)
        except OSError:  # another submission took the same snapshot meanwhile
            if not (target / _MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def code_env(snapshot: Path) -> dict[str, str]:
    """The environment of a process that runs a snapshot (a resume's submission from the login node)."""
    path = os.environ.get("PYTHONPATH")
    return {ENV: str(snapshot), "PYTHONPATH": f"{snapshot}:{path}" if path else str(snapshot), "PYTHONSAFEPATH": "1"}


def job_setup(snapshot: Path) -> list[str]:
    """The shell lines a job script runs first so that its Python imports the snapshot: first on PYTHONPATH, and no
    working directory on sys.path (PYTHONSAFEPATH), since jobs start in the directory they were submitted from,
    often the checkout itself."""
    return [f"export {ENV}={snapshot}", f'export PYTHONPATH={snapshot}${{PYTHONPATH:+:$PYTHONPATH}}',
            "export PYTHONSAFEPATH=1"]


def running() -> dict[str, Any]:
    """The code this process runs: its snapshot's record, else the checkout's git state (a local run)."""
    marker = _PACKAGE.parent / _MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        return {"snapshot": recorded["hash"], "git_commit": recorded.get("git_commit"),
                "git_dirty": recorded.get("git_dirty")}
    commit, dirty = git_state()
    return {"snapshot": None, "git_commit": commit, "git_dirty": dirty}


def git_state() -> tuple[str | None, bool | None]:
    """Commit and dirty flag of the package's checkout, if it is a git checkout."""
    try:
        commit = _git("rev-parse", "HEAD")
        if commit is None:
            return None, None
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return commit.strip(), bool((dirty or "").strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def _git_diff() -> str:
    """The checkout's changes to the package and configs against HEAD, untracked files as additions."""
    parts = [_git("diff", "HEAD", "--", "rlvr_vocab", "conf") or ""]
    for name in (_git("ls-files", "--others", "--exclude-standard", "--", "rlvr_vocab", "conf") or "").split():
        out = subprocess.run(["git", "-C", str(_PACKAGE.parent), "diff", "--no-index", "--", "/dev/null", name],
                             capture_output=True, text=True, timeout=30)
        parts.append(out.stdout)
    return "".join(parts)


def _git(*args: str) -> str | None:
    out = subprocess.run(["git", "-C", str(_PACKAGE.parent), *args], capture_output=True, text=True, timeout=30)
    return out.stdout if out.returncode == 0 else None


def _installed() -> dict[str, Any]:
    """The installed distribution: its version, and for an install from a wheel file (no checkout to take a commit
    from) the wheel and its hash as pip recorded them (PEP 610's direct_url.json)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("rlvr_vocab")
    except metadata.PackageNotFoundError:
        return {"version": None}
    found: dict[str, Any] = {"version": dist.version}
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        direct = {}
    archive = direct.get("archive_info") or {}
    if archive:
        found.update(wheel=direct.get("url"), wheel_hash=archive.get("hash") or next(
            (f"{k}={v}" for k, v in (archive.get("hashes") or {}).items()), None))
    return found


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")



def unused_snapshots(root: str | Path, referenced: set[str], grace_s: float = 24 * 3600) -> list[Path]:
    """Snapshots under the root that no run refers to, older than `grace_s` (a submission may be taking one now:
    its runs name it only once their submission is recorded)."""
    import time

    folder = RootPaths(root).code("x").parent
    cutoff = time.time() - grace_s
    return sorted(d for d in folder.glob("*") if d.is_dir() and d.name not in referenced
                  and not d.name.startswith(".") and d.stat().st_mtime < cutoff)


def remove_snapshots(snapshots: list[Path]) -> None:
    """Each one renamed aside first, then deleted: a half-deleted snapshot is never left under its hash."""
    for snapshot in snapshots:
        doomed = snapshot.with_name(f".removing-{snapshot.name}")
        snapshot.rename(doomed)
        shutil.rmtree(doomed)


def job_snapshot(root: str | Path, job_id: str) -> Path:
    """A job's snapshot, taken at its first start and kept for its requeues (the sbatch wrappers: a plain `sbatch`
    runs no code of ours at submission). The job id's record lives beside the wrappers' output."""
    record = Path(root) / "_slurm" / f"{job_id}.code"
    if record.is_file() and RootPaths(root).code(record.read_text().strip()).is_dir():
        return RootPaths(root).code(record.read_text().strip())
    snapshot = ensure_snapshot(root)
    record.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record, snapshot.name + "\n")
    return snapshot


if __name__ == "__main__":  # `python -m rlvr_vocab.run.code ROOT JOB_ID`: the wrappers' job snapshot
    import sys

    print(job_snapshot(sys.argv[1], sys.argv[2]))  # noqa: T201 - the wrapper reads it
