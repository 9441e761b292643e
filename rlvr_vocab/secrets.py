"""Keep credentials out of everything the framework writes (run dirs, logs, registry)."""

import os

SECRET_ENV_VARS = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN")
# Short values would redact ordinary words; real keys are long.
_MIN_SECRET_LEN = 8


def secret_values() -> list[str]:
    values = (os.environ.get(name, "") for name in SECRET_ENV_VARS)
    return [v for v in values if len(v) >= _MIN_SECRET_LEN]


def redact(text: str) -> str:
    for value in secret_values():
        text = text.replace(value, "***")
    return text
