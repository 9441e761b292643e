"""The reasoning papers' evaluation protocol: avg@n, pass@k and cons@n against hand-computed tables, the per-problem
records, and a benchmark evaluation that is the same for the same seed (a tiny random model, two problems)."""

import dataclasses

import pytest

from rlvr_vocab.eval import protocol
from rlvr_vocab.eval.protocol import Sample, aggregate, avg_at_n, cons_at_n, majority_vote, pass_at_ks

# Three problems, four samples each: one right of four, none, all four.
CORRECT = [[True, False, False, False], [False] * 4, [True] * 4]


def test_avg_at_n_is_the_mean_fraction_correct():
    assert avg_at_n(CORRECT) == pytest.approx((1 / 4 + 0 + 1) / 3)
    assert avg_at_n([[True, False]]) == 0.5


def test_pass_at_k_by_hand():
    # One right of four: pass@2 = 1 - C(3,2)/C(4,2) = 1/2; pass@4 = 1. None right: 0. All right: 1.
    assert pass_at_ks(CORRECT, [4, 2, 2]) == pytest.approx({"pass@2": (1 / 2 + 0 + 1) / 3, "pass@4": (1 + 0 + 1) / 3})
    assert pass_at_ks(CORRECT, [1])["pass@1"] == pytest.approx(avg_at_n(CORRECT)), "pass@1 is avg@n"
    with pytest.raises(ValueError):
        pass_at_ks(CORRECT, [5])


@pytest.mark.parametrize("answers, winner", [
    (["5", "5", "6"], 0),
    (["8", "7", "7", "8"], 1),  # a tie: "7" reaches two votes first, and its first sample is the vote
    (["a", "b"], 0),
    ([None, None, "3"], 2),  # unparseable answers never win, however many
    ([None, None], None),
    ([], None),
])
def test_majority_vote(answers, winner):
    assert majority_vote(answers) == winner


def test_cons_at_n_by_hand():
    answers = [["8", "7", "7", "8"], [None, None, "3"], [None, None]]
    correct = [[True, False, False, True], [False, False, True], [False, False]]
    # The tie goes to the wrong "7"; "3" wins over the unparseable answers; no answer at all is wrong.
    assert cons_at_n(answers, correct) == pytest.approx(1 / 3)


@pytest.mark.parametrize("text, opened, chars", [
    ("<think>abc</think>42", False, 3),
    ("abc</think>42", True, 3),  # the prompt opened the span
    ("<think>abcd", False, 4),  # never closed: it runs to the end
    ("42", False, None),
    ("<think></think>42", False, 0),
])
def test_think_length(text, opened, chars):
    assert protocol.think_chars(text, opened) == chars
    ids = [{"<": 1, ">": 2}.get(c, 9) for c in text.replace("<think>", "<").replace("</think>", ">")]
    assert protocol.think_tokens(ids, opened, 1, 2) == chars  # one token a character, markers one token each


@pytest.mark.parametrize("text, verifier, answer", [
    ("<think>1/3</think>So $\\boxed{\\frac{1}{2}}$", "accuracy", "1/2"),
    ("1/2", "accuracy", "1/2"),
    ("<think>7</think>I do not know", "accuracy", None),
    ("It is 1,234.", "numeric", "1234"),
    ("2.50", "numeric", "2.5"),
    ("none", "numeric", None),
])
def test_extracted_answer_is_what_the_verifier_reads(text, verifier, answer):
    assert protocol.extracted_answer(text, verifier) == answer


def _sample(correct: bool, answer: str | None, tokens: int, think: int | None = None, counts=None) -> Sample:
    return Sample(correct=correct, answer=answer, formatted=think is not None, tokens=tokens, chars=2 * tokens,
                  think_tokens=think, think_chars=None if think is None else 2 * think, vocab_counts=counts)


def test_aggregate_and_per_problem_records_by_hand():
    table = [[_sample(True, "4", 10, 6), _sample(False, "5", 20), _sample(True, "4", 30, 8)],
             [_sample(False, None, 4), _sample(False, "1", 8), _sample(False, "1", 12)]]
    result = aggregate(table, [2, 3], greedy_correct=[True, False])
    problems = result.pop("problems")
    assert result == pytest.approx({
        "n": 2, "num_samples": 3, "avg@n": (2 / 3 + 0) / 2, "cons@n": 1 / 2,
        "pass@2": (1 + 0) / 2, "pass@3": 1 / 2, "accuracy": 1 / 2,
        "format_rate": 2 / 6, "mean_length": 84 / 6, "mean_chars": 168 / 6, "mean_think_length": 7.0,
        "mean_think_chars": 14.0, "think_rate": 2 / 6,
    })
    assert problems == [
        {"index": 0, "samples": 3, "correct": 2, "voted": "4", "votes": 2, "voted_correct": True, "formatted": 2,
         "greedy_correct": True, "mean_length": 20.0, "mean_chars": 40.0, "mean_think_length": 7.0,
         "mean_think_chars": 14.0},
        {"index": 1, "samples": 3, "correct": 0, "voted": "1", "votes": 2, "voted_correct": False, "formatted": 0,
         "greedy_correct": False, "mean_length": 8.0, "mean_chars": 16.0, "mean_think_length": None,
         "mean_think_chars": None},
    ]
    assert "accuracy" not in aggregate(table, [2]), "greedy accuracy only when asked for"
    with pytest.raises(ValueError):
        aggregate([], [2])


def test_reasoning_vocabulary_shares_inside_and_outside_think():
    # token_counts: [reasoning, all] overall, in think, outside think.
    table = [[_sample(True, "1", 10, counts=(3, 10, 3, 6, 0, 4)), _sample(True, "1", 10, counts=(1, 10, 0, 0, 1, 10))]]
    result = aggregate(table, [2])
    assert (result["reasoning_share"], result["reasoning_share_in_think"], result["reasoning_share_outside_think"]) \
        == pytest.approx((4 / 20, 3 / 6, 1 / 14))
    nothing_in_think = aggregate([[_sample(True, "1", 4, counts=(0, 4, 0, 0, 0, 4))]], [1])
    assert nothing_in_think["reasoning_share_in_think"] is None, "no token to count: None, never NaN"
    assert "reasoning_share" not in aggregate([[_sample(True, "1", 4)]], [1]), "only with a reasoning vocabulary"


@pytest.fixture(scope="module")
def tiny():
    """A random-weight tiny model (nothing warm-started: its completions vary, which is what the seed must fix)."""
    from rlvr_vocab.embedded.tiny_model import build_model, build_tokenizer

    tokenizer = build_tokenizer()
    return build_model(tokenizer, hidden_size=32, num_layers=1, seed=0, tie_embeddings=True), tokenizer


def _evaluate(model, tokenizer, rv=None, seed=0, **settings):
    from rlvr_vocab.eval.benchmark_eval import measure_benchmark
    from rlvr_vocab.eval.benchmarks import load_benchmark_config, load_rows

    cfg = load_benchmark_config("arithmetic", {"max_samples": 2, "num_samples": 3, "pass_k": [2, 3],
                                               "max_new_tokens": 8, **settings})
    return measure_benchmark(model, tokenizer, rv, cfg, load_rows(cfg), seed)


def test_the_same_seed_gives_the_same_per_problem_results(tiny):
    model, tokenizer = tiny
    first = _evaluate(model, tokenizer)
    assert first == _evaluate(model, tokenizer)
    assert [p["index"] for p in first["problems"]] == [0, 1] and first["n"] == 2 and first["num_samples"] == 3
    assert {"avg@n", "cons@n", "pass@2", "pass@3", "accuracy", "format_rate", "mean_length", "mean_chars"} <= set(first)
    assert all(0 <= p["correct"] <= 3 and "greedy_correct" in p for p in first["problems"])
    others = [_evaluate(model, tokenizer, seed=seed)["problems"] for seed in (1, 2)]
    assert any(problems != first["problems"] for problems in others), "the seed drives the sampling"
    assert "accuracy" not in _evaluate(model, tokenizer, greedy=False)


def test_a_reasoning_vocabulary_reports_its_shares():
    from rlvr_vocab.embedded.tiny_model import build_model, build_tokenizer
    from rlvr_vocab.reasoning_vocab.config import ReasoningVocabConfig
    from rlvr_vocab.reasoning_vocab.surgery import apply_reasoning_vocab

    tokenizer = build_tokenizer()
    model = build_model(tokenizer, hidden_size=32, num_layers=1, seed=0, tie_embeddings=True)
    rv = apply_reasoning_vocab(model, tokenizer, ReasoningVocabConfig(size=200))
    result = _evaluate(model, tokenizer, rv)
    shares = [result[f"reasoning_{key}"] for key in ("share", "share_in_think", "share_outside_think")]
    assert all(s is None or 0.0 <= s <= 1.0 for s in shares) and shares[0] is not None
    assert result == _evaluate(model, tokenizer, rv)


def test_the_settings_key_follows_the_protocol():
    from rlvr_vocab.eval.benchmarks import load_benchmark_config, settings_key

    base = load_benchmark_config("math500")
    keys = {settings_key(dataclasses.replace(base, **change)) for change in (
        {}, {"num_samples": 32}, {"temperature": 1.0}, {"top_p": 1.0}, {"pass_k": [2, 4]}, {"greedy": False})}
    assert len(keys) == 6
    assert settings_key(dataclasses.replace(base, pass_k=[16, 8, 4, 2, 2])) == settings_key(base), "the same k"
    assert settings_key(dataclasses.replace(base, pass_k=None)) == settings_key(base), "null means these k"


def test_the_summary_never_mixes_protocols():
    from rlvr_vocab.eval.results import summarize

    def result(step: int, protocol_version: int | None, time: str) -> dict:
        versioned = {"protocol": protocol_version} if protocol_version else {}
        return {"benchmark": "math500", "weights": f"checkpoint-{step}", "step": step, "settings_key": "k",
                "accuracy": 0.5, "avg@n": 0.4, "pass@4": 0.7, "reasoning_share": 0.1, "problems": [{"index": 0}],
                "time": time, **versioned}

    old = [result(2, None, "2026-01-01"), result(4, None, "2026-01-02")]  # before the protocol was versioned
    summary = summarize([*old, result(4, protocol.PROTOCOL, "2025-01-01")])["math500"]
    assert list(summary) == ["4"], "the old protocol's step 2 is not mixed into the new protocol's curve"
    assert summary["4"] == {"accuracy": 0.5, "avg@n": 0.4, "pass@4": 0.7, "reasoning_share": 0.1, "step": 4,
                            "weights": "checkpoint-4", "settings_key": "k"}, "aggregates only, no problems"
    assert list(summarize(old)["math500"]) == ["2", "4"]
