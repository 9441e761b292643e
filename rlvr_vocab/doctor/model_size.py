"""How large the experiment's base model is, where this machine can tell: the embedded model's shape, a local or
cached model's safetensors headers, else its config.json."""

import json
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

# Shapes of the embedded models (rlvr_vocab.demo): vocabulary rows and MLP width per hidden size.
_EMBEDDED = {"tiny_qwen2": {"vocab_size": 300, "mlp": 4}, "tiny_qwen3": {"vocab_size": 151936, "mlp": 3}}


def safetensors_parameters(directory: Path) -> int | None:
    """Parameters in a model directory's safetensors files (from their headers), or None without them."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with path.open("rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total


def config_parameters(config: dict[str, Any]) -> int | None:
    """A decoder-only transformer's parameters from its config.json (attention, gated MLP, embeddings)."""
    c = config.get("text_config", config)
    try:
        hidden, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    except KeyError:
        return None
    heads = c.get("num_attention_heads") or max(1, hidden // 64)
    kv_heads = c.get("num_key_value_heads") or heads
    head_dim = c.get("head_dim") or hidden // heads
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    mlp = 3 * hidden * c.get("intermediate_size", 4 * hidden)
    return layers * (attention + mlp) + vocab * hidden * (1 if c.get("tie_word_embeddings", True) else 2)


def model_shape(cfg: DictConfig) -> tuple[int, int, bool] | None:
    """(parameters, hidden size, tied embeddings) of the experiment's base model, where this machine can tell."""
    from rlvr_vocab.model.hub_cache import looks_local, model_snapshot, pinned_revision

    m = cfg.model
    if m.name_or_path is None:
        e = m.embedded
        shape = _EMBEDDED.get(e.kind, _EMBEDDED["tiny_qwen3"])
        config = {
            "hidden_size": e.hidden_size,
            "num_hidden_layers": e.num_layers,
            "vocab_size": shape["vocab_size"],
            "intermediate_size": shape["mlp"] * e.hidden_size,
            "num_attention_heads": max(1, e.hidden_size // 16),
            "tie_word_embeddings": e.tie_embeddings,
        }
        return config_parameters(config), e.hidden_size, e.tie_embeddings
    name = str(m.name_or_path)
    if looks_local(name):
        directory = Path(name).expanduser()
    else:
        revision = (m.model_kwargs or {}).get("revision")
        snapshot = model_snapshot(name, pinned_revision(cfg.experiments_root, name, revision, "model") or revision)
        if snapshot is None:
            return None
        directory = snapshot[1]
    try:
        config = json.loads((directory / "config.json").read_text())
        count = safetensors_parameters(directory) or config_parameters(config)
    except (OSError, ValueError, KeyError):
        return None
    c = config.get("text_config", config)
    return (count, c.get("hidden_size", 0), c.get("tie_word_embeddings", True)) if count else None
