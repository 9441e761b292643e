"""The generation logits processors a mode needs: `think_only` allows reasoning tokens only inside `<think>`."""

import torch as th
from transformers import LogitsProcessor, LogitsProcessorList

from rlvr_vocab.reasoning_vocab.tokens import ReasoningVocab, think_token_ids


class ThinkOnlyLogitsProcessor(LogitsProcessor):
    """Allow reasoning tokens only inside the open `<think>` span of each sequence (prompt included).

    Ids past the reasoning tokens (embedding padding) are never allowed: they are no tokens at all.
    """

    def __init__(self, rv: ReasoningVocab, think_start_id: int, think_end_id: int):
        self.first_id, self.end_id = rv.first_id, rv.first_id + rv.size
        self.think_start_id, self.think_end_id = think_start_id, think_end_id

    def __call__(self, input_ids: th.LongTensor, scores: th.FloatTensor) -> th.FloatTensor:
        # 1-based positions of each row's last <think> and </think> (0 if absent): open iff <think> is later
        position = th.arange(1, input_ids.shape[1] + 1, device=input_ids.device)
        last_start = ((input_ids == self.think_start_id) * position).amax(dim=1)
        last_end = ((input_ids == self.think_end_id) * position).amax(dim=1)
        inside = last_start > last_end
        vocab = th.arange(scores.shape[1], device=scores.device)
        reasoning = (vocab >= self.first_id) & (vocab < self.end_id)
        banned = (vocab >= self.end_id) | (reasoning & ~inside[:, None])
        return scores.masked_fill(banned, -float("inf"))


def generation_logits_processors(rv: ReasoningVocab | None, tokenizer) -> LogitsProcessorList:
    """The LogitsProcessorList `model.generate(..., logits_processor=...)` needs for the mode (empty for free)."""
    if rv is None or rv.mode == "free":
        return LogitsProcessorList()
    return LogitsProcessorList([ThinkOnlyLogitsProcessor(rv, *think_token_ids(tokenizer))])
