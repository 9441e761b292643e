"""How a search was last submitted (`<root>/_searches/<id>/submission.json`): its overrides, its launcher settings,
and the command that submits it again. A trial's run has no submissions.json of its own (its worker made it), so
`resume` and `search status` read this one. Cheap to import: the CLI's resume reads it.
"""

import json
import shlex
from pathlib import Path
from typing import Any

from rlvr_vocab.core.keys import override_key
from rlvr_vocab.core.secrets import redact_obj, redact_override
from rlvr_vocab.run.fsio import atomic_write_text
from rlvr_vocab.run.layout import RootPaths
from rlvr_vocab.run.manifest import now_iso
from rlvr_vocab.run.overrides import launcher_overrides


def record_submission(root: Path | str, search_id: str, overrides: list[str], hydra_overrides: list[str],
                      launcher: str | None) -> None:
    """Replace the search's record: the latest submission's settings are what submitting it again repeats."""
    entry = {"submitted": now_iso(), "launcher": launcher,
             # Its id given, not recomputed: the same study whatever the overrides' spelling.
             "overrides": [*(redact_override(o) for o in overrides if override_key(o) != "sweep_id"),
                           f"sweep_id={search_id}"],
             "hydra_overrides": launcher_overrides(hydra_overrides)}
    path = RootPaths(root).search_submission(search_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(redact_obj(entry), indent=1) + "\n")


def last_submission(root: Path | str, search_id: str) -> dict[str, Any] | None:
    """The search's record, None when it was never submitted through `--multirun` (or the record is unreadable)."""
    try:
        data = json.loads(RootPaths(root).search_submission(search_id).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def search_command(root: Path | str, search_id: str) -> str | None:
    """The command of the search's last submission through `--multirun` (None if none was recorded)."""
    submission = last_submission(root, search_id)
    if submission is None:
        return None
    return shlex.join(["python", "-m", "rlvr_vocab.train", "--multirun", *submission.get("hydra_overrides", []),
                       *submission.get("overrides", [])])


def submit_again(root: Path | str, search_id: str) -> str:
    """What to run to continue the search: its last submission's command, else what to look for."""
    return search_command(root, search_id) or f"run the command that started search {search_id} again"
