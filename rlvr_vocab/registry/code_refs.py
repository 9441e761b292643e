"""The code snapshots the runs under an experiments root refer to: their attempts' and their pending submissions'."""

import json
from pathlib import Path

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.run.layout import RunPaths


def referenced_snapshots(root: Path) -> set[str]:
    """Every snapshot a run under `root` ran or was submitted to run; a run file that cannot be read is an error
    (what it refers to is unknown, so nothing may be removed)."""
    found = set()
    for run_dir in Path(root).glob("[!._]*/[!._]*/"):
        paths = RunPaths(run_dir)
        manifest = _read(paths.manifest) or {}
        found |= {(a.get("code") or {}).get("snapshot") for a in manifest.get("attempts") or []}
        found |= {s.get("code") for s in _read(paths.submissions) or [] if isinstance(s, dict)}
    return found - {None}


def _read(path: Path):
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(str(path), f"cannot be read ({e})",
                          "repair it or move its run dir aside: until then no snapshot is removed") from None
