"""Data set loading and prompt mapping on local copies with the real data sets' columns and layouts."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.embedded.tiny_model import build_tokenizer
from rlvr_vocab.model.data import gold_answer, load_splits, to_prompts

CONF = Path(__file__).resolve().parent.parent / "conf"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
register_configs()


def dataset_cfg(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(config_name="config", overrides=[f"dataset={name}", *overrides]).dataset


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_gsm8k_hub_layout_with_config_and_hash_answers(tokenizer):
    ds = dataset_cfg("gsm8k", f"dataset.path={FIXTURES / 'gsm8k'}")
    train, test = load_splits(ds, seed=0)
    assert (len(train), len(test)) == (3, 2)
    rows = to_prompts(train, tokenizer, ds)
    assert set(rows.column_names) == {"prompt", "answer"}
    assert [r["answer"] for r in rows] == ["72", "10", "2400"]
    assert "Natalia sold clips" in rows[0]["prompt"]
    assert rows[0]["prompt"].rstrip().endswith("assistant")  # chat template's generation prompt


def test_deepscaler_carves_a_held_out_split_from_train(tokenizer):
    ds = dataset_cfg("deepscaler", f"dataset.path={FIXTURES / 'deepscaler'}", "dataset.test_size=2")
    train, test = load_splits(ds, seed=0)
    assert (len(train), len(test)) == (4, 2)
    assert not set(train["problem"]) & set(test["problem"])
    again_train, _ = load_splits(ds, seed=0)
    assert list(again_train["problem"]) == list(train["problem"])  # the split follows the seed
    rows = to_prompts(test, tokenizer, ds)
    assert set(rows.column_names) == {"prompt", "answer"}
    assert "reason step by step" in rows[0]["prompt"]  # the data set's system prompt


def test_math500_test_only_split(tokenizer):
    """MATH-500 has one split: as a training set its held-out rows are carved out of it, never shared."""
    ds = dataset_cfg("math500", f"dataset.path={FIXTURES / 'math500'}", "dataset.test_size=1")
    train, test = load_splits(ds, seed=0)
    assert (len(train), len(test)) == (2, 1)
    assert not set(train["problem"]) & set(test["problem"])
    rows = to_prompts(train, tokenizer, ds) if "26000" in str(train["answer"]) else to_prompts(test, tokenizer, ds)
    assert "26000" in [r["answer"] for r in rows]


def test_local_jsonl_file_and_sample_limits(tmp_path, tokenizer):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(f'{{"q": "{i}+1", "a": "{i + 1}"}}\n' for i in range(20)))
    ds = dataset_cfg("arithmetic", f"dataset.path={data}", "dataset.embedded=null", "dataset.test_split=null",
                     "dataset.test_size=5", "dataset.question_column=q", "dataset.answer_column=a",
                     "dataset.max_train_samples=7")
    train, test = load_splits(ds, seed=3)
    assert (len(train), len(test)) == (7, 5)


def test_missing_column_names_the_mapping_key(tokenizer):
    ds = dataset_cfg("gsm8k", f"dataset.path={FIXTURES / 'gsm8k'}", "dataset.question_column=problem")
    with pytest.raises(Exception, match="dataset.question_column"):
        load_splits(ds, seed=0)


@pytest.mark.parametrize("raw,fmt,gold", [
    ("steps\n#### 1,234", "gsm8k", "1234"), ("#### -5", "gsm8k", "-5"), (" \\frac{1}{2} ", "plain", "\\frac{1}{2}"),
])
def test_gold_answer_extraction(raw, fmt, gold):
    assert gold_answer(raw, fmt) == gold


def test_embedded_arithmetic_is_generated_from_its_seed(tokenizer):
    ds = dataset_cfg("arithmetic", "dataset.embedded.n_test=20")
    a_train, a_test = load_splits(ds, seed=0)
    assert list(load_splits(ds, seed=5)[0]["question"]) == list(a_train["question"])  # not the run's seed
    b_train, _ = load_splits(dataset_cfg("arithmetic", "dataset.embedded.n_test=20", "dataset.embedded.seed=1"),
                             seed=0)
    assert len(a_test) == 20 and set(a_train.column_names) >= {"question", "answer"}
    assert list(a_train["question"])[:20] != list(b_train["question"])[:20]
