"""Bad input: one line naming the key or path and the fix, exit code 2, no traceback, no run dir."""

import json
import sys

import pytest
from conftest import run_module, run_train

from rlvr_vocab.train import main

CASES = {
    "typo in a GRPO key": (["training.learnin_rate=3e-6"], "training.learnin_rate", "training.learning_rate"),
    "typo in our own key": (["model.model_kwarg.x=1"], "model.model_kwarg", "model_kwargs"),
    "typo added with +": (["+training.learnin_rate=3e-6"], "training.learnin_rate", "learning_rate"),
    "wrong type": (["seed=abc"], "seed", "abc"),
    "unknown group option": (["model=qwen3"], "model/qwen3", "qwen3_0.6b"),
    "too few generations": (["training.num_generations=1"], "training.num_generations", ">= 2"),
    "batch not divisible": (
        ["training.per_device_train_batch_size=6", "training.num_generations=4"],
        "training.per_device_train_batch_size", "divisible",
    ),
    "zero completion length": (["training.max_completion_length=0"], "training.max_completion_length", "> 0"),
    "reward weight count": (["+training.reward_weights=[1.0]"], "training.reward_weights", "2 rewards"),
    "unknown reward option": (["reward=[accurcy]"], "reward/accurcy", "accuracy"),
    "unknown reward name": (["+reward.acuracy.weight=1"], "reward.acuracy", "accuracy"),
    "missing local dataset": (
        ["dataset.path=./no/such/data.jsonl", "dataset.embedded=null"], "dataset.path", "does not exist",
    ),
    "missing local model": (["model.name_or_path=./no/such/model", "model.embedded=null"], "model.name_or_path",
                            "does not exist"),
    "hub model not cached offline": (["model=qwen3_0.6b"], "model.name_or_path", "HF_HUB_OFFLINE"),
    "bad W&B run id": (["logging=wandb", "logging.run_id=a/b"], "logging.run_id", "cannot contain"),
    "run name escaping the root": (["run_name=../evil"], "run_name", "path separators"),
    "run name with a slash": (["run_name=a/b"], "run_name", "'/'"),
    "sampling in the wrong place": (["+training.temperature=0.7"], "training.temperature",
                                    "model.generation_kwargs.temperature"),
    "framework-owned GRPO key": (["+training.output_dir=/tmp/x"], "training.output_dir", "run dir"),
    "a secret in the trainer's arguments": (["+training.hub_token=hf_abcdefghijklmnop"], "training.hub_token",
                                            "HF_TOKEN"),
    "bf16 without a GPU": (["precision=bf16"], "precision", "GPU"),
    "missing DeepSpeed config": (["+training.deepspeed=./no/such/zero3.json"], "training.deepspeed", "does not exist"),
    "key below a null node": (["dataset.embedded=null", "dataset.embedded.n_test=5"], "overrides", "null"),
    "bad cosine parameter": (["+reward=cosine", "reward.cosine.max_len=-1"], "reward.cosine.max_len", ""),
    # Values of the wrong type or out of their domain (core.config_types): also as dry runs and sweeps, below.
    "learning rate not a number": (["training.learning_rate=abc"], "training.learning_rate",
                                   "got 'abc', takes a float > 0"),
    "beta not a number": (["training.beta=abc"], "training.beta", "got 'abc', takes a float >= 0"),
    "negative learning rate": (["training.learning_rate=-1"], "training.learning_rate", "got -1, takes a float > 0"),
    "negative beta": (["training.beta=-0.5"], "training.beta", "got -0.5"),
    "top_p above 1": (["model.generation_kwargs.top_p=5"], "model.generation_kwargs.top_p", "in (0, 1]"),
    "top_k not a number": (["model.generation_kwargs.top_k=abc"], "model.generation_kwargs.top_k",
                           "got 'abc', takes an int >= 0"),
    "temperature not a number": (["model.generation_kwargs.temperature=hot"], "model.generation_kwargs.temperature",
                                 "got 'hot', takes a float > 0"),
    "checkpoint limit not a number": (["training.save_total_limit=abc"], "training.save_total_limit", "or null"),
    "accumulation not a number": (["training.gradient_accumulation_steps=abc"],
                                  "training.gradient_accumulation_steps", "takes an int > 0"),
    "steps not a number": (["training.max_steps=abc"], "training.max_steps", "got 'abc'"),
    "pass@k not a number": (["eval.k=abc"], "eval.k", "got 'abc', takes an int"),
    "sampling typed without +": (["training.temperature=hot"], "training.temperature",
                                 "use model.generation_kwargs.temperature"),
    "negative completion length": (["training.max_completion_length=-5"], "training.max_completion_length", "> 0"),
    "zero generations": (["training.num_generations=0"], "training.num_generations", ">= 2"),
    "negative reasoning vocabulary": (["model.reasoning_vocab.size=-1"], "model.reasoning_vocab.size", ">= 0"),
    "dtype misspelt": (["model.model_kwargs.torch_dtype=bf16"], "model.model_kwargs.torch_dtype", "bfloat16"),
    "precision misspelt": (["precision=bf61"], "precision", "one of auto, bf16, fp16, fp32"),
}
# The cases a typed check refuses: each also as a dry run, and some as sweep points (validated before sbatch).
TYPED = [case for case in CASES if list(CASES).index(case) >= list(CASES).index("learning rate not a number")]
SWEPT = ["learning rate not a number", "accumulation not a number", "top_k not a number", "sampling typed without +"]


def assert_refused(result, key: str, hint: str) -> None:
    assert result.returncode == 2, (result.stdout[-1000:], result.stderr[-2000:])
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert err[0].startswith(f"error: {key}") and hint in err[0], err[0]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_one_line_and_exit_2(case, monkeypatch, capsys, experiments_root):
    overrides, key, hint = CASES[case]
    monkeypatch.setattr(sys, "argv", ["rlvr_vocab.train", *overrides])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and key in err[0] and hint in err[0], err[0]
    assert "Traceback" not in err[0]
    assert not experiments_root.exists()


@pytest.mark.parametrize(("case", "mode"), [(c, "dry run") for c in TYPED] + [(c, "sweep") for c in SWEPT])
def test_bad_values_are_refused_on_every_path(case, mode, experiments_root):
    overrides, key, hint = CASES[case]
    args = [*overrides, "dry_run=true"] if mode == "dry run" else [
        "--multirun", "hydra/launcher=local", *overrides, "dry_run=true"]
    assert_refused(run_train(*args), key, hint)
    assert not experiments_root.exists()


def test_a_launcher_value_of_the_wrong_type_is_refused_before_sbatch(experiments_root):
    result = run_train("--multirun", "hydra/launcher=slurm", "hydra.launcher.timeout_min=abc", "dry_run=true")
    assert_refused(result, "hydra.launcher.timeout_min", "'abc'")
    assert not experiments_root.exists()


# The cluster experiments' shape on a local file (their hub model stood in for by tiny_qwen3).
LOCAL_DATA = ["experiment=reasoning_vocab", "model=tiny_qwen3", "training=grpo_local"]


def rows_64(tmp_path, kind: str = "jsonl"):
    """A 64-row data set with DeepScaleR's columns, as JSON lines or Parquet."""
    rows = [{"problem": f"{i}+1", "answer": str(i + 1)} for i in range(64)]
    path = tmp_path / f"rows.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


DATA_CASES = {
    "test_size over the rows": (["dataset.test_size=500"], "dataset.test_size", "has 64 rows"),
    "test_size all the rows": (["dataset.test_size=64"], "dataset.test_size", "has 64 rows"),
    "max_train_samples over the rows": (["dataset.test_size=4", "dataset.max_train_samples=100"],
                                        "dataset.max_train_samples", "60 training rows"),
    "missing column": (["dataset.test_size=4", "dataset.question_column=question"], "dataset.question_column",
                       "'question' not in the train split"),
    "answers without ####": (["dataset.test_size=4", "dataset.answer_format=gsm8k"], "dataset.answer_format",
                             "no '#### <answer>'"),
}


@pytest.mark.parametrize(("case", "kind", "mode"), [
    *[(case, "jsonl", mode) for case in DATA_CASES for mode in ("local", "dry run")],
    *[("test_size over the rows", "parquet", mode) for mode in ("local", "dry run", "sweep")],
    ("test_size all the rows", "jsonl", "sweep"),
])
def test_data_smaller_than_its_config_is_refused_before_anything_is_written(case, kind, mode, tmp_path,
                                                                            experiments_root):
    overrides, key, hint = DATA_CASES[case]
    args = [*LOCAL_DATA, f"dataset.path={rows_64(tmp_path, kind)}", *overrides]
    args = {"local": args, "dry run": [*args, "dry_run=true"],
            "sweep": ["--multirun", "hydra/launcher=local", *args, "dry_run=true"]}[mode]
    assert_refused(run_train(*args), key, hint)
    assert not experiments_root.exists()


def test_a_hub_data_set_prepared_in_the_cache_is_checked_from_it(tmp_path, experiments_root):
    """Its row count and columns from datasets' dataset_info.json, its first row from its Arrow file."""
    import pyarrow as pa

    cache = tmp_path / "datasets"
    prepared = cache / "acme___tiny_math" / "default" / "0.0.0" / "f00d"
    prepared.mkdir(parents=True)
    table = pa.Table.from_pylist([{"problem": f"{i}+1", "answer": str(i + 1)} for i in range(5)])
    with pa.OSFile(str(prepared / "tiny_math-train.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    (prepared / "dataset_info.json").write_text(json.dumps({
        "config_name": "default", "features": {c: {"dtype": "string", "_type": "Value"} for c in table.column_names},
        "splits": {"train": {"name": "train", "num_examples": 5}}}))

    def dry_run(*overrides):
        return run_train(*LOCAL_DATA, "dataset.path=acme/tiny_math", *overrides, "dry_run=true",
                         env={"HF_DATASETS_CACHE": str(cache)})

    assert_refused(dry_run("dataset.test_size=10"), "dataset.test_size", "has 5 rows")
    assert_refused(dry_run("dataset.test_size=1", "dataset.answer_column=solution"), "dataset.answer_column",
                   "'solution' not in the train split")
    assert_refused(dry_run("dataset.test_size=1", "dataset.answer_format=gsm8k"), "dataset.answer_format", "####")
    assert not experiments_root.exists()


def test_a_chat_template_that_refuses_the_first_row_is_named(tmp_path, experiments_root):
    """A local model whose template has no system role, then none at all: told at validation, not after the model
    loaded in the job."""
    from rlvr_vocab.embedded.tiny_model import build_tokenizer

    model = tmp_path / "base-model"
    tokenizer = build_tokenizer()
    tokenizer.chat_template = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
                               "supported') }}{% endif %}{% for m in messages %}{{ m['content'] }}{% endfor %}")
    tokenizer.save_pretrained(model)
    data = rows_64(tmp_path)

    def dry_run(path):
        return run_train(*LOCAL_DATA, "model.embedded=null", f"model.name_or_path={path}", f"dataset.path={data}",
                         "dataset.test_size=4", "dry_run=true")

    assert_refused(dry_run(model), "dataset.system_prompt", "System role not supported")
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path / "no-template")
    assert_refused(dry_run(tmp_path / "no-template"), "model.name_or_path", "chat template")
    assert not experiments_root.exists()


def test_bad_input_from_the_shell(experiments_root):
    """The real command line, in a fresh process: no traceback, exit 2, nothing written."""
    result = run_module("training.learnin_rate=3e-6")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: training.learnin_rate: unknown key; did you mean 'training.learning_rate'? "
        "(add a new key with +training.learnin_rate=...)"
    ]
    late = run_module("training.num_generations=3", "training.per_device_train_batch_size=16")
    assert late.returncode == 2, late.stderr
    assert len(late.stderr.strip().splitlines()) == 1, late.stderr
    assert not experiments_root.exists()


def test_dry_run_prints_the_plan_and_writes_nothing(experiments_root):
    result = run_train("dry_run=true", "run_name=planned")
    assert result.returncode == 0, result.stderr
    for expected in ("run dir:", "demo/planned", "model:", "data:", "rewards:", "accuracy x1", "batch:"):
        assert expected in result.stdout
    assert not experiments_root.exists()
