"""Reasoning vocabulary on the tiny model: row copies, mapping, rewards, think_only sampling, save/reload, GRPO."""

import asyncio
import functools
import json
import pickle

import pytest
import torch as th
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.embedded.tiny_model import build_model, build_tokenizer
from rlvr_vocab.reasoning_vocab.config import ReasoningVocabConfig, check_config, check_mode
from rlvr_vocab.reasoning_vocab.logits import ThinkOnlyLogitsProcessor, generation_logits_processors
from rlvr_vocab.reasoning_vocab.rewards import base_text_rewards
from rlvr_vocab.reasoning_vocab.surgery import apply_reasoning_vocab, load_reasoning_vocab, regular_ids
from rlvr_vocab.reasoning_vocab.tokens import think_token_ids

N = 20


def tiny(tied: bool = True, seed: int = 0):
    tokenizer = build_tokenizer()
    return build_model(tokenizer, hidden_size=32, num_layers=1, seed=seed, tie_embeddings=tied), tokenizer


def extended(tied: bool = True, **cfg):
    model, tokenizer = tiny(tied)
    rv = apply_reasoning_vocab(model, tokenizer, ReasoningVocabConfig(size=N, **cfg))
    return model, tokenizer, rv


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def mirrored(rv, ids: list[int]) -> list[int]:
    """`ids` with every mirrorable token written as its reasoning token."""
    to_rv = {b: rv.first_id + i for i, b in enumerate(rv.base_ids)}
    return [to_rv.get(i, i) for i in ids]


@pytest.mark.parametrize("tied", [True, False])
def test_new_rows_copy_base_rows_and_vocab_is_padded(tied):
    model, tokenizer = tiny(tied)
    n_base = len(tokenizer)
    rv = apply_reasoning_vocab(model, tokenizer, ReasoningVocabConfig(size=N))
    assert rv.first_id == n_base and list(rv.reasoning_ids) == list(range(n_base, n_base + N))
    assert rv.base_ids == regular_ids(build_tokenizer())[:N]
    assert len(tokenizer) == n_base + N
    inp, out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert inp.shape[0] == out.shape[0] == model.config.vocab_size and inp.shape[0] % 64 == 0
    assert (out is inp) == tied
    for weight in (inp, out):
        assert th.equal(weight[rv.first_id : rv.first_id + N], weight[rv.base_ids])
    # Reasoning tokens are plain (non-special) added tokens named by their base id
    assert tokenizer.convert_ids_to_tokens(rv.first_id + 3) == f"<|rv_{rv.base_ids[3]}|>"
    assert tokenizer.decode([rv.first_id], skip_special_tokens=True) == f"<|rv_{rv.base_ids[0]}|>"


def test_noise_makes_rows_close_not_equal():
    model, _, rv = extended(tied=False, init_noise_std=1e-3)
    for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        new, base = weight[rv.first_id : rv.first_id + N], weight[rv.base_ids]
        assert not th.equal(new, base)
        assert (new - base).abs().max() < 1e-2


def test_selections(tmp_path):
    regular = regular_ids(build_tokenizer())
    _, _, rv = extended(selection="all_regular_random", seed=3)
    _, _, again = extended(selection="all_regular_random", seed=3)
    assert rv.base_ids == again.base_ids != regular[:N] and set(rv.base_ids) <= set(regular)
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(regular[-N:]))
    _, _, rv = extended(selection="ids_file", ids_file=str(ids_file))
    assert rv.base_ids == regular[-N:]
    model, tokenizer = tiny()
    with pytest.raises(ConfigError, match="exceeds"):
        apply_reasoning_vocab(model, tokenizer, ReasoningVocabConfig(size=len(regular) + 1))
    ids_file.write_text(json.dumps([tokenizer.eos_token_id]))  # special: not mirrorable
    with pytest.raises(ConfigError, match="regular"):
        apply_reasoning_vocab(model, tokenizer, ReasoningVocabConfig(size=1, selection="ids_file",
                                                                     ids_file=str(ids_file)))


def test_mapping_round_trip():
    _, tokenizer, rv = extended()
    base = encode(tokenizer, '<think>!"#$ ab</think>!!') + [tokenizer.eos_token_id]
    ids = mirrored(rv, base)
    assert ids != base and rv.to_base_ids(ids) == base and rv.to_base_ids(th.tensor(ids)) == base
    for skip in (False, True):
        assert rv.decode_to_base(ids, tokenizer, skip) == tokenizer.decode(base, skip_special_tokens=skip)
    assert all(rv.is_reasoning(i) for i in rv.reasoning_ids) and not rv.is_reasoning(base[-1])
    assert rv.mark(ids, tokenizer) == '<think>⟨!"#$⟩ ab</think>⟨!!⟩<|im_end|>'


def test_stats():
    _, tokenizer, rv = extended()
    start, end = think_token_ids(tokenizer)
    r, b = rv.first_id, 100  # a reasoning and a base token
    completions = [[start, r, b, end, r, b], [r, r, end, b]]
    stats = rv.stats(completions, start, end)
    assert stats == {"share": 4 / 10, "share_in_think": 1 / 2, "share_outside_think": 3 / 5}
    # The second prompt ends inside an open <think>: its first tokens are inside the span
    stats = rv.stats(completions, start, end, prompt_ids=[[b], [b, start]])
    assert stats == {"share": 4 / 10, "share_in_think": 3 / 4, "share_outside_think": 1 / 3}
    assert rv.stats([[b]], start, end)["share_in_think"] != rv.stats([[b]], start, end)["share_in_think"]  # NaN


def answer_match(prompts, completions, completion_ids, *, answer, **kwargs):
    """1.0 when the text after `</think>` is exactly the gold answer."""
    return [float(c.rsplit("</think>", 1)[-1] == a) for c, a in zip(completions, answer, strict=True)]


async def async_answer_match(prompts, completions, completion_ids, **kwargs):
    return answer_match(prompts, completions, completion_ids, **kwargs)


def test_mirrored_completion_earns_the_base_reward():
    _, tokenizer, rv = extended()
    base = [encode(tokenizer, f"<think>{t}</think>{a}") + [tokenizer.eos_token_id]
            for t, a in [("1+1", "2"), ('"!"', "#"), ("x", "y")]]
    ids = [mirrored(rv, b) for b in base]
    assert ids[1] != base[1]
    answer = ["2", "#", "z"]
    partial = functools.partial(answer_match)
    partial.__name__ = "ignored by TRL"
    reward, async_reward = base_text_rewards([partial, async_answer_match], rv, tokenizer)

    def call(fn, completion_ids):
        # As TRL calls rewards: completions decoded with skip_special_tokens=True
        texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        return fn(prompts=[""] * 3, completions=texts, completion_ids=completion_ids, answer=answer, trainer_state=None)

    expected = call(answer_match, base)
    assert expected == [1.0, 1.0, 0.0]
    assert call(answer_match, ids) != expected  # unwrapped, the reward sees `<|rv_..|>` names
    assert call(reward, ids) == call(reward, base) == expected
    assert asyncio.run(call(async_reward, ids)) == expected
    assert reward.__name__ == "answer_match" and async_reward.__name__ == "async_answer_match"
    assert pickle.loads(pickle.dumps(reward))(prompts=[""], completions=["</think>2"], completion_ids=[ids[0]],
                                              answer=["2"]) == [1.0]


class Boost(LogitsProcessor):
    """Make reasoning tokens and the think markers likely, so an unenforced mode would show at once."""

    def __init__(self, rv, markers):
        self.rv, self.markers = rv, markers

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, self.rv.first_id : self.rv.first_id + self.rv.size] += 4.0
        scores[:, self.markers] += 3.0
        return scores


def test_think_only_sampling_keeps_reasoning_tokens_in_the_think_span():
    model, tokenizer, rv = extended(mode="think_only")
    start, end = think_token_ids(tokenizer)
    (think_only,) = generation_logits_processors(rv, tokenizer)
    assert isinstance(think_only, ThinkOnlyLogitsProcessor)
    prompts = ["<|im_start|>assistant\n", "<|im_start|>assistant\n<think>", "<think>a</think>"]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    used_inside = 0
    for seed in range(4):
        th.manual_seed(seed)
        out = model.generate(**batch, do_sample=True, max_new_tokens=24, eos_token_id=None,
                             logits_processor=LogitsProcessorList([Boost(rv, [start, end]), think_only]))
        for row in out.tolist():
            inside = False
            for position, token in enumerate(row):
                if position >= batch["input_ids"].shape[1]:
                    assert token < rv.first_id + rv.size, "an embedding padding id was sampled"
                    assert inside or not rv.is_reasoning(token), tokenizer.decode(row)
                    used_inside += rv.is_reasoning(token)
                if token in (start, end):
                    inside = token == start
    assert used_inside > 0  # the processor does not ban them inside the span
    assert not generation_logits_processors(extended()[2], tokenizer)  # free: nothing to enforce


def test_save_reload_keeps_the_vocabulary_and_apply_is_a_no_op(tmp_path):
    model, tokenizer, rv = extended(tied=False, selection="all_regular_random")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded_tokenizer) == len(tokenizer)
    assert th.equal(loaded.get_output_embeddings().weight, model.get_output_embeddings().weight)
    assert load_reasoning_vocab(loaded, loaded_tokenizer) == rv
    rows = loaded.get_input_embeddings().weight.shape[0]
    cfg = ReasoningVocabConfig(size=N, selection="all_regular_random")
    assert apply_reasoning_vocab(loaded, loaded_tokenizer, cfg) == rv
    assert len(loaded_tokenizer) == len(tokenizer) and loaded.get_input_embeddings().weight.shape[0] == rows
    # A base tokenizer beside the extended model gets the model's tokens, at the same ids
    base_tokenizer = build_tokenizer()
    assert apply_reasoning_vocab(loaded, base_tokenizer, ReasoningVocabConfig()) == rv
    assert base_tokenizer.convert_ids_to_tokens(list(rv.reasoning_ids)) == tokenizer.convert_ids_to_tokens(
        list(rv.reasoning_ids))
    with pytest.raises(ConfigError, match="already carries"):
        apply_reasoning_vocab(loaded, loaded_tokenizer, ReasoningVocabConfig(size=N + 1))
    plain_model, plain_tokenizer = tiny()
    assert load_reasoning_vocab(plain_model, plain_tokenizer) is None
    assert apply_reasoning_vocab(plain_model, plain_tokenizer, ReasoningVocabConfig()) is None


def test_check_mode_and_config(tmp_path):
    check_mode("think_only", use_vllm=False)
    check_mode("free", use_vllm=True)
    with pytest.raises(ConfigError) as error:
        check_mode("think_only", use_vllm=True)
    assert str(error.value).startswith("model.reasoning_vocab.mode: ") and "\n" not in str(error.value)
    bad = [
        ({"size": -1}, "size"),
        ({"size": 5, "selection": "best"}, "selection"),
        ({"size": 5, "mode": "sometimes"}, "mode"),
        ({"size": 5, "selection": "ids_file", "ids_file": str(tmp_path / "missing.json")}, "ids_file"),
    ]
    for fields, key in bad:
        with pytest.raises(ConfigError, match=f"^model.reasoning_vocab.{key}: "):
            check_config(ReasoningVocabConfig(**fields), use_vllm=False)
    check_config(ReasoningVocabConfig(mode="think_only"), use_vllm=True)  # size 0: off, nothing to enforce


def test_grpo_logs_reasoning_metrics(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig

    from rlvr_vocab.reasoning_vocab.trainer import ReasoningVocabGRPOTrainer

    model, tokenizer, rv = extended(mode="think_only")
    prompts = ["<|im_start|>assistant\n<think>", "<|im_start|>assistant\n<think>1"]
    dataset = Dataset.from_dict({"prompt": prompts, "answer": ["1", "2"]})
    args = GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=8,
        max_steps=2, logging_steps=1, report_to="none", use_cpu=True, save_strategy="no", bf16=False,
    )
    trainer = ReasoningVocabGRPOTrainer(model=model, reward_funcs=answer_match, args=args, train_dataset=dataset,
                                        processing_class=tokenizer, reasoning_vocab=rv)
    # Favour reasoning tokens and the markers before think_only filters, so a leak outside the span would show
    trainer._rv_processors.insert(0, Boost(rv, list(think_token_ids(tokenizer))))
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "reasoning_vocab/share" in entry]
    assert len(logs) == 2
    for entry in logs:
        assert entry["reasoning_vocab/share"] > 0.2 and entry["reasoning_vocab/share_in_think"] > 0.2
        assert entry["reasoning_vocab/share_outside_think"] in (0.0, None)  # None: no token outside
        assert "rewards/answer_match/mean" in entry
    assert any(entry["reasoning_vocab/share_outside_think"] == 0.0 for entry in logs)
    # Logged completions read in base text; the raw ones, reasoning tokens marked, are logged beside them.
    assert trainer._logs["completion"] and not any("<|rv_" in text for text in trainer._logs["completion"])
    assert any("⟨" in text for text in trainer._logs["extra"]["raw_completion"])
