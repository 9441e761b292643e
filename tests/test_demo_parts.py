"""Fast checks of the offline demo's ingredients: data set, tiny model and tokenizer, greedy evaluation."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: nothing may be downloaded

import pytest
import torch as th
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.embedded.arithmetic import read_jsonl, write_arithmetic_dataset
from rlvr_vocab.embedded.tiny_model import build_tokenizer, ensure_tiny_model, render_completion, render_prompt
from rlvr_vocab.eval.generation import evaluate, greedy_accuracy

SYSTEM = "Add the numbers."


def _dataset(path, seed=0):
    return write_arithmetic_dataset(path, seed=seed, n_train=200, n_test=10, max_operand=9)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    data_dir = _dataset(root / "data")
    return ensure_tiny_model(
        root / "models", data_dir, seed=0, system_prompt=SYSTEM, hidden_size=32, num_layers=1, warm_start_steps=3,
        warm_start_lr=1e-3,
    )


def test_dataset_is_deterministic_per_seed(tmp_path):
    first, again, other = _dataset(tmp_path / "a"), _dataset(tmp_path / "b"), _dataset(tmp_path / "c", seed=1)
    for split in ("train.jsonl", "test.jsonl"):
        assert (first / split).read_text() == (again / split).read_text()
    assert (first / "train.jsonl").read_text() != (other / "train.jsonl").read_text()


def test_dataset_splits_are_disjoint_with_correct_answers(tmp_path):
    out = _dataset(tmp_path / "data")
    train, test = read_jsonl(out / "train.jsonl"), read_jsonl(out / "test.jsonl")
    assert (len(train), len(test)) == (200, 10)
    assert {row["question"] for row in train}.isdisjoint(row["question"] for row in test)
    for row in train + test:
        assert set(row) == {"question", "answer"}
        a, b = row["question"].split("+")
        assert row["answer"] == str(int(a) + int(b))


def test_dataset_cache_is_kept_and_checked(tmp_path):
    out = _dataset(tmp_path / "data")
    before = (out / "train.jsonl").stat().st_mtime_ns
    assert _dataset(tmp_path / "data") == out
    assert (out / "train.jsonl").stat().st_mtime_ns == before
    with pytest.raises(ConfigError):
        _dataset(tmp_path / "data", seed=1)


def test_tokenizer_round_trips_one_token_per_character():
    tokenizer = build_tokenizer()
    text = "Add 12+30 = 42?\n<think>x</think>ok"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert len(tokenizer("a b\n~", add_special_tokens=False)["input_ids"]) == 5
    assert tokenizer.decode(tokenizer("é", add_special_tokens=False)["input_ids"]) == "é"
    assert tokenizer.padding_side == "left" and tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_chat_template_ends_with_generation_prompt():
    tokenizer = build_tokenizer()
    prompt = render_prompt(tokenizer, SYSTEM, "3+5")
    assert prompt == f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n3+5<|im_end|>\n<|im_start|>assistant\n"
    assert render_completion("3+5", "8") == "<think>3+5</think>8"


def test_tiny_model_loads_with_auto_classes_and_is_cached(tiny_model_dir, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "qwen2" and model.config.vocab_size == len(tokenizer)
    text = render_prompt(tokenizer, SYSTEM, "3+5") + render_completion("3+5", "8")
    assert tokenizer(text)["input_ids"] == build_tokenizer()(text)["input_ids"]
    # skip_special_tokens=True (TRL's completion decoding) keeps the think tags
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True).endswith("<think>3+5</think>8")

    built = {f.name: f.stat().st_mtime_ns for f in tiny_model_dir.iterdir()}
    again = ensure_tiny_model(
        tiny_model_dir.parent, _dataset(tmp_path / "data"), seed=0, system_prompt=SYSTEM, hidden_size=32,
        num_layers=1, warm_start_steps=3, warm_start_lr=1e-3,
    )
    assert again == tiny_model_dir and {f.name: f.stat().st_mtime_ns for f in again.iterdir()} == built


def test_greedy_accuracy_reports_fractions_and_restores_mode(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model.train()
    prompts = [render_prompt(tokenizer, SYSTEM, q) for q in ("1+2", "4+4", "9+0")]
    seen = []

    def score(completions, answers):
        seen.extend(completions)
        return [float(c.endswith(a)) for c, a in zip(completions, answers, strict=True)]

    result = greedy_accuracy(model, tokenizer, prompts, ["3", "8", "9"], score, max_new_tokens=6, batch_size=2)
    assert 0.0 <= result["accuracy"] <= 1.0 and result["n"] == 3
    assert 1.0 <= result["mean_length"] <= 6.0
    assert len(seen) == 3 and not any("<|im_end|>" in c or "<|endoftext|>" in c for c in seen)
    assert model.training


def test_evaluate_pass_at_k_is_seeded_and_leaves_training_rng_alone(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts = [render_prompt(tokenizer, SYSTEM, q) for q in ("1+2", "4+4", "9+0", "2+2")]
    answers = ["3", "8", "9", "4"]
    calls = []

    def first_prompt_right(completions, gold):
        # Per call: greedy (1 per prompt) or k samples per prompt, grouped by prompt.
        calls.append(len(completions))
        per_prompt = len(completions) // len(prompts)
        return [1.0 if i < per_prompt else 0.0 for i in range(len(completions))]

    def run(seed):
        return evaluate(model, tokenizer, prompts, answers, first_prompt_right, lambda c, a: [1.0] * len(c),
                        max_new_tokens=6, batch_size=3, k=2, num_samples=3, sampling={"temperature": 1.0}, seed=seed)

    rng = th.random.get_rng_state()
    result = run(seed=0)
    assert th.equal(rng, th.random.get_rng_state())
    assert calls == [4, 12]  # greedy, then 3 samples for each of the 4 prompts
    # Only the first prompt's 3 samples are right: pass@2 is 1 for it and 0 for the others.
    assert result["accuracy"] == 0.25 and result["pass@2"] == 0.25 and result["format_rate"] == 1.0
    assert result["n"] == 4 and 1.0 <= result["mean_length"] <= 6.0
    assert run(seed=0) == result


def test_concurrent_builders_of_one_model_build_it_once(tmp_path):
    """A sweep's array tasks starting on an empty cache: one builds, the others wait and load its copy."""
    import threading

    from rlvr_vocab.embedded.cached_build import ensure_built

    class Saved:
        def save_pretrained(self, path):
            (Path(path) / "config.json").write_text("{}")

    builds, second_called = [], threading.Event()

    def build():
        builds.append(threading.current_thread().name)
        second_called.wait(timeout=30)  # the other builder asks while this one builds
        return Saved(), Saved(), "a test model"

    results = {}

    def builder(name):
        results[name] = ensure_built(tmp_path, "m", {"x": 1}, build)

    first = threading.Thread(target=builder, args=("first",), name="first")
    first.start()
    while not builds:
        threading.Event().wait(0.01)
    second = threading.Thread(target=builder, args=("second",), name="second")
    second.start()
    second_called.set()
    first.join()
    second.join()
    assert builds == ["first"] and results["first"] == results["second"]
    assert (results["first"] / "config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name], "no half-written copy left behind"
