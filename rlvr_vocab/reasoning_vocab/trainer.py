"""The one place that overrides TRL's private API: `ReasoningVocabGRPOTrainer`.

GRPOTrainer offers no hook for a logits processor in generation, for rewarding base text, or for logging the
reasoning-token shares, so this subclass overrides three private methods (`_generate_single_turn`, `_generate`,
`_generate_and_score_completions`) and reads private state (`_tokenizer`, `_metrics`, `_logs`, `model_wrapped`).
`tests/test_trl_private_api.py` fails loudly when a TRL release changes any of them.
"""

import functools
from contextlib import contextmanager

import torch as th
from accelerate.utils import gather_object
from trl import GRPOTrainer

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.reasoning_vocab.config import WHERE, check_mode
from rlvr_vocab.reasoning_vocab.logits import generation_logits_processors
from rlvr_vocab.reasoning_vocab.rewards import base_text_rewards
from rlvr_vocab.reasoning_vocab.tokens import ReasoningVocab, shares, think_token_ids

# What the subclass relies on: method -> its parameters after `self`, as TRL 1.16 defines them.
OVERRIDDEN = {
    "_generate_single_turn": ["prompt_ids", "images", "multimodal_fields", "num_generations", "has_tool_images"],
    "_generate": ["prompts"],
    "_generate_and_score_completions": ["inputs"],
}
PRIVATE_ATTRIBUTES = ("_tokenizer", "_metrics", "_logs", "model_wrapped")


@contextmanager
def _generate_with(model, processors):
    """Make `model.generate` pass `processors`: TRL calls `unwrapped_model.generate(...)` with no hook for them."""
    model.generate = functools.partial(model.generate, logits_processor=processors)
    try:
        yield
    finally:
        del model.generate


def _check_generation_path(rv: ReasoningVocab, args, rollout_func) -> None:
    """The mode must be enforceable by the generation TRL will use."""
    check_mode(rv.mode, use_vllm=bool(args is not None and args.use_vllm))
    custom = rollout_func is not None or (args is not None and args.use_transformers_continuous_batching)
    if rv.mode == "think_only" and custom:
        raise ConfigError(f"{WHERE}.mode", "think_only is enforced only in plain transformers generation",
                          "drop rollout_func / use_transformers_continuous_batching, or use mode=free")


class ReasoningVocabGRPOTrainer(GRPOTrainer):
    """GRPOTrainer for a model with a reasoning vocabulary.

    Rewards see base text; `think_only` is enforced in transformers generation; the reasoning-token shares are
    logged per step as `reasoning_vocab/share`, `.../share_in_think` and `.../share_outside_think`.
    """

    def __init__(self, *, reasoning_vocab: ReasoningVocab, reward_funcs, processing_class, **kwargs):
        _check_generation_path(reasoning_vocab, kwargs.get("args"), kwargs.get("rollout_func"))
        funcs = reward_funcs if isinstance(reward_funcs, list) else [reward_funcs]
        super().__init__(reward_funcs=base_text_rewards(funcs, reasoning_vocab, processing_class),
                         processing_class=processing_class, **kwargs)
        self.reasoning_vocab = reasoning_vocab
        self._think_ids = think_token_ids(self._tokenizer)
        self._rv_processors = generation_logits_processors(reasoning_vocab, self._tokenizer)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        args = (prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        if not self._rv_processors:
            return super()._generate_single_turn(*args)
        # The very object TRL's unwrap_model_for_generation yields and calls `.generate` on
        with _generate_with(self.accelerator.unwrap_model(self.model_wrapped), self._rv_processors):
            return super()._generate_single_turn(*args)

    def _generate(self, prompts: list):
        output = super()._generate(prompts)
        prompt_ids, completion_ids = output[0], output[1]
        # Logged completions read in base text; the raw ones, reasoning tokens marked, go beside them.
        self._rv_texts = (
            [self.reasoning_vocab.decode_to_base(ids, self._tokenizer, skip_special_tokens=True)
             for ids in completion_ids],
            [self.reasoning_vocab.mark(ids, self._tokenizer) for ids in completion_ids],
        )
        counts = self.reasoning_vocab.token_counts(completion_ids, *self._think_ids, prompt_ids=prompt_ids)
        counts = th.tensor(counts, device=self.accelerator.device)
        total = self.accelerator.gather(counts).view(-1, len(counts)).sum(dim=0).tolist()
        mode = "train" if self.model.training else "eval"
        for key, value in shares(total).items():
            self._metrics[mode][f"reasoning_vocab/{key}"].append(value)
        return output

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        base, marked = (gather_object(texts) for texts in self._rv_texts)
        logged = self._logs["completion"]
        start = len(logged) - len(base)  # this step's completions were appended last
        for i, text in enumerate(base):
            logged[start + i] = text
        self._logs["extra"]["raw_completion"].extend(marked)
        return output
