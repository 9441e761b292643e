"""Held-out evaluation of any causal LM on chat-templated prompts: greedy accuracy, pass@k, format, length."""

from collections.abc import Callable
from typing import Any

import torch as th

from rlvr_vocab.eval.passk import mean_pass_at_k

Scorer = Callable[[list[str], list[str]], list[float]]


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
                    logits_processor=None, decode: Callable[[list[int]], str] | None = None,
                    sampling: dict[str, Any] | None = None, num_return_sequences: int = 1):
    inputs = tokenizer(
        prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    ).to(model.device)
    output = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=sorted(eos_ids) or None,
        logits_processor=logits_processor,
        num_return_sequences=num_return_sequences,
        **({"do_sample": True, **sampling} if sampling is not None else {"do_sample": False}),
    )
    stop_ids = eos_ids | {tokenizer.pad_token_id} - {None}
    trimmed = [_trim(row, stop_ids) for row in output[:, inputs["input_ids"].shape[1] :].tolist()]
    # skip_special_tokens=False keeps tags like <think> that a tokenizer may mark special
    if decode is not None:  # e.g. reasoning-vocabulary tokens mapped back to base text
        texts = [decode(ids) for ids, _ in trimmed]
    else:
        texts = tokenizer.batch_decode([ids for ids, _ in trimmed], skip_special_tokens=False)
    return texts, [length for _, length in trimmed]


def _complete(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int, logits_processor, decode,
              sampling: dict[str, Any] | None = None, n: int = 1) -> tuple[list[str], list[int]]:
    """Completions (n per prompt, grouped by prompt) and their lengths, in eval mode without gradients."""
    eos_ids = _eos_ids(model, tokenizer)
    was_training = model.training
    model.eval()
    completions, lengths = [], []
    per_batch = max(1, batch_size // n)
    try:
        with th.inference_mode():
            for start in range(0, len(prompts), per_batch):
                texts, batch_lengths = _generate_batch(
                    model, tokenizer, prompts[start : start + per_batch], max_new_tokens, eos_ids,
                    logits_processor, decode, sampling, n,
                )
                completions += texts
                lengths += batch_lengths
    finally:
        model.train(was_training)
    return completions, lengths


def greedy_accuracy(
    model,
    tokenizer,
    prompts: list[str],
    answers: list[str],
    score: Scorer,
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
    completions, lengths = _complete(model, tokenizer, prompts, max_new_tokens, batch_size, logits_processor, decode)
    scores = score(completions, answers)
    n = len(prompts)
    return {"accuracy": sum(scores) / n, "mean_length": sum(lengths) / n, "n": n}


def evaluate(
    model,
    tokenizer,
    prompts: list[str],
    answers: list[str],
    score: Scorer,
    format_score: Scorer | None,
    max_new_tokens: int,
    batch_size: int = 64,
    k: int = 1,
    num_samples: int | None = None,
    sampling: dict[str, Any] | None = None,
    seed: int = 0,
    logits_processor=None,
    decode: Callable[[list[int]], str] | None = None,
) -> dict:
    """Greedy accuracy (pass@1), mean length and format rate; with k > 1 also pass@k from sampled completions.

    pass@k uses the unbiased estimator over `num_samples` (default k) samples per prompt, drawn with `sampling`
    (the model's training-time sampling: temperature, top_p, ...). A sample counts as correct when it scores 1.
    """
    completions, lengths = _complete(model, tokenizer, prompts, max_new_tokens, batch_size, logits_processor, decode)
    n = len(prompts)
    result = {
        "accuracy": sum(score(completions, answers)) / n,
        "mean_length": sum(lengths) / n,
        "n": n,
    }
    if format_score is not None:
        result["format_rate"] = sum(format_score(completions, answers)) / n
    if k > 1:
        samples = num_samples or k
        # A seeded RNG of its own: pass@k is reproducible, and evaluating mid-run leaves training's sampling as is.
        with th.random.fork_rng():
            th.manual_seed(seed)
            sampled, _ = _complete(model, tokenizer, prompts, max_new_tokens, batch_size, logits_processor, decode,
                                   sampling or {}, samples)
        correct = score(sampled, [a for a in answers for _ in range(samples)])
        counts = [(samples, sum(s >= 1.0 for s in correct[i * samples : (i + 1) * samples])) for i in range(n)]
        result[f"pass@{k}"] = mean_pass_at_k(counts, k)
    return result
