"""Completions of any causal LM on chat-templated prompts (transformers or vLLM), and the held-out evaluation on them:
greedy accuracy, pass@k, format, length."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch as th

from rlvr_vocab.eval.passk import mean_pass_at_k

Scorer = Callable[[list[str], list[str]], list[float]]


@dataclass(frozen=True)
class Completion:
    # The scored text: base text with a reasoning vocabulary (its tokens mapped back).
    text: str
    # The generated ids before the first eos/pad.
    ids: list[int]
    # Tokens generated, the eos counted (as TRL counts).
    length: int


def _eos_ids(model, tokenizer) -> set[int]:
    """Every id that ends a completion: the model's declared eos ids (e.g. end of turn) and the tokenizer's."""
    declared = model.generation_config.eos_token_id
    ids = set(declared if isinstance(declared, list) else [declared] if declared is not None else [])
    return ids | {tokenizer.eos_token_id} - {None}


def stop_ids(model, tokenizer) -> set[int]:
    """The eos ids and pad: where a generated row's completion ends."""
    return _eos_ids(model, tokenizer) | {tokenizer.pad_token_id} - {None}


def _completion(ids: list[int], stops: set[int], decode: Callable[[list[int]], str]) -> Completion:
    """The completion's tokens before the first stop id, and its length counting that stop."""
    for i, token in enumerate(ids):
        if token in stops:
            return Completion(decode(ids[:i]), ids[:i], i + 1)
    return Completion(decode(ids), ids, len(ids))


def _decoder(tokenizer, decode: Callable[[list[int]], str] | None) -> Callable[[list[int]], str]:
    # skip_special_tokens=False keeps tags like <think> that a tokenizer may mark special
    return decode or (lambda ids: tokenizer.decode(ids, skip_special_tokens=False))


def _generate_batch(model, tokenizer, prompts: list[str], max_new_tokens: int, eos_ids: set[int], logits_processor,
                    decode: Callable[[list[int]], str], sampling: dict[str, Any] | None, n: int) -> list[Completion]:
    inputs = tokenizer(
        prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    ).to(model.device)
    output = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=sorted(eos_ids) or None,
        logits_processor=logits_processor,
        num_return_sequences=n,
        **({"do_sample": True, **sampling} if sampling is not None else {"do_sample": False}),
    )
    stops = eos_ids | {tokenizer.pad_token_id} - {None}
    return [_completion(row, stops, decode) for row in output[:, inputs["input_ids"].shape[1] :].tolist()]


def complete(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 64, logits_processor=None,
             decode: Callable[[list[int]], str] | None = None, sampling: dict[str, Any] | None = None, n: int = 1,
             seed: int = 0) -> list[list[Completion]]:
    """`n` completions of each prompt, in eval mode without gradients: greedy, or sampled with `sampling`
    (temperature, top_p, ...) from a torch RNG seeded with `seed`, of its own, so that evaluating mid-run leaves
    training's sampling as it is. The same prompts, settings, batch size and seed give the same completions.

    `logits_processor` constrains generation (as in training); `decode` turns a completion's ids into scored text.
    """
    eos_ids, decode = _eos_ids(model, tokenizer), _decoder(tokenizer, decode)
    was_training = model.training
    model.eval()
    flat: list[Completion] = []
    per_batch = max(1, batch_size // n)
    try:
        with th.inference_mode(), th.random.fork_rng():
            th.manual_seed(seed)
            for start in range(0, len(prompts), per_batch):
                flat += _generate_batch(model, tokenizer, prompts[start : start + per_batch], max_new_tokens, eos_ids,
                                        logits_processor, decode, sampling, n)
    finally:
        model.train(was_training)
    return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]


def complete_vllm(llm, tokenizer, prompts: list[str], max_new_tokens: int, stops: set[int],
                  decode: Callable[[list[int]], str] | None = None, sampling: dict[str, Any] | None = None,
                  n: int = 1, seed: int = 0) -> list[list[Completion]]:
    """`complete` with a vLLM engine (GPU clusters; built for, not yet run here): `sampling` holds temperature,
    top_p and top_k (0: off), and each request is seeded. `stops`: what `stop_ids` gives for the model."""
    from vllm import SamplingParams

    if sampling is None:
        params = SamplingParams(temperature=0, max_tokens=max_new_tokens)
    else:
        params = SamplingParams(n=n, temperature=sampling["temperature"], top_p=sampling["top_p"],
                                top_k=sampling.get("top_k") or -1, max_tokens=max_new_tokens, seed=seed)
    decode = _decoder(tokenizer, decode)
    return [[_completion(list(o.token_ids), stops, decode) for o in out.outputs]
            for out in llm.generate(prompts, params)]


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
    """
    greedy = [c for [c] in complete(model, tokenizer, prompts, max_new_tokens, batch_size, logits_processor, decode)]
    n = len(prompts)
    return {"accuracy": sum(score([c.text for c in greedy], answers)) / n,
            "mean_length": sum(c.length for c in greedy) / n, "n": n}


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
    """The held-out evaluation: greedy accuracy (pass@1), mean length and format rate; with k > 1 also pass@k.

    pass@k uses the unbiased estimator over `num_samples` (default k) samples per prompt, drawn with `sampling`
    (the model's training-time sampling: temperature, top_p, ...). A sample counts as correct when it scores 1.
    """
    greedy = [c for [c] in complete(model, tokenizer, prompts, max_new_tokens, batch_size, logits_processor, decode)]
    texts, n = [c.text for c in greedy], len(prompts)
    result = {"accuracy": sum(score(texts, answers)) / n, "mean_length": sum(c.length for c in greedy) / n, "n": n}
    if format_score is not None:
        result["format_rate"] = sum(format_score(texts, answers)) / n
    if k > 1:
        samples = num_samples or k
        sampled = complete(model, tokenizer, prompts, max_new_tokens, batch_size, logits_processor, decode,
                           sampling or {}, samples, seed)
        correct = score([c.text for row in sampled for c in row], [a for a in answers for _ in range(samples)])
        counts = [(samples, sum(s >= 1.0 for s in correct[i * samples : (i + 1) * samples])) for i in range(n)]
        result[f"pass@{k}"] = mean_pass_at_k(counts, k)
    return result
