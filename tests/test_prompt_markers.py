"""The prompt group's markers: one file changes what the system prompt asks for and what the format rewards accept."""

from pathlib import Path

import pytest
from conftest import run_train
from hydra import compose, initialize_config_dir
from test_bad_input import assert_refused

from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.embedded.tiny_model import build_tokenizer
from rlvr_vocab.model.data import load_splits, to_prompts
from rlvr_vocab.model.markers import check_markers
from rlvr_vocab.model.rewards import REWARDS, build_reward_funcs

CONF = Path(__file__).resolve().parent.parent / "conf"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
register_configs()

THINK = "<think>add 7 and 5</think>12"
GEMMA = "<start_working_out>add 7 and 5<end_working_out><SOLUTION>12</SOLUTION>"
GEMMA_MARKERS = {"reasoning_start": "<start_working_out>", "reasoning_end": "<end_working_out>",
                 "solution_start": "<SOLUTION>", "solution_end": "</SOLUTION>"}


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(config_name="config", overrides=[
            "dataset=gsm8k", f"dataset.path={FIXTURES / 'gsm8k'}", "reward=[format,match_format_approximately]",
            *overrides])


def scores(cfg, completion: str) -> dict[str, float]:
    funcs, _ = build_reward_funcs(cfg.reward)
    return {f.__name__: f(completions=[completion], answer=["12"])[0] for f in funcs}


def test_the_default_group_is_the_think_markers_and_says_them_in_the_system_prompt():
    cfg = composed()
    assert (cfg.prompt.reasoning_start, cfg.prompt.reasoning_end, cfg.prompt.solution_start) == (
        "<think>", "</think>", None)
    assert cfg.dataset.system_prompt == ("Solve the problem step by step. Reason inside <think>...</think>, then give "
                                         "the final answer after </think>.")
    assert scores(cfg, THINK) == {"format": 1.0, "match_format_approximately": 1.0}
    assert scores(cfg, GEMMA) == {"format": 0.0, "match_format_approximately": -1.0}


def test_changing_the_group_changes_the_system_prompt_and_what_the_format_rewards_accept():
    cfg = composed("prompt=gemma")
    for marker in GEMMA_MARKERS.values():
        assert marker in cfg.dataset.system_prompt
    assert "<think>" not in cfg.dataset.system_prompt
    assert scores(cfg, GEMMA) == {"format": 1.0, "match_format_approximately": 2.0}
    assert scores(cfg, THINK) == {"format": 0.0, "match_format_approximately": -2.0}
    # The chat each row becomes carries the group's instruction.
    train, _ = load_splits(cfg.dataset, seed=0)
    rows = to_prompts(train, build_tokenizer(), cfg.dataset)
    assert "<SOLUTION>" in rows[0]["prompt"] and "Natalia sold clips" in rows[0]["prompt"]


def test_one_marker_overridden_follows_into_the_system_prompt_and_the_rewards():
    cfg = composed("prompt.reasoning_end='</reasoning>'")
    assert "after </reasoning>" in cfg.dataset.system_prompt
    assert scores(cfg, "<think>add</think>12")["format"] == 0.0
    assert scores(cfg, "<think>add</reasoning>12")["format"] == 1.0


def strict(completion: str, **markers) -> float:
    return REWARDS["format"]([completion], answer=["12"], **markers)[0]


@pytest.mark.parametrize("completion", [
    GEMMA,
    " \n<start_working_out>\nadd\n<end_working_out>\n\n<SOLUTION> 12 </SOLUTION>\n",
])
def test_strict_format_with_solution_markers_right(completion):
    assert strict(completion, **GEMMA_MARKERS) == 1.0


@pytest.mark.parametrize("completion", [
    "<start_working_out>add<end_working_out>12",  # no solution markers
    "<start_working_out>add<end_working_out>So: <SOLUTION>12</SOLUTION>",  # text before the solution
    "<start_working_out>add<end_working_out><SOLUTION>12</SOLUTION> done",  # text after it
    "<start_working_out>add<end_working_out><SOLUTION> </SOLUTION>",  # an empty solution
    "<start_working_out><end_working_out><SOLUTION>12</SOLUTION>",  # no working out
    "<start_working_out>add<end_working_out><SOLUTION>12</SOLUTION><SOLUTION>12</SOLUTION>",  # twice
    "<start_working_out>add <SOLUTION>12</SOLUTION><end_working_out>",  # solution inside the working out
    "<SOLUTION>12</SOLUTION><start_working_out>add<end_working_out>",  # out of order
])
def test_strict_format_with_solution_markers_wrong(completion):
    assert strict(completion, **GEMMA_MARKERS) == 0.0


def approximate(completion: str, **markers) -> float:
    return REWARDS["match_format_approximately"](
        [completion], answer=["12"], **markers, once_reward=0.5, missing_reward=-0.25, repeated_reward=-1.0)[0]


@pytest.mark.parametrize(("completion", "expected"), [
    (GEMMA, 2.0),  # four markers once each
    ("<start_working_out>add<end_working_out>12", 0.5 + 0.5 - 0.25 - 0.25),  # the solution markers missing
    ("<start_working_out>add<end_working_out><SOLUTION>1</SOLUTION><SOLUTION>2</SOLUTION>", 1.0 - 2.0),  # repeats
    ("So: <SOLUTION>12</SOLUTION> <end_working_out>", 1.5 - 0.25),  # partial credit, whatever the order
    ("", -1.0),
])
def test_approximate_format_credits_each_marker_once_and_penalises_repeats(completion, expected):
    assert approximate(completion, **GEMMA_MARKERS) == pytest.approx(expected)


def test_approximate_format_counts_only_the_markers_in_use():
    think = {"reasoning_start": "<think>", "reasoning_end": "</think>", "solution_start": None, "solution_end": None}
    assert approximate("<think>a</think>12", **think) == 1.0
    assert approximate("<think>a</think></think>12", **think) == 0.5 - 1.0


@pytest.mark.parametrize(("change", "key", "problem"), [
    ({"reasoning_start": ""}, "prompt.reasoning_start", "non-empty"),
    ({"reasoning_end": "  "}, "prompt.reasoning_end", "non-empty"),
    ({"solution_start": ""}, "prompt.solution_start", "non-empty"),
    ({"solution_end": None}, "prompt.solution_end", "its pair"),
    ({"reasoning_end": "<SOLUTION>"}, "prompt.solution_start", "the same as prompt.reasoning_end"),
    ({"solution_start": "<end_working_out>x"}, "prompt.solution_start", "holds the other"),
])
def test_markers_must_be_non_empty_paired_and_distinct(change, key, problem):
    with pytest.raises(ConfigError) as info:
        check_markers("prompt", {**GEMMA_MARKERS, **change})
    assert info.value.where == key and problem in str(info.value)


@pytest.mark.parametrize(("overrides", "key", "hint"), [
    (["prompt.reasoning_end='<think>'"], "prompt.reasoning_end", "distinct"),
    (["prompt.solution_start='<answer>'"], "prompt.solution_end", "both solution markers"),
    (["prompt.reasoning_start="], "prompt.reasoning_start", "non-empty"),
    # A reward's own copy of the markers is held to the same rules, named where it was set.
    (["reward.format.solution_start='<answer>'"], "reward.format.solution_end", "both solution markers"),
])
def test_bad_markers_are_refused_on_a_dry_run(overrides, key, hint, experiments_root):
    assert_refused(run_train(*overrides, "dry_run=true"), key, hint)
    assert not experiments_root.exists()


def test_the_gemma_group_validates_as_a_dry_run(experiments_root):
    result = run_train("prompt=gemma", "reward=[accuracy,format,match_format_approximately]", "dry_run=true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "match_format_approximately x1" in result.stdout
