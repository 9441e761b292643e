"""Reward functions and their config: behaviour on right, wrong and odd completions."""

import functools
import math
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rlvr_vocab.config.schema import register_configs
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.model.rewards import REWARDS, build_reward_funcs, check_reward_config

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "reward"
LONG = 50_000

# Fixed here rather than read from the YAML, so tuning the YAML cannot break these tests.
THINK = {"reasoning_start": "<think>", "reasoning_end": "</think>", "solution_start": None, "solution_end": None}
PARAMS = {
    "accuracy": {},
    "format": THINK,
    "match_format_approximately": {**THINK, "once_reward": 0.5, "missing_reward": -0.5, "repeated_reward": -0.5},
    "finqa_numerical_match": {"rel_tolerance": 0.01},
    "reasoning_steps": {"n_steps": 3},
    "cosine": {
        "min_value_wrong": -1.0,
        "max_value_wrong": -0.5,
        "min_value_correct": 0.5,
        "max_value_correct": 1.0,
        "max_len": 100,
    },
    "repetition_penalty": {"ngram_size": 3, "max_penalty": -1.0},
    "numeric": {"correct_reward": 1.0, "close_reward": 0.5, "close_tolerance": 0.1, "wrong_reward": 0.0},
}


def score(name, completions, answers=None, **overrides):
    """Call a reward the way TRL does: keyword args, with extra columns it must ignore."""
    answers = answers if answers is not None else ["42"] * len(completions)
    params = {**PARAMS[name], **overrides}
    return REWARDS[name](
        prompts=["Q"] * len(completions),
        completions=completions,
        completion_ids=[[1, 2]] * len(completions),
        answer=answers,
        trainer_state=None,
        **params,
    )


def score1(name, completion, answer="42", **overrides):
    return score(name, [completion], [answer], **overrides)[0]


# ---------------------------------------------------------------------------------------------------
# accuracy


@pytest.mark.parametrize(
    ("completion", "gold"),
    [
        ("<think>maybe 41</think> The answer is \\boxed{42}.", "42"),
        ("42", "42"),
        ("I first got 7, then 42", "42"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("0.5", "\\frac{1}{2}"),
        ("The final answer is $\\frac{1}{2}$", "0.5"),
        ("\\boxed{\\sqrt{2}}", "\\sqrt{2}"),
        ("\\boxed{7}", "\\boxed{7}"),
        ("\\boxed{72}", "She sold 48 + 24 = 72 clips.\n#### 72"),
        ("\\boxed{1000}", "1,000"),
        ("答案是 \\boxed{42} ✓", "42"),
        ("blah " * (LONG // 5) + "\\boxed{42}", "42"),
    ],
)
def test_accuracy_right(completion, gold):
    assert score1("accuracy", completion, gold) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        "\\boxed{41}",
        "<think>it is 42</think> 41",  # only the final answer counts
        "<think>\\boxed{42}</think>",  # nothing after the reasoning
        "\\boxed{",
        "}}}{{{\\frac{",
        "",
        "🙂 ünïcödé",
        "x" * LONG,
        "1 + " * (LONG // 4),
    ],
)
def test_accuracy_wrong(completion):
    assert score1("accuracy", completion, "42") == 0.0


def test_accuracy_reads_latex_gold_whole():
    assert score("accuracy", ["\\boxed{2\\pi}", "\\boxed{2}"], ["2\\pi", "2\\pi"]) == [1.0, 0.0]
    assert score("accuracy", ["\\boxed{(1, 2)}", "\\boxed{2}"], ["(1, 2)", "(1, 2)"]) == [1.0, 0.0]


def test_accuracy_skips_empty_gold():
    assert score("accuracy", ["\\boxed{42}", "42"], ["", None]) == [None, None]


def test_accuracy_off_the_main_thread():
    # math-verify's signal-based timeout would raise here if not disabled.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(score1, "accuracy", "\\boxed{42}").result() == 1.0


# ---------------------------------------------------------------------------------------------------
# format


@pytest.mark.parametrize(
    "completion",
    [
        "<think>reasoning</think>answer",
        " \n<think>\nreasoning\n</think>\n\nThe answer is 42.",
        "<think>思考</think>答案",
        "<think>" + "x" * LONG + "</think>42",
    ],
)
def test_format_right(completion):
    assert score1("format", completion) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        "just an answer",
        "<think>reasoning</think>",  # no answer
        "<think>reasoning</think>  \n ",
        "<think></think>42",  # no reasoning
        "Sure! <think>reasoning</think>42",  # text before the reasoning
        "<think>a<think>b</think>42",
        "<think>a</think>42</think>",
        "<think>unclosed reasoning 42",
        "</think>42",
        "",
        "<think>" * (LONG // 7),
    ],
)
def test_format_wrong(completion):
    assert score1("format", completion) == 0.0


def test_format_called_bare_checks_the_think_markers():
    """As evaluation calls it (rlvr_vocab.eval): without the prompt group's markers."""
    assert REWARDS["format"](["<think>a</think>1", "<SOLUTION>1</SOLUTION>"], answer=["1", "1"]) == [1.0, 0.0]


# ---------------------------------------------------------------------------------------------------
# reasoning_steps


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("Step 1: add.\nStep 2: carry.\nStep 3: done.", 1.0),
        ("1. add\n2. carry", 2 / 3),
        ("- add\n* carry\n• done\n- check", 1.0),  # capped at 1
        ("First, add. Next, carry.", 2 / 3),
        ("Second, carry. Finally, done.", 2 / 3),
        ("x = 3.5 and a - b * c", 0.0),  # numbers and operators mid-line are no steps
        ("", 0.0),
        ("ステップ\n1. 足す", 1 / 3),
        ("Step 1: " * (LONG // 8), 1.0),
        ("x" * LONG, 0.0),
    ],
)
def test_reasoning_steps(completion, expected):
    assert score1("reasoning_steps", completion) == pytest.approx(expected)


def test_reasoning_steps_scale_with_n_steps():
    assert score1("reasoning_steps", "Step 1: a", n_steps=1) == 1.0
    assert score1("reasoning_steps", "Step 1: a", n_steps=4) == 0.25


# ---------------------------------------------------------------------------------------------------
# cosine


def padded(text, length):
    return text + " " * (length - len(text))


def test_cosine_short_right_beats_long_right():
    short, long = score("cosine", ["\\boxed{42}", padded("\\boxed{42}", 90)])
    assert 0.5 <= long < short <= 1.0


def test_cosine_short_wrong_loses_most():
    short, long = score("cosine", ["\\boxed{41}", padded("\\boxed{41}", 90)])
    assert -1.0 <= short < long <= -0.5


def test_cosine_values_at_ends_and_middle():
    half_right, half_wrong = score("cosine", [padded("\\boxed{42}", 50), padded("\\boxed{41}", 50)])
    assert half_right == pytest.approx(0.75)
    assert half_wrong == pytest.approx(-0.75)
    assert score1("cosine", "") == pytest.approx(-1.0)  # empty: wrong at length 0


def test_cosine_past_max_len_stays_at_long_bound():
    # Length counts characters; beyond max_len the reward does not climb back up.
    right, wrong = score("cosine", [padded("\\boxed{42}", LONG), "x" * LONG])
    assert right == pytest.approx(0.5)
    assert wrong == pytest.approx(-0.5)


def test_cosine_malformed_and_unicode():
    assert score1("cosine", "\\boxed{") < 0
    assert score1("cosine", "答え \\boxed{42}") > 0.9
    assert score1("cosine", "\\boxed{42}", "") is None


# ---------------------------------------------------------------------------------------------------
# repetition_penalty


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("the quick brown fox jumps over the lazy dog", 0.0),
        ("a b c a b c a b c", -(1 - 3 / 7)),  # 7 trigrams, 3 distinct
        ("A b C a B c", -(1 - 3 / 4)),  # case does not hide a repeat
        ("猫 犬 鳥 猫 犬 鳥", -(1 - 3 / 4)),
        ("a b", 0.0),  # shorter than one n-gram
        ("", 0.0),
        ("spam " * (LONG // 5), -(1 - 1 / (LONG // 5 - 2))),
    ],
)
def test_repetition_penalty(completion, expected):
    assert score1("repetition_penalty", completion) == pytest.approx(expected)


def test_repetition_penalty_scales_with_max_penalty():
    full = score1("repetition_penalty", "a b c a b c a b c")
    assert score1("repetition_penalty", "a b c a b c a b c", max_penalty=-0.5) == pytest.approx(full / 2)


# ---------------------------------------------------------------------------------------------------
# numeric


@pytest.mark.parametrize(
    ("completion", "gold", "expected"),
    [
        ("So she has 72 clips.", "#### 72", 1.0),
        ("It costs $1,234.", "1234", 1.0),
        ("<think>5 + 67</think> 72", "72", 1.0),
        ("72.0", "72", 1.0),
        ("The loss is -3", "-3", 1.0),
        ("答案：72", "72", 1.0),
        ("x " * (LONG // 2) + "72", "72", 1.0),
        ("about 70", "72", 0.5),  # within 10%
        ("about 80", "72", 0.0),  # 11% off
        ("73 at first, then 100", "72", 0.0),  # the last number counts
        ("<think>72</think> no idea", "72", 0.0),  # the reasoning does not count
        ("no number", "72", 0.0),
        ("", "72", 0.0),
        ("9" * LONG, "72", 0.0),
        ("1000", "$1,000", 1.0),
    ],
)
def test_numeric(completion, gold, expected):
    assert score1("numeric", completion, gold) == expected


def test_numeric_uses_configured_values_and_skips_numberless_gold():
    assert score1("numeric", "no number", "72", wrong_reward=-1.0) == -1.0
    assert score1("numeric", "71", "72", close_reward=0.25) == 0.25
    assert score1("numeric", "72", "no number") is None


# ---------------------------------------------------------------------------------------------------
# all rewards


ODD = [None, 123, {"content": None}, [], [{"role": "assistant"}], "\x00\x01", "\ud800", "<think>"]


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_odd_completions_never_raise(name):
    rewards = score(name, ODD)
    assert len(rewards) == len(ODD)
    assert all(isinstance(r, float) and math.isfinite(r) for r in rewards)


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_conversational_form_reads_the_last_message(name):
    text = "<think>Step 1: a\nStep 2: b</think> so 42 42 42 42 is \\boxed{42}"
    messages = [{"role": "assistant", "content": "draft 41"}, {"role": "assistant", "content": text}]
    assert score(name, [messages]) == score(name, [text])


# ---------------------------------------------------------------------------------------------------
# config


def yaml_config(name):
    """The reward's file beside the default prompt group, whose markers the format rewards read."""
    prompt = OmegaConf.load(CONF_DIR.parent / "prompt" / "think.yaml")
    return OmegaConf.merge({"prompt": prompt, "reward": OmegaConf.load(CONF_DIR / f"{name}.yaml")}).reward


def test_registry_matches_the_yaml_files():
    assert {p.stem for p in CONF_DIR.glob("*.yaml")} == set(REWARDS)


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_yaml_is_accepted_and_builds(name):
    cfg = yaml_config(name)
    assert list(cfg) == [name]
    check_reward_config(cfg)
    funcs, weights = build_reward_funcs(cfg)
    assert [f.__name__ for f in funcs] == [name]
    assert all(isinstance(w, float) for w in weights)
    assert len(funcs[0](completions=["<think>a</think> 42"], answer=["42"], prompts=["Q"])) == 1


def test_hydra_group_puts_each_reward_under_its_name():
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR.parent), version_base=None):
        cfg = compose(config_name="config", overrides=["reward=[accuracy,format]"])
    assert OmegaConf.to_container(cfg.reward, resolve=True) == {"accuracy": {"weight": 1.0},
                                                                "format": {"weight": 1.0, **THINK}}


def test_build_keeps_config_order_and_weights():
    funcs, weights = build_reward_funcs({"format": {"weight": 0.5, **THINK}, "accuracy": {"weight": 2}})
    assert [f.__name__ for f in funcs] == ["format", "accuracy"]
    assert weights == [0.5, 2.0]


def test_built_funcs_are_named_for_trl_and_picklable():
    funcs, _ = build_reward_funcs({name: {"weight": 1.0, **params} for name, params in PARAMS.items()})
    for func in funcs:
        # TRL names metrics after the callable inside a partial: rewards/<name>/mean.
        inner = func
        while isinstance(inner, functools.partial):
            inner = inner.func
        assert inner.__name__ == func.__name__
        clone = pickle.loads(pickle.dumps(func))
        batch = {"completions": ["\\boxed{42}"], "answer": ["42"]}
        assert clone(**batch) == func(**batch)


def bad(**nodes):
    with pytest.raises(ConfigError) as info:
        check_reward_config(nodes)
    return str(info.value)


def test_config_errors_name_the_key():
    assert "reward" in bad()
    message = bad(acuracy={"weight": 1.0})
    assert "reward.acuracy" in message and "'accuracy'" in message
    cosine = {"weight": 1.0, **PARAMS["cosine"]}
    message = bad(cosine={**cosine, "max_lenn": 5})
    assert "reward.cosine.max_lenn" in message and "'max_len'" in message
    assert "reward.cosine.max_len" in bad(cosine={k: v for k, v in cosine.items() if k != "max_len"})
    assert "reward.accuracy.weight" in bad(accuracy={})
    assert "reward.accuracy" in bad(accuracy=None)


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("repetition_penalty", "ngram_size", "3"),
        ("repetition_penalty", "ngram_size", True),  # bools are no counts
        ("repetition_penalty", "ngram_size", 2.5),
        ("repetition_penalty", "max_penalty", 0.5),
        ("repetition_penalty", "ngram_size", 0),
        ("cosine", "max_len", 0),
        ("cosine", "min_value_wrong", "low"),
        ("reasoning_steps", "n_steps", 0),
        ("numeric", "weight", "heavy"),
        ("numeric", "weight", True),
    ],
)
def test_bad_values_name_the_key(name, key, value):
    node = {"weight": 1.0, **PARAMS[name], key: value}
    assert f"reward.{name}.{key}" in bad(**{name: node})


def test_ints_pass_as_floats_and_dictconfig_is_accepted():
    node = {"weight": 1, **PARAMS["repetition_penalty"], "max_penalty": -1}
    check_reward_config(OmegaConf.create({"repetition_penalty": node}))


def test_import_stays_cheap():
    heavy = ["torch", "transformers", "trl", "sympy", "math_verify", "omegaconf"]
    code = f"import sys, rlvr_vocab.model.rewards; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CONF_DIR.parents[1]
    )
    assert result.stdout.strip() == "[]"
