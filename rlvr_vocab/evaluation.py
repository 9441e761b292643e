"""Held-out greedy evaluation of any causal LM on chat-templated prompts."""

from collections.abc import Callable

import torch as th


def _eos_ids(model, tokenizer) -> set[int]:
    """Every id that ends a completion: the model's declared eos ids (e.g. end of turn) and the tokenizer's."""
    declared = model.generation_config.eos_token_id
    ids = set(declared if isinstance(declared, list) else [declared] if declared is not None else [])
    return ids | {tokenizer.eos_token_id} - {None}


def _trim(ids: list[int], stop_ids: set[int]) -> tuple[list[int], int]:
    """The completion's tokens before the first eos/pad, and its length counting that eos (as TRL does)."""
    for i, token in enumerate(ids):
        if token in stop_ids:
            return ids[:i], i + 1
    return ids, len(ids)


def _generate_batch(model, tokenizer, prompts: list[str], max_new_tokens: int, eos_ids: set[int],
                    logits_processor=None, decode: Callable[[list[int]], str] | None = None):
    inputs = tokenizer(
        prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    ).to(model.device)
    output = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=sorted(eos_ids) or None,
        logits_processor=logits_processor,
    )
    stop_ids = eos_ids | {tokenizer.pad_token_id} - {None}
    trimmed = [_trim(row, stop_ids) for row in output[:, inputs["input_ids"].shape[1] :].tolist()]
    # skip_special_tokens=False keeps tags like <think> that a tokenizer may mark special
    if decode is not None:  # e.g. reasoning-vocabulary tokens mapped back to base text
        texts = [decode(ids) for ids, _ in trimmed]
    else:
        texts = tokenizer.batch_decode([ids for ids, _ in trimmed], skip_special_tokens=False)
    return texts, [length for _, length in trimmed]


def greedy_accuracy(
    model,
    tokenizer,
    prompts: list[str],
    answers: list[str],
    score: Callable[[list[str], list[str]], list[float]],
    max_new_tokens: int,
    batch_size: int = 64,
    logits_processor=None,
    decode: Callable[[list[int]], str] | None = None,
) -> dict:
    """Greedy-decode every prompt and score the completions against the answers.

    `prompts` are already chat-templated strings; `score(completions, answers)` returns one score in [0, 1] per
    completion. Returns the mean score as `accuracy`, the mean completion length in tokens (eos included) and `n`.
    `logits_processor` constrains generation (as in training); `decode` turns a completion's ids into scored text.
    """
    eos_ids = _eos_ids(model, tokenizer)
    was_training = model.training
    model.eval()
    completions, lengths = [], []
    try:
        with th.inference_mode():
            for start in range(0, len(prompts), batch_size):
                texts, batch_lengths = _generate_batch(
                    model, tokenizer, prompts[start : start + batch_size], max_new_tokens, eos_ids,
                    logits_processor, decode,
                )
                completions += texts
                lengths += batch_lengths
    finally:
        model.train(was_training)
    scores = score(completions, answers)
    n = len(prompts)
    return {"accuracy": sum(scores) / n, "mean_length": sum(lengths) / n, "n": n}
