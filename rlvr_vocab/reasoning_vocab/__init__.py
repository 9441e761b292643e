"""Reasoning vocabulary: N added token ids, each mirroring a regular base token, for the model to reason with.

Modes: `free` lets the model use reasoning tokens anywhere; `think_only` allows them only inside `<think>...</think>`,
enforced at sampling time. Rewards always see the completion in base text, so a mirrored completion earns exactly
what its base version earns.

Modules, one concern each:
  config    the `model.reasoning_vocab` schema and its checks (free of torch: the CLI imports it on every call)
  tokens    the id mapping (`ReasoningVocab`) and token maths: base text, the think span, usage shares
  surgery   adding the vocabulary to a model and tokenizer (`apply_reasoning_vocab`), finding it on reload
  logits    the generation logits processors a mode needs (`think_only`)
  rewards   reward wrappers that feed TRL rewards base text
  trainer   `ReasoningVocabGRPOTrainer`, the one place that overrides TRL's private API
"""
