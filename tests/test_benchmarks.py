"""Benchmark configs, their rows from fixtures in the real data sets' layouts, settings keys and user errors."""

import dataclasses
from pathlib import Path

import pytest

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.eval import benchmarks
from rlvr_vocab.eval.benchmarks import BenchmarkConfig, available, load_benchmark_config, load_rows, settings_key
from rlvr_vocab.model.rewards import accuracy_reward

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "benchmarks"
LITERATURE = ["aime24", "aime25", "amc23", "gsm8k", "math500"]

# benchmark -> (rows in its fixture, the first gold answers as the loader must extract them)
EXPECTED = {
    "math500": (6, ["\\left( 2 \\sqrt{2}, \\frac{3 \\pi}{4} \\right)", "226000", "120", "\\frac{14}{3}"]),
    "gsm8k": (5, ["27", "10000", "405", "150", "12"]),  # the number after ####, not the worked solution
    "aime24": (5, ["376", "130", "738", "63", "405"]),
    "aime25": (5, ["70", "117", "43", "1350", "1300"]),
    "amc23": (5, ["28", "39", "10", "-575", "18"]),  # stored as 28.0: read as the integer it is
}


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    return text


def test_the_suite_is_all_there():
    assert set(available()) >= {*LITERATURE, "arithmetic"}


@pytest.mark.parametrize("name", available())
def test_every_config_validates_and_opens_with_its_command(name):
    cfg = load_benchmark_config(name)
    assert isinstance(cfg, BenchmarkConfig) and cfg.name == name
    assert cfg.verifier in benchmarks.VERIFIERS and cfg.answer_format in benchmarks.ANSWER_FORMATS
    lines = (benchmarks.BENCHMARK_DIR / f"{name}.yaml").read_text().splitlines()
    assert lines[0].startswith("# rlvr-vocab eval RUN --benchmarks") and name in lines[0]
    assert lines[1].startswith("# ")  # where the data set and its columns come from


@pytest.mark.parametrize("name, samples", [("math500", 16), ("gsm8k", 16), ("aime24", 64), ("aime25", 64),
                                           ("amc23", 64), ("arithmetic", 4)])
def test_each_benchmark_samples_as_the_papers_do(name, samples):
    """n by the set's size (the demo's kept small for CPU), pass@k up to n, greedy accuracy besides."""
    cfg = load_benchmark_config(name)
    assert cfg.num_samples == samples and max(benchmarks.pass_ks(cfg)) == samples and cfg.greedy
    if name != "arithmetic":  # the demo samples as its training does
        assert (cfg.temperature, cfg.top_p) == (0.6, 0.95)


@pytest.mark.parametrize("name", LITERATURE)
def test_fixture_maps_to_questions_and_gold_answers(name):
    rows, golds = EXPECTED[name]
    loaded = load_rows(load_benchmark_config(name), str(FIXTURES / name))
    assert len(loaded) == rows
    assert all(set(row) == {"question", "answer"} for row in loaded)
    assert all(isinstance(row["question"], str) and row["question"] for row in loaded)
    assert [row["answer"] for row in loaded[: len(golds)]] == golds


@pytest.mark.parametrize("name", LITERATURE)
def test_fixture_golds_verify_against_themselves(name):
    """Each gold parses for the benchmark's verifier: a completion boxing it scores 1."""
    rows = load_rows(load_benchmark_config(name), str(FIXTURES / name))
    completions = [f"<think>done</think>The answer is $\\boxed{{{row['answer']}}}$." for row in rows]
    assert accuracy_reward(completions, answer=[row["answer"] for row in rows]) == [1.0] * len(rows)


def test_path_override_reads_the_local_copy_and_max_samples_keeps_the_first_rows():
    cfg = load_benchmark_config("gsm8k", {"benchmark.path": str(FIXTURES / "gsm8k"), "max_samples": 2})
    assert [row["answer"] for row in load_rows(cfg)] == ["27", "10000"]


def test_a_single_local_file_works_too():
    cfg = load_benchmark_config("aime25")
    rows = load_rows(cfg, str(FIXTURES / "aime25" / "test.jsonl"))
    assert rows[0]["answer"] == "70"


def test_arithmetic_is_the_demo_held_out_split():
    cfg = load_benchmark_config("arithmetic")
    rows = load_rows(cfg)
    assert len(rows) == cfg.embedded.n_test == 40
    for row in rows:
        a, b = row["question"].split("+")
        assert row["answer"] == str(int(a) + int(b))


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError) as err:
        load_benchmark_config("math50")
    text = one_line(err)
    assert "unknown benchmark 'math50'" in text and "did you mean 'math500'?" in text and "aime24" in text


@pytest.mark.parametrize("overrides,where,says", [
    ({"temprature": 0.5}, "benchmark.temprature", "did you mean 'temperature'?"),
    ({"num_samples": "four"}, "benchmark.num_samples", "could not be converted"),
    ({"num_samples": 0}, "benchmark.num_samples", "must be >= 1"),
    ({"num_samples": 4}, "benchmark.pass_k", "4 samples per problem cannot give pass@8"),
    ({"pass_k": [0]}, "benchmark.pass_k", "cannot give pass@0"),
    ({"greedy": "maybe"}, "benchmark.greedy", "is not a valid bool"),
    ({"k": 8}, "benchmark.k", "is not a benchmark setting"),  # the old protocol's field
    ({"verifier": "accuracyy"}, "benchmark.verifier", "did you mean 'accuracy'?"),
    ({"answer_format": "boxed"}, "benchmark.answer_format", "plain, gsm8k"),
    ({"temperature": 0.0}, "benchmark.temperature", "must be > 0"),
    ({"top_p": 1.5}, "benchmark.top_p", "(0, 1]"),
    ({"path": "/no/such/dir"}, "benchmark.path", "does not exist"),
    ({"embedded.n_test": 3}, "benchmark.embedded.n_test", "is null in math500"),
])
def test_bad_fields_are_one_line_errors(overrides, where, says):
    with pytest.raises(ConfigError) as err:
        load_benchmark_config("math500", overrides)
    text = one_line(err)
    assert text.startswith(where) and says in text


def test_bad_embedded_bounds_are_caught_before_any_generation():
    with pytest.raises(ConfigError) as err:
        load_benchmark_config("arithmetic", {"embedded.n_test": 1000})
    assert one_line(err).startswith("benchmark.embedded.n_test")


def test_unknown_key_in_a_yaml_file_names_the_file_and_key(tmp_path, monkeypatch):
    (tmp_path / "mine.yaml").write_text("path: org/data\nmax_sample: 5\n")
    monkeypatch.setattr(benchmarks, "BENCHMARK_DIR", tmp_path)
    with pytest.raises(ConfigError) as err:
        load_benchmark_config("mine")
    text = one_line(err)
    assert "mine.yaml: max_sample" in text and "did you mean 'max_samples'?" in text


@pytest.mark.parametrize("role,column", [("question", "question_text"), ("answer", "final_answer")])
def test_missing_column_names_it_and_the_columns_present(role, column):
    cfg = load_benchmark_config("aime24", {f"{role}_column": column})
    with pytest.raises(ConfigError) as err:
        load_rows(cfg, str(FIXTURES / "aime24"))
    text = one_line(err)
    assert text.startswith(f"benchmark.{role}_column") and f"'{column}'" in text
    assert "columns: id, problem, solution, answer, url, year" in text


def test_unknown_split_is_a_one_line_error():
    cfg = load_benchmark_config("aime24", {"split": "test"})
    with pytest.raises(ConfigError) as err:
        load_rows(cfg, str(FIXTURES / "aime24"))
    assert one_line(err).startswith("benchmark.path: cannot load split 'test'")


def test_offline_and_uncached_hub_data_set_says_how_to_get_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = load_benchmark_config("math500", {"path": "rlvr-vocab-tests/never-cached"})
    with pytest.raises(ConfigError) as err:
        load_rows(cfg)
    text = one_line(err)
    assert "not in the local Hugging Face cache" in text and "HF_HUB_OFFLINE=1" in text
    assert "benchmark.path=/local/dir" in text and "rlvr-vocab prefetch" in text


# A different value for every setting that changes what a benchmark measures.
RESULT_CHANGES = {
    "path": "org/other", "config_name": "other", "split": "validation", "question_column": "q",
    "answer_column": "a", "answer_format": "gsm8k", "system_prompt": "Think.", "verifier": "numeric",
    "num_samples": 32, "pass_k": [2, 4], "greedy": False, "max_new_tokens": 512, "temperature": 1.0, "top_p": 0.9,
    "top_k": 20,
    "max_samples": 100, "embedded": {"seed": 0, "n_train": 10, "n_test": 5, "max_operand": 9},
}


def test_settings_key_covers_every_result_changing_setting():
    assert set(RESULT_CHANGES) == {f.name for f in dataclasses.fields(BenchmarkConfig)} - {"name"}


@pytest.mark.parametrize("field", sorted(RESULT_CHANGES))
def test_settings_key_changes_with_each_result_changing_setting(field):
    base = load_benchmark_config("math500")
    changed = dataclasses.replace(base, **{field: RESULT_CHANGES[field]})
    assert settings_key(changed) != settings_key(base)


def test_settings_key_is_stable_otherwise():
    base = load_benchmark_config("math500")
    key = settings_key(base)
    assert len(key) == 12 and key == settings_key(load_benchmark_config("math500"))
    assert settings_key(dataclasses.replace(base, name="renamed")) == key
    assert base.pass_k == [2, 4, 8, 16]  # what null means for 16 samples: the same evaluation as writing it out
    assert settings_key(dataclasses.replace(base, pass_k=None)) == key
    assert settings_key(dataclasses.replace(base, pass_k=[16, 8, 4, 2])) == key
    assert len({settings_key(load_benchmark_config(name)) for name in available()}) == len(available())
