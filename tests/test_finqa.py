"""FinQA: the data set's prompt from question plus report (a local copy with the hub data set's columns), the
`finqa_numerical_match` reward on hand-made completions, and a dry run that validates."""

from pathlib import Path

import pytest
from conftest import run_train
from hydra import compose, initialize_config_dir
from test_bad_input import assert_refused

from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.embedded.tiny_model import build_tokenizer
from rlvr_vocab.model.data import load_splits, to_prompts
from rlvr_vocab.model.rewards import REWARDS

CONF = Path(__file__).resolve().parent.parent / "conf"
FINQA = Path(__file__).resolve().parent / "fixtures" / "finqa"
register_configs()


def finqa_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(config_name="config", overrides=["dataset=finqa", f"dataset.path={FINQA}", *overrides]).dataset


def test_rows_become_prompts_of_the_report_and_the_question():
    ds = finqa_cfg()
    train, test = load_splits(ds, seed=0)
    assert (len(train), len(test)) == (4, 2)
    rows = to_prompts(train, build_tokenizer(), ds)
    assert set(rows.column_names) == {"prompt", "answer"}
    assert [r["answer"] for r in rows] == ["12.5%", "409", "-275", "yes"]
    prompt = rows[0]["prompt"]
    # Text before the table, the table as rows of cells, text after it, then the question.
    parts = ["all amounts are in millions .", "net revenue | $ 1,234.5 | $ 1,097.3", "higher shipment volumes",
             "Question: what was the percentage change in net revenue from 2018 to 2019?"]
    assert all(p in prompt for p in parts), prompt
    assert [prompt.index(p) for p in parts] == sorted(prompt.index(p) for p in parts)
    assert "with a number" in prompt  # the data set's system prompt


def test_without_context_columns_the_user_message_is_the_question_alone():
    ds = finqa_cfg("dataset.context_columns=[]")
    train, _ = load_splits(ds, seed=0)
    prompt = to_prompts(train, build_tokenizer(), ds)[0]["prompt"]
    assert "net revenue |" not in prompt and "Question:" not in prompt
    assert "what was the percentage change in net revenue" in prompt


def match(completion: str, gold: str, rel_tolerance: float = 0.01) -> float | None:
    return REWARDS["finqa_numerical_match"]([completion], answer=[gold], rel_tolerance=rel_tolerance)[0]


@pytest.mark.parametrize(("completion", "gold"), [
    ("<think>137.2 / 1097.3</think> The change is 12.5%.", "12.5%"),
    ("12.5 percent", "12.5%"),
    ("0.125", "12.5%"),  # the same number as a fraction
    ("12.5", "12.5%"),  # a percentage's points without the sign
    ("12.6%", "12.5%"),  # within 1% of the gold
    ("about 0.1250", "0.125"),
    ("$1,234.5", "1234.5"),
    ("1,234.5 million", "$ 1,234.5"),
    ("-275", "-275"),
    ("cash fell from 2019-2020 by -275.0", "-275"),
    ("<think>9,000 / 6,000</think>1.5", "1.5"),
    ("0", "0"),
])
def test_right(completion, gold):
    assert match(completion, gold) == 1.0


@pytest.mark.parametrize(("completion", "gold"), [
    ("13%", "12.5%"),  # 4% off
    ("<think>12.5%</think> on reflection 13%", "12.5%"),  # the answer part is what follows </think>
    ("1250", "12.5%"),
    ("12.5", "0.125"),  # a gold that is no percentage takes no points
    ("275", "-275"),  # the sign counts
    ("it fell", "-275"),  # no number
    ("", "1.5"),
    ("0.001", "0"),
])
def test_wrong(completion, gold):
    assert match(completion, gold) == 0.0


def test_the_tolerance_is_a_parameter_and_numberless_golds_are_skipped():
    assert match("13%", "12.5%", rel_tolerance=0.05) == 1.0
    assert match("12.51%", "12.5%", rel_tolerance=0.0) == 0.0
    assert match("yes", "yes") is None  # FinQA's yes/no questions: not this reward's to score


def test_a_finqa_experiment_validates_as_a_dry_run(experiments_root):
    result = run_train("dataset=finqa", f"dataset.path={FINQA}",
                       "reward=[finqa_numerical_match,match_format_approximately]", "dry_run=true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"data:            {FINQA}, split train" in result.stdout
    assert "finqa_numerical_match x1, match_format_approximately x1" in result.stdout
    assert not experiments_root.exists()


@pytest.mark.parametrize(("overrides", "key", "hint"), [
    (["dataset.context_columns=[pre_text,tables]"], "dataset.context_columns", "'tables' not in the train split"),
    (["dataset.context_columns=[pre_text,answer]"], "dataset.context_columns", "give its answer away"),
    (["reward=[finqa_numerical_match]", "reward.finqa_numerical_match.rel_tolerance=-0.1"],
     "reward.finqa_numerical_match.rel_tolerance", ">= 0"),
])
def test_bad_finqa_settings_are_refused_on_a_dry_run(overrides, key, hint, experiments_root):
    assert_refused(run_train("dataset=finqa", f"dataset.path={FINQA}", *overrides, "dry_run=true"), key, hint)
    assert not experiments_root.exists()
