"""A tiny Qwen2 model with a character-level ChatML tokenizer, warm-started on the arithmetic train split.

Built locally (nothing downloaded) and cached on disk under a hash of every input, so the offline demo can load it
with plain `AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained`.
"""

from pathlib import Path

import torch as th
from tokenizers import AddedToken, pre_tokenizers
from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer

from rlvr_vocab.embedded.arithmetic import read_jsonl
from rlvr_vocab.embedded.cached_build import ensure_built, file_hash

IM_START, IM_END, PAD = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
BUILD_VERSION = 1  # part of the cache key: bump when the build itself changes so stale caches are not reused

# Qwen-style ChatML without tools; the generation prompt opens the assistant turn.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def build_tokenizer() -> Qwen2Tokenizer:
    """Character-level ChatML tokenizer: one token per byte, so every printable ASCII character is one token.

    It is a `Qwen2Tokenizer` (a `PreTrainedTokenizerFast`) because transformers 5 loads any tokenizer saved beside a
    qwen2 config as `Qwen2Tokenizer`, rebuilding it from the vocabulary with Qwen's byte-level pipeline; building it the
    same way keeps the saved and reloaded tokenizers identical. Byte-level also means no character is ever unknown:
    other characters become their UTF-8 bytes and round-trip.
    """
    vocab = {symbol: i for i, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=[],  # no merges: every byte stays its own token
        unk_token=None,
        eos_token=IM_END,
        pad_token=PAD,
        extra_special_tokens=[IM_START],
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
    )
    # Not special, as in Qwen3: they survive skip_special_tokens=True, which TRL uses to decode completions
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in (THINK_OPEN, THINK_CLOSE)])
    return tokenizer


def build_model(
    tokenizer: Qwen2Tokenizer, hidden_size: int, num_layers: int, seed: int, tie_embeddings: bool
) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2 sized for the tokenizer; 16-dim attention heads."""
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=max(1, hidden_size // 16),
        num_key_value_heads=max(1, hidden_size // 16),
        max_position_embeddings=512,
        tie_word_embeddings=tie_embeddings,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    th.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def render_prompt(tokenizer, system_prompt: str, question: str) -> str:
    """The chat-templated prompt for one question, ending with the assistant generation prompt."""
    messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render_completion(question: str, answer: str) -> str:
    """The completion format the demo rewards: the question restated as reasoning, then the answer."""
    return f"{THINK_OPEN}{question}{THINK_CLOSE}{answer}"


def _encode_examples(tokenizer, rows: list[dict], system_prompt: str) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """Right-padded input ids, attention mask and labels (prompt and padding masked out) for every row."""
    sequences = []
    for row in rows:
        prompt = tokenizer(render_prompt(tokenizer, system_prompt, row["question"]), add_special_tokens=False)
        completion = tokenizer(render_completion(row["question"], row["answer"]), add_special_tokens=False)
        ids = prompt["input_ids"] + completion["input_ids"] + [tokenizer.eos_token_id]
        sequences.append((ids, len(prompt["input_ids"])))
    width = max(len(ids) for ids, _ in sequences)
    input_ids = th.full((len(rows), width), tokenizer.pad_token_id)
    labels = th.full((len(rows), width), -100)
    attention_mask = th.zeros((len(rows), width), dtype=th.long)
    for i, (ids, n_prompt) in enumerate(sequences):
        input_ids[i, : len(ids)] = th.tensor(ids)
        labels[i, n_prompt : len(ids)] = th.tensor(ids[n_prompt:])
        attention_mask[i, : len(ids)] = 1
    return input_ids, attention_mask, labels


def warm_start(
    model, tokenizer, rows: list[dict], system_prompt: str, steps: int, lr: float, batch_size: int, seed: int
) -> float:
    """Supervised fine-tune on completions only, deliberately short so GRPO has room to improve.

    Batches are drawn with replacement from a generator seeded with `seed`, so the result is deterministic on CPU.
    Returns the last batch's loss.
    """
    input_ids, attention_mask, labels = _encode_examples(tokenizer, rows, system_prompt)
    generator = th.Generator().manual_seed(seed)
    optimizer = th.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = th.tensor(float("nan"))
    for _ in range(steps):
        batch = th.randint(len(rows), (batch_size,), generator=generator)
        loss = model(input_ids=input_ids[batch], attention_mask=attention_mask[batch], labels=labels[batch]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return loss.item()


def ensure_tiny_model(
    cache_dir: Path,
    data_dir: Path,
    seed: int,
    system_prompt: str,
    hidden_size: int = 64,
    num_layers: int = 2,
    warm_start_steps: int = 275,
    warm_start_lr: float = 3e-4,
    warm_start_batch_size: int = 16,
    tie_embeddings: bool = False,
) -> Path:
    """Return a directory with the warm-started model and tokenizer, building it on the first call.

    The defaults are the demo's: on the default arithmetic data (operands up to 9, 40 held-out questions) they leave
    held-out greedy accuracy around 40-55%, in the middle of the steep part of the learning curve, where GRPO helps
    most. Untied embeddings learned faster than tied ones here.

    The directory name hashes every input, including the train data's content, so a changed input builds anew;
    `ensure_built` publishes it atomically, so concurrent builders are safe.
    """
    data_dir = Path(data_dir)
    inputs = {
        "build_version": BUILD_VERSION,
        "seed": seed,
        "system_prompt": system_prompt,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "tie_embeddings": tie_embeddings,
        "warm_start_steps": warm_start_steps,
        "warm_start_lr": warm_start_lr,
        "warm_start_batch_size": warm_start_batch_size,
        "train_data": file_hash(data_dir / "train.jsonl"),
    }

    def build():
        tokenizer = build_tokenizer()
        model = build_model(tokenizer, hidden_size, num_layers, seed, tie_embeddings)
        rows = read_jsonl(data_dir / "train.jsonl")
        loss = warm_start(
            model, tokenizer, rows, system_prompt, warm_start_steps, warm_start_lr, warm_start_batch_size, seed
        )
        n_params = sum(p.numel() for p in model.parameters())
        return model, tokenizer, (f"tiny Qwen2 ({n_params / 1e3:.0f}k params, {warm_start_steps} warm-start steps, "
                                  f"final loss {loss:.3f})")

    return ensure_built(cache_dir, f"tiny-qwen2-h{hidden_size}-l{num_layers}", inputs, build)
