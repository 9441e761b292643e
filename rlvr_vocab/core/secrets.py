"""Keep credentials out of everything the framework writes: run dirs, logs, the registry, job files, W&B's config.

Two rules, applied by every writer: a value of a known secret environment variable (or anything shaped like a
Hugging Face token) is replaced wherever it appears, and a value under a credential's key (`token`, `hub_token`,
`api_key`, `password`, `client_secret`, ...) is replaced whatever it is. A key merely ending in `key` (`settings_key`,
`sort_key`, `cache_key`) names no credential: its value, often a hash, is kept. A password in a URL
(`postgresql://user:pw@host/db`, an Optuna storage) is replaced wherever it appears; the rest of the URL is kept.
Overrides typed with a literal secret (or a URL with a password) never reach a job file: `move_secrets_to_env` hands
them to the job through its environment instead.
"""

import hashlib
import os
import re
from typing import Any

# The per-run bearer token of the services a job starts in its allocation (rlvr_vocab.job.services): made at the
# job's start, handed to the services and trainers through their environment only.
SERVICE_TOKEN_ENV = "RLVR_SERVICE_TOKEN"
SECRET_ENV_VARS = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", SERVICE_TOKEN_ENV)
REDACTED = "***"
# Short values would redact ordinary words; real keys are long.
_MIN_SECRET_LEN = 8
# A key naming a credential: its last word is one of these, or one of these words is anywhere in it.
_SECRET_LAST_WORDS = {"token", "apikey", "accesskey", "privatekey", "auth"}
_SECRET_ANY_WORDS = {"secret", "secrets", "password", "passwd", "credential", "credentials"}
# `key` alone names lookups and hashes (`settings_key`, `sort_key`); after one of these it names a credential.
_SECRET_KEY_KINDS = {"api", "access", "private", "secret"}
# Hugging Face user access tokens, wherever they appear.
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")
# The password of a URL's user info (`scheme://user:password@host`): the user and the host say where, not who may.
# Up to the authority's last `@`: a password typed with an unescaped `@` is hidden whole.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"']*:)[^\s/\"']+@")
# Tokenizer settings named like credentials.
_NOT_SECRET = {"bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"}
_ENV_PREFIX = "RLVR_SECRET_"


def secret_values() -> list[str]:
    values = (os.environ.get(name, "") for name in SECRET_ENV_VARS)
    return [v for v in values if len(v) >= _MIN_SECRET_LEN]


def is_secret_key(key: str) -> bool:
    """Whether a config key (dotted or not, `+`/`~` prefixed or not) names a credential."""
    name = str(key).lstrip("+~").rsplit(".", 1)[-1].lower()
    if name in _NOT_SECRET:
        return False
    words = re.split(r"[_\-]", name)
    return (words[-1] in _SECRET_LAST_WORDS or not _SECRET_ANY_WORDS.isdisjoint(words)
            or (words[-1] == "key" and len(words) > 1 and words[-2] in _SECRET_KEY_KINDS))


def redact(text: str) -> str:
    """Secret environment values, Hugging Face tokens and URLs' passwords in `text` replaced."""
    for value in secret_values():
        text = text.replace(value, REDACTED)
    text = _HF_TOKEN.sub(REDACTED, text)
    # Every string of every manifest write comes here: the pattern only where a URL may be.
    return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text) if "://" in text else text


def _is_reference(value: Any) -> bool:
    # `${oc.env:HF_TOKEN}` names where a secret comes from; it is not the secret.
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def redact_override(override: str) -> str:
    key, sep, value = override.partition("=")
    if sep and is_secret_key(key) and value and not _is_reference(value):
        return f"{key}={REDACTED}"
    return redact(override)


def redact_obj(obj: Any, key: str | None = None) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with both rules applied at every depth."""
    if isinstance(obj, dict):
        return {k: redact_obj(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        # The items of a list under a credential's key are credentials too.
        return [redact_obj(v, key) for v in obj]
    if key is not None and is_secret_key(key) and obj not in (None, "") and not _is_reference(obj):
        return REDACTED
    if isinstance(obj, str):
        return redact_override(obj) if "=" in obj and not obj.startswith("${") else redact(obj)
    return obj


def move_secrets_to_env(overrides: list[str]) -> tuple[list[str], dict[str, str]]:
    """Overrides with literal secrets rewritten to read them from the job's environment: (overrides, environment).

    The job sees the same value (`key=${oc.env:RLVR_SECRET_...}`); job files, pickles and records hold the reference.
    """
    safe, env = [], {}
    for override in overrides:
        key, sep, value = override.partition("=")
        # A URL with a password (`search.storage=postgresql://user:pw@host/db`) is a credential whatever its key.
        if sep and (is_secret_key(key) or _URL_PASSWORD.search(value)) and value and not _is_reference(value):
            name = _ENV_PREFIX + hashlib.sha1(key.lstrip("+~").encode()).hexdigest()[:8].upper()
            env[name] = value.strip("'\"")
            safe.append(f"{key}=${{oc.env:{name}}}")
        else:
            safe.append(override)
    return safe, env
