"""What the reasoning vocabulary costs: tiny_qwen3 with and without 75,000 added rows, on this CPU.

Generation tokens/s (greedy, a fixed number of new tokens), the time of one training update (forward, backward,
AdamW step on a fixed batch) and the memory the extension adds to weights, gradients and optimizer state (summed
from the tensors themselves). Both models are measured in the same process, interleaved: the ratios are the figures.
`paper_estimate()` gives the same for Qwen3-0.6B in bf16 on one GPU, from its shapes.
"""

import time

import torch as th
from loguru import logger

from rlvr_vocab.bench.common import Context, Figure, interleave, median, median_ratio

SIZE = 75_000
BATCH, PROMPT, NEW_TOKENS, TRAIN_LEN = 8, 32, 32, 64
# Qwen3-0.6B (its config.json and model card): hidden 1024, 151,936 embedding rows, tied embeddings, 0.44B
# non-embedding parameters.
QWEN3_06B = {"hidden": 1024, "rows": 151_936, "params": 440_000_000 + 151_936 * 1024}


def _models():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlvr_vocab.embedded.tiny_qwen3 import ensure_tiny_qwen3
    from rlvr_vocab.model.data import cache_dir
    from rlvr_vocab.reasoning_vocab.config import ReasoningVocabConfig
    from rlvr_vocab.reasoning_vocab.surgery import apply_reasoning_vocab

    path = ensure_tiny_qwen3(cache_dir())
    base = AutoModelForCausalLM.from_pretrained(path, dtype=th.float32)
    extended = AutoModelForCausalLM.from_pretrained(path, dtype=th.float32)
    apply_reasoning_vocab(extended, AutoTokenizer.from_pretrained(path), ReasoningVocabConfig(size=SIZE))
    return base, extended


def _tokens_per_s(model, prompts: th.Tensor) -> float:
    start = time.perf_counter()
    with th.no_grad():
        model.generate(prompts, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                       pad_token_id=0)
    return BATCH * NEW_TOKENS / (time.perf_counter() - start)


def _update_s(model, optimizer, batch: th.Tensor) -> float:
    start = time.perf_counter()
    loss = model(batch, labels=batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=False)
    return time.perf_counter() - start


def _training_bytes(model, optimizer) -> int:
    """Weights + gradients + optimizer state, as held in memory during training."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    total += sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    for state in optimizer.state.values():
        total += sum(v.numel() * v.element_size() for v in state.values() if th.is_tensor(v) and v.dim() > 0)
    return total


def paper_estimate(added_rows: int, hidden: int = QWEN3_06B["hidden"], rows: int = QWEN3_06B["rows"],
                   params: int = QWEN3_06B["params"], bytes_per_param: int = 2) -> dict[str, float]:
    """The extension's cost for a tied-embedding model trained in bf16 (weights, gradients and AdamW's two moments
    in bf16, as the Trainer keeps them for a bf16-loaded model), from its shapes alone."""
    added = added_rows * hidden
    return {
        "added_params": added,
        "added_share": added / params,
        "training_gb": added * bytes_per_param * 4 / 1e9,  # weights, gradients, exp_avg, exp_avg_sq
        "logits_factor": (rows + added_rows) / rows,  # LM-head FLOPs and logits memory per token
        # Per token a forward pass costs ~2 FLOPs per parameter; the LM head (tied) is the embedding matrix again.
        "flops_factor": (params + added) / params,
    }


def run(ctx: Context) -> list[Figure]:
    th.manual_seed(0)
    base, extended = _models()
    added_rows = extended.get_input_embeddings().weight.shape[0] - base.get_input_embeddings().weight.shape[0]
    prompts = th.randint(0, 150_000, (BATCH, PROMPT))
    batch = th.randint(0, 150_000, (BATCH, TRAIN_LEN))
    optimizers = {m: th.optim.AdamW(m.parameters(), lr=1e-5) for m in (base, extended)}
    for model in (base, extended):  # warm-up, and the optimizer state exists before it is measured
        _update_s(model, optimizers[model], batch)
        _tokens_per_s(model, prompts)
    tokens = interleave(ctx.repeats, {"base": lambda: _tokens_per_s(base, prompts),
                                      "extended": lambda: _tokens_per_s(extended, prompts)})
    updates = interleave(ctx.repeats, {"base": lambda: _update_s(base, optimizers[base], batch),
                                       "extended": lambda: _update_s(extended, optimizers[extended], batch)})
    memory = {m: _training_bytes(m, optimizers[m]) for m in (base, extended)}
    paper = paper_estimate(added_rows)
    logger.info(f"Qwen3-0.6B estimate: {paper}")
    return [
        Figure("tiny_qwen3 generation with 75,000 added rows", median(tokens["extended"]), "tokens/s",
               baseline=median(tokens["base"]), baseline_name="without", samples=ctx.repeats,
               ratio=median_ratio(tokens["extended"], tokens["base"]),
               note=f"greedy, {BATCH} sequences x {NEW_TOKENS} new tokens, CPU"),
        Figure("tiny_qwen3 training update with 75,000 added rows", median(updates["extended"]), "s",
               baseline=median(updates["base"]), baseline_name="without", samples=ctx.repeats,
               ratio=median_ratio(updates["extended"], updates["base"]),
               note=f"forward + backward + AdamW, {BATCH} x {TRAIN_LEN} tokens, CPU"),
        Figure("tiny_qwen3 training memory with 75,000 added rows", memory[extended] / 1e6, "MB",
               baseline=memory[base] / 1e6, baseline_name="without", ratio=memory[extended] / memory[base],
               note=f"weights + gradients + AdamW state, fp32; +{added_rows:,} rows of 64 (padded to 64)"),
        Figure("Qwen3-0.6B bf16, estimated: memory the extension adds", paper["training_gb"], "GB",
               note=f"+{paper['added_params'] / 1e6:.1f}M parameters ({paper['added_share']:.1%}): weights, "
                    f"gradients and AdamW moments in bf16; logits and LM-head FLOPs per token x"
                    f"{paper['logits_factor']:.2f}, forward FLOPs per token x{paper['flops_factor']:.2f}"),
    ]
