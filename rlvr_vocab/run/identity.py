"""A run's identity: the fingerprint of its resolved config, minus what may change between attempts.

A run dir belongs to one experiment. Its identity is fixed when the run dir is created (`identity.json`) and every
submission and every start compares against it: the same identity continues the run, a different one is refused
with the keys that differ, unless the user starts a new run_name or forces this one attempt (`force_resume=true`).

`core.keys.ALLOWED_TO_CHANGE` lists what may change without changing the experiment; everything else is identity.
"""

import hashlib
import json
from typing import Any

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.core.keys import ALLOWED_TO_CHANGE, VOLATILE, within
from rlvr_vocab.core.secrets import is_secret_key

_SHOWN_CHANGES = 8
ABSENT = "(absent)"


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists stay values."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: node}


def resolved(cfg) -> dict[str, Any]:
    """The config as plain flattened values, without Hydra's own node and without secrets."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    container.pop("hydra", None)
    return {k: v for k, v in flatten(container).items() if not is_secret_key(k)}


def identity_of(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if not within(k, ALLOWED_TO_CHANGE)}


def attempt_config_of(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if not within(k, VOLATILE)}


def fingerprint(flat: dict[str, Any]) -> str:
    text = json.dumps(flat, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Identity:
    """The identity of one config: its fingerprint and the identity part of its flattened config."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.fingerprint = fingerprint(config)

    @classmethod
    def of(cls, cfg) -> "Identity":
        return cls(identity_of(resolved(cfg)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "config": self.config}


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every key whose value differs, in key order."""
    keys = sorted(set(old) | set(new))
    return [(k, old.get(k, ABSENT), new.get(k, ABSENT)) for k in keys if old.get(k, ABSENT) != new.get(k, ABSENT)]


def describe(diff: list[tuple[str, Any, Any]]) -> str:
    """`key: old -> new; ...` (the first few, then how many more)."""
    shown = "; ".join(f"{k}: {_short(a)} -> {_short(b)}" for k, a, b in diff[:_SHOWN_CHANGES])
    more = len(diff) - _SHOWN_CHANGES
    return shown + (f"; and {more} more" if more > 0 else "")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def mismatch_error(run: str, stored: Identity, wanted: Identity) -> ConfigError:
    return ConfigError(
        f"run {run}",
        f"is another experiment: {describe(changes(stored.config, wanted.config))}",
        "start a new run (another run_name) or accept the change for this attempt only with force_resume=true "
        "(rlvr-vocab resume --force)",
    )
