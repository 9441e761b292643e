"""Evaluation benchmarks: `conf/benchmark/<name>.yaml` files, their schema, and their rows.

A benchmark names a data set (hub id or local copy, config, split, columns, how the gold answer is written),
the prompt and verifier, and its evaluation protocol (rlvr_vocab.eval.protocol): samples per problem, their
sampling settings, the k of pass@k, whether greedy accuracy is computed too. `load_benchmark_config` reads and checks
one, `load_rows` gives its `{"question", "answer"}` rows (gold answers extracted), and `settings_key` a short
hash of everything that changes its results, so an evaluation already done with the same settings can be
skipped.

Cheap to import: `datasets` (and the demo's data generator) load only when rows are loaded.
"""

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from rlvr_vocab import CONF_DIR
from rlvr_vocab.config.schema import ANSWER_FORMATS, ArithmeticDataConfig
from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.eval.protocol import PROTOCOL
from rlvr_vocab.model.hub_cache import looks_local, offline

BENCHMARK_DIR = CONF_DIR / "benchmark"
# Rewards of rlvr_vocab.model.rewards that score a completion against the gold answer.
VERIFIERS = ("accuracy", "numeric")
_LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


@dataclass
class BenchmarkConfig:
    """One evaluation benchmark; defaults live here, `conf/benchmark/<name>.yaml` picks values."""

    # The file's stem; set by load_benchmark_config.
    name: str = ""
    # Hub id (HuggingFaceH4/MATH-500) or a local .jsonl/.json/.parquet file or directory; null with `embedded`.
    path: str | None = None
    config_name: str | None = None
    split: str = "test"
    question_column: str = "question"
    answer_column: str = "answer"
    # How the gold answer is read from answer_column: `plain`, or `gsm8k` (the number after ####).
    answer_format: str = "plain"
    # The chat template is the model's own; this is its system message ("" for none).
    system_prompt: str = ""
    # `accuracy` (math-verify on the text after the last </think>) or `numeric` (its last number).
    verifier: str = "accuracy"
    # n samples per problem: avg@n, cons@n and pass@k all come from them (the papers: 16 for MATH-500/GSM8K-sized
    # sets, 64 for AIME/AMC, whose 30-40 problems make fewer samples noisy).
    num_samples: int = 16
    # The k of pass@k, each <= num_samples; null: the powers of two from 2 up to num_samples, and num_samples itself
    # (pass@1 is avg@n).
    pass_k: list[int] | None = None
    # Also greedy accuracy (`accuracy`), from one greedy completion per problem besides the samples.
    greedy: bool = True
    max_new_tokens: int = 1024
    # The samples' decoding (DeepSeek-R1's: temperature 0.6, top_p 0.95).
    temperature: float = 0.6
    top_p: float = 0.95
    # 0 disables top-k, as in the vLLM sampling the RLVR literature reports with.
    top_k: int = 0
    # Evaluate the first N rows (null: all).
    max_samples: int | None = None
    # The offline demo's synthetic data set (see rlvr_vocab.embedded.arithmetic), read when `path` is null.
    embedded: ArithmeticDataConfig | None = None


def available() -> list[str]:
    """Names of the benchmarks under conf/benchmark/."""
    return sorted(p.stem for p in BENCHMARK_DIR.glob("*.yaml"))


def load_benchmark_config(name: str, overrides: dict[str, Any] | None = None) -> BenchmarkConfig:
    """The checked config of benchmark `name`, with `overrides` ({"path": "/local/dir", "max_samples": 20, ...};
    keys may be dotted, e.g. "embedded.n_test", and may carry a "benchmark." prefix)."""
    known = available()
    if name not in known:
        raise ConfigError("benchmark", f"unknown benchmark '{name}'", _suggest(name, known, "known benchmarks"))
    source = BENCHMARK_DIR / f"{name}.yaml"
    schema = OmegaConf.structured(BenchmarkConfig)
    try:
        node = OmegaConf.merge(schema, OmegaConf.load(source))
    except OmegaConfBaseException as err:
        raise _config_error(f"{source}: ", err) from None
    node.name = name
    for key, value in (overrides or {}).items():
        key = key.removeprefix("benchmark.")
        field, _, rest = key.partition(".")
        if field not in schema:
            raise ConfigError(f"benchmark.{key}", "is not a benchmark setting", _suggest(field, list(schema), "fields"))
        if rest and node[field] is None:
            raise ConfigError(f"benchmark.{key}", f"benchmark.{field} is null in {name}", "set it as a whole")
        nested = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        try:  # merge, not OmegaConf.update: update fails on a null node, e.g. embedded=null set to a mapping
            node = OmegaConf.merge(node, nested)
        except OmegaConfBaseException as err:
            raise _config_error("benchmark.", err) from None
    cfg = OmegaConf.to_object(node)
    _check(cfg)
    return cfg


def load_rows(cfg: BenchmarkConfig, local_path: str | None = None) -> list[dict[str, str]]:
    """The benchmark's rows as `{"question": str, "answer": gold answer}`, at most `max_samples` of them (the first).

    Read from `local_path` when given (a file, or a directory holding `<split>.jsonl` or a hub snapshot's files),
    else from `cfg.path` (hub id or local), else from the demo's embedded data set.
    """
    from rlvr_vocab.model.data import embedded_data_dir, gold_answer

    if local_path is not None:
        source = local_path
    elif cfg.path is not None:
        source = cfg.path
    else:
        source = str(embedded_data_dir(cfg))
    split = _load_split(cfg, source)
    present = split.column_names
    for role in ("question", "answer"):
        column = getattr(cfg, f"{role}_column")
        if column not in present:
            raise ConfigError(f"benchmark.{role}_column", f"column '{column}' not in split '{cfg.split}' of {source} "
                              f"(columns: {', '.join(present)})", f"set benchmark.{role}_column to one of them")
    if cfg.max_samples is not None:
        split = split.select(range(min(cfg.max_samples, len(split))))
    questions, answers = split[cfg.question_column], split[cfg.answer_column]
    rows = [{"question": str(q), "answer": gold_answer(_integral(a), cfg.answer_format)}
            for q, a in zip(questions, answers, strict=True)]
    logger.info(f"benchmark {cfg.name or source}: {len(rows)} rows from {source} (split {cfg.split})")
    return rows


def pass_ks(cfg: BenchmarkConfig) -> list[int]:
    """The k of pass@k, sorted: `pass_k`, or with null the powers of two from 2 up to num_samples, and num_samples."""
    if cfg.pass_k is not None:
        return sorted(set(cfg.pass_k))
    return sorted({2**i for i in range(1, cfg.num_samples.bit_length())} | {cfg.num_samples})


def settings_key(cfg: BenchmarkConfig) -> str:
    """12 hex digits identifying every setting that changes the benchmark's results, and the protocol's version.

    The same data (source, config, split, columns, answer format, row limit), prompt, verifier, protocol (samples,
    k, greedy) and generation settings give the same key; the name does not count, and pass_k counts as the k it
    means (null, or any order). `load_rows(cfg, local_path=...)` reads a local copy without changing the key;
    overriding `path` changes it.
    """
    settings = dataclasses.asdict(cfg)
    del settings["name"]
    settings["pass_k"] = pass_ks(cfg)
    settings["protocol"] = PROTOCOL
    payload = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _check(cfg: BenchmarkConfig) -> None:
    if cfg.path is None and cfg.embedded is None:
        raise ConfigError("benchmark.path", "is not set", "give a hub id (HuggingFaceH4/MATH-500) or a local path")
    if cfg.path is not None and looks_local(cfg.path) and not Path(cfg.path).expanduser().exists():
        raise ConfigError("benchmark.path", f"local path {cfg.path} does not exist", "fix it, or give a hub id")
    if cfg.answer_format not in ANSWER_FORMATS:
        raise ConfigError("benchmark.answer_format", f"unknown format '{cfg.answer_format}'",
                          _suggest(cfg.answer_format, list(ANSWER_FORMATS), "formats"))
    if cfg.verifier not in VERIFIERS:
        raise ConfigError("benchmark.verifier", f"unknown verifier '{cfg.verifier}'",
                          _suggest(cfg.verifier, list(VERIFIERS), "verifiers"))
    positive = {"num_samples": cfg.num_samples, "max_new_tokens": cfg.max_new_tokens, "max_samples": cfg.max_samples}
    for key, value in positive.items():
        if value is not None and value < 1:
            raise ConfigError(f"benchmark.{key}", f"must be >= 1, got {value}")
    for k in cfg.pass_k or []:
        if not 1 <= k <= cfg.num_samples:
            raise ConfigError("benchmark.pass_k", f"{cfg.num_samples} samples per problem cannot give pass@{k}",
                              f"give k from 1 to num_samples={cfg.num_samples}, or null")
    if cfg.temperature <= 0:
        raise ConfigError("benchmark.temperature", f"must be > 0 (it samples), got {cfg.temperature}",
                          "greedy accuracy is `greedy: true`, besides the samples")
    if not 0 < cfg.top_p <= 1:
        raise ConfigError("benchmark.top_p", f"must be in (0, 1], got {cfg.top_p}")
    if cfg.top_k < 0:
        raise ConfigError("benchmark.top_k", f"must be >= 0 (0: off), got {cfg.top_k}")
    if cfg.embedded is not None:
        from rlvr_vocab.embedded.arithmetic import split_questions

        e = cfg.embedded
        try:  # cheap with one train row: the bounds the data generation checks
            split_questions(e.seed, 1, e.n_test, e.max_operand)
        except ConfigError as err:
            raise ConfigError(f"benchmark.embedded.{err.where}", err.problem, err.fix) from None


def _load_split(cfg: BenchmarkConfig, source: str):
    """One split of a local file or directory, or of a hub data set; load failures become one-line ConfigErrors."""
    from datasets import load_dataset

    local = Path(source).expanduser()
    hub = not looks_local(source)
    try:
        if local.is_file():
            data_files = {cfg.split: str(local)}
            return load_dataset(_LOCAL_FORMATS.get(local.suffix, "json"), data_files=data_files, split=cfg.split)
        return load_dataset(source if hub else str(local), cfg.config_name, split=cfg.split)
    except (ConnectionError, FileNotFoundError, ValueError) as err:
        if hub and isinstance(err, ConnectionError) and offline():
            raise ConfigError("benchmark.path", f"{source} is not in the local Hugging Face cache and the hub is "
                              "offline (HF_HUB_OFFLINE=1)", "pass a local copy (benchmark.path=/local/dir) or "
                              "prefetch it where there is network: rlvr-vocab prefetch EXPERIMENT_OVERRIDES") from None
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError("benchmark.path", f"cannot load split '{cfg.split}' of {source}: {problem}",
                          "check benchmark.path, config_name and split") from None


def _integral(value: Any) -> Any:
    """27.0 -> 27: numeric answer columns (AMC copies store float64) read as the integers they are."""
    return int(value) if isinstance(value, float) and value.is_integer() else value



def _suggest(key: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}{what}: {', '.join(known)}"


def _config_error(prefix: str, err: OmegaConfBaseException) -> ConfigError:
    """OmegaConf's multi-line message cut to its first line, under the key it names (`prefix` + key)."""
    key = getattr(err, "full_key", None) or "?"
    problem = str(err).strip().splitlines()[0]
    if isinstance(err, ConfigKeyError):
        parent = ArithmeticDataConfig if key.startswith("embedded.") else BenchmarkConfig
        known = [f.name for f in dataclasses.fields(parent)]
        hint = _suggest(key.split(".")[-1], known, "fields")
        return ConfigError(f"{prefix}{key}", "is not a benchmark setting", hint)
    return ConfigError(f"{prefix}{key}", problem)
