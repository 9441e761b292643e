"""Redaction hides credentials, by key or by value, and keeps values whose keys merely end in `key` (hashes)."""

import json
import re

import pytest

from rlvr_vocab.core.secrets import REDACTED, is_secret_key, move_secrets_to_env, redact, redact_obj, redact_override

HASH = "3f2a9c1e7b5d4f60a8e2c9b1d7f3a5e4"
KEPT = ("settings_key", "sort_key", "key", "cache_key")
SECRET = ("api_key", "wandb_api_key", "hub_token", "HF_TOKEN", "password", "client_secret")


@pytest.fixture(autouse=True)
def no_secret_env(monkeypatch):
    for name in ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("key", KEPT)
def test_a_key_ending_in_key_keeps_its_value_at_any_depth(key):
    data = {key: HASH, "eval": {"results": [{key: HASH, "nested": {key: HASH}}]}}
    assert redact_obj(data) == data
    assert not is_secret_key(key) and not is_secret_key(f"eval.{key}")
    assert redact_override(f"+eval.{key}={HASH}") == f"+eval.{key}={HASH}"


@pytest.mark.parametrize("key", SECRET)
def test_a_credential_is_redacted_at_any_depth(key):
    value = "s3cr3t-value-0123456789abcdef"
    data = {key: value, "a": {key: value, "b": [{"c": {key: value}}]}, "list": {key: [value, value]}}
    clean = redact_obj(data)
    assert value not in json.dumps(clean)
    assert clean[key] == clean["a"][key] == clean["a"]["b"][0]["c"][key] == REDACTED
    assert redact_override(f"+x.y.{key}={value}") == f"+x.y.{key}={REDACTED}"


def test_credentials_from_the_environment_and_hf_tokens_are_redacted_in_any_text(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123456789abcdef01234567")
    hf = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"
    text = f"login 0123456789abcdef0123456789abcdef01234567 with {hf}."
    assert redact(text) == f"login {REDACTED} with {REDACTED}."
    clean = json.dumps(redact_obj({"note": text, "settings_key": HASH, "overrides": [f"note={hf}"]}))
    assert hf not in clean and "0123456789abcdef0123456789abcdef01234567" not in clean and HASH in clean


def test_tokenizer_tokens_references_and_empty_values_are_kept():
    data = {"pad_token": "<|endoftext|>", "hub_token": "${oc.env:HF_TOKEN}", "api_key": None, "password": "",
            "max_new_tokens": 64, "pad_token_id": 0}
    assert redact_obj(data) == data


def test_a_password_in_a_url_is_redacted_wherever_it_appears():
    """An RDB URL (an Optuna storage) names its user and host, kept; its password is not."""
    url = "postgresql+psycopg2://optuna:hunter2-s3cret@db.cluster:5432/studies?sslmode=require"
    shown = "postgresql+psycopg2://optuna:***@db.cluster:5432/studies?sslmode=require"
    assert redact(url) == shown and redact_override(f"search.storage={url}") == f"search.storage={shown}"
    clean = redact_obj({"search": {"storage": url}, "overrides": [f"+search.storage={url}"], "note": f"at {url} ."})
    assert "hunter2" not in json.dumps(clean) and clean["search"]["storage"] == shown
    assert redact("mysql://me:p@ss@h/db") == "mysql://me:***@h/db"  # an unescaped @ in the password
    # Typed on the command line, it reaches the job through its environment (as a credential's value does).
    safe, env = move_secrets_to_env([f"search.storage={url}", "search.budget.n_trials=8"])
    assert re.fullmatch(r"search\.storage=\$\{oc\.env:RLVR_SECRET_\w+\}", safe[0]) and list(env.values()) == [url]
    assert safe[1] == "search.budget.n_trials=8"
    # No password: nothing to hide, nor in text that merely has a colon and an @.
    for kept in ("https://user@host/x", "sqlite:///study.db", "${oc.env:RLVR_OPTUNA_STORAGE}", "at 12:30@noon"):
        assert redact(kept) == kept
