"""What loading the data set would fail on, told at validation: row counts, columns and the first row, read from the
files' metadata and first lines (a local file or directory, or a hub data set datasets has prepared in its cache).
Nothing is loaded in full and nothing is written; a hub data set not prepared here is left to the job.

Cheap to import: `datasets` only for a local directory (to find its splits' files as `load_dataset` does).
"""

import csv
import functools
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rlvr_vocab.core.errors import ConfigError

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class SplitRows:
    rows: int
    columns: tuple[str, ...]
    first: dict[str, Any] | None


def messages(system_prompt: str, user: str) -> list[dict[str, str]]:
    """The chat a row becomes (rlvr_vocab.model.data.to_prompts), `user` its user_message."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*system, {"role": "user", "content": user}]


def user_message(row: Mapping[str, Any], question_column: str, context_columns: Sequence[str]) -> str:
    """The question, after the context columns when there are some (FinQA's report text and table), each a paragraph
    of its own."""
    question = str(row[question_column])
    if not context_columns:
        return question
    contexts = [text for text in (_context_text(row[c]) for c in context_columns) if text]
    return "\n\n".join([*contexts, f"Question: {question}"])


def _context_text(value: Any) -> str:
    """Text as it is, a list as lines, a table (a list of rows) as `cell | cell` lines."""
    if isinstance(value, list | tuple):
        return "\n".join(" | ".join(map(str, item)) if isinstance(item, list | tuple) else str(item) for item in value)
    return "" if value is None else str(value).strip()


def missing_column(ds: DictConfig, columns: list[str] | tuple[str, ...], split: str, path: str) -> ConfigError | None:
    """The error for a mapped column the split lacks, or None."""
    missing = [c for c in (ds.question_column, ds.answer_column, *ds.context_columns) if c not in columns]
    if not missing:
        return None
    mapped = {ds.question_column: "question_column", ds.answer_column: "answer_column"}
    key = mapped.get(missing[0], "context_columns")
    return ConfigError(
        f"dataset.{key}",
        f"column {missing[0]!r} not in the {split} split of {path} (columns: {list(columns)})",
        f"set dataset.{key} to columns it has" if key == "context_columns"
        else "set dataset.question_column / dataset.answer_column",
    )


def check_data(ds: DictConfig, chat_problem: Callable[[list[dict[str, str]]], str | None] | None = None) -> None:
    """The data set's splits against what the config asks of them: the mapped columns, `test_size` rows carved out of
    the training split, `max_train_samples` / `max_test_samples` within the rows there are, and the first training
    row through the prompt (`chat_problem(messages)`: what the model's chat template says of it, None when it
    renders; not given, the template is not tried)."""
    if ds.path is None:
        return  # the embedded data set: split_questions checks its sizes
    path = str(ds.path)
    train = _peek(ds, ds.train_split, "dataset.train_split")
    if train is None:
        return
    if train.rows == 0:
        raise ConfigError("dataset.train_split", f"split '{ds.train_split}' of {path} has no rows",
                          "point dataset.path at data with rows")
    if error := missing_column(ds, train.columns, "train", path):
        raise error
    if ds.test_split is None:
        if ds.test_size >= train.rows:
            raise ConfigError("dataset.test_size", f"is {ds.test_size}, but split '{ds.train_split}' of {path} has "
                              f"{train.rows} rows: carving out {ds.test_size} held-out rows leaves none to train on",
                              f"set dataset.test_size below {train.rows}")
        train_rows, test_rows, of_train = train.rows - ds.test_size, ds.test_size, " (after dataset.test_size)"
    else:
        test = _peek(ds, ds.test_split, "dataset.test_split")
        if test is not None and (error := missing_column(ds, test.columns, "test", path)):
            raise error
        train_rows, test_rows, of_train = train.rows, test.rows if test is not None else None, ""
    for key, rows, of in (("max_train_samples", train_rows, of_train), ("max_test_samples", test_rows, "")):
        if rows is not None and ds[key] is not None and ds[key] > rows:
            raise ConfigError(f"dataset.{key}", f"is {ds[key]}, but {path} has {rows} "
                              f"{'training' if key == 'max_train_samples' else 'held-out'} rows{of}",
                              f"set it to at most {rows}, or null for all rows")
    if train.first is not None:
        _check_first_row(ds, train.first, path, chat_problem)


def _check_first_row(ds: DictConfig, row: dict[str, Any], path: str,
                     chat_problem: Callable[[list[dict[str, str]]], str | None] | None) -> None:
    if ds.answer_format == "gsm8k" and "####" not in str(row[ds.answer_column]):
        raise ConfigError("dataset.answer_format", f"is gsm8k, but the first row's {ds.answer_column} in {path} has "
                          "no '#### <answer>'", "use dataset.answer_format=plain for answers that are the answer")
    if chat_problem is None:
        return
    user = user_message(row, ds.question_column, ds.context_columns)
    problem = chat_problem(messages(ds.system_prompt, user))
    if problem is None:
        return
    if ds.system_prompt and chat_problem(messages("", user)) is None:
        raise ConfigError("dataset.system_prompt", f"the model's chat template refuses a system message ({problem})",
                          "set dataset.system_prompt='' (and put the instruction in the questions)")
    raise ConfigError("model.name_or_path", f"its chat template fails on the first row of {path}: {problem}",
                      "use a model with a chat template (an instruct model)")


def _peek(ds: DictConfig, split: str, where: str) -> SplitRows | None:
    """`split`'s rows, columns and first row; None when they cannot be read cheaply here (a hub data set not
    prepared in datasets' cache, a compressed file)."""
    local = Path(str(ds.path)).expanduser()
    if local.is_file():
        files = [local]  # one file is every split (data_files={split: file})
    elif local.is_dir():
        found = _split_files(str(local), ds.config_name)
        if split not in found:
            raise ConfigError(where, f"no split '{split}' in {local} (splits: {', '.join(found) or 'none'})",
                              "name one of its splits")
        files = [Path(f) for f in found[split]]
    else:
        return _prepared_split(str(ds.path), ds.config_name, split)
    if not files or any(f.suffix not in LOCAL_FORMATS for f in files):
        return None
    peeks = [_file_rows(str(f), f.stat().st_mtime_ns) for f in files]
    return SplitRows(sum(p.rows for p in peeks), peeks[0].columns, peeks[0].first)


@functools.lru_cache(maxsize=16)
def _split_files(directory: str, config_name: str | None) -> dict[str, list[str]]:
    """The files of each split of a local directory, as load_dataset finds them (its builder resolves them; its cache
    goes to a directory removed at once)."""
    from datasets import load_dataset_builder

    with tempfile.TemporaryDirectory() as scratch:
        try:
            builder = load_dataset_builder(directory, config_name, cache_dir=scratch)
        except Exception as e:  # noqa: BLE001 - datasets' own words (no data files, an unknown config) are the problem
            problem = f"datasets cannot read {directory}: {(str(e).splitlines() or [''])[0]}"
            if config_name and "config" in str(e).lower():
                raise ConfigError("dataset.config_name", problem, "name one of its configs") from None
            raise ConfigError("dataset.path", problem, "point it at a .jsonl/.json/.parquet/.csv file or a directory "
                              "of them") from None
    return {str(name): [str(f) for f in files] for name, files in (builder.config.data_files or {}).items()}


@functools.lru_cache(maxsize=64)
def _file_rows(path: str, mtime_ns: int) -> SplitRows:
    """Rows, columns and first row of one file (cached while the file is unchanged: a sweep asks once)."""
    file = Path(path)
    kind = LOCAL_FORMATS[file.suffix]
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(file)
            batch = next(parquet.iter_batches(batch_size=1), None)
            first = batch.to_pylist()[0] if batch is not None and batch.num_rows else None
            return SplitRows(parquet.metadata.num_rows, tuple(parquet.schema_arrow.names), first)
        if kind == "csv":
            with file.open(newline="") as handle:
                reader = csv.DictReader(handle)
                first = next(reader, None)
                return SplitRows(sum(1 for _ in reader) + (first is not None), tuple(reader.fieldnames or ()), first)
        text = file.read_text()
        if text.lstrip().startswith("["):  # one JSON array of rows; else one row per line (datasets reads either)
            rows = json.loads(text)
            count, first = len(rows), rows[0] if rows else None
        else:
            lines = [line for line in text.splitlines() if line.strip()]
            count, first = len(lines), json.loads(lines[0]) if lines else None
    except (OSError, ValueError) as e:
        raise ConfigError("dataset.path", f"{file} cannot be read as {kind}: {str(e).splitlines()[0]}",
                          "fix the file, or point dataset.path at another") from None
    first = first if isinstance(first, dict) else None
    return SplitRows(count, tuple(first or ()), first)


def _prepared_split(repo_id: str, config_name: str | None, split: str) -> SplitRows | None:
    """A hub data set's split from the copy datasets prepared (rlvr_vocab.validation.prefetch): its recorded row count
    and features, and the first row of its first Arrow file."""
    from rlvr_vocab.model.hub_cache import dataset_prepared

    prepared = dataset_prepared(repo_id, config_name)
    if prepared is None:
        return None
    try:
        info = json.loads((prepared / "dataset_info.json").read_text())
    except (OSError, ValueError):
        return None
    splits, features = info.get("splits") or {}, info.get("features") or {}
    if split not in splits or "num_examples" not in splits[split]:
        return None
    return SplitRows(splits[split]["num_examples"], tuple(features), _first_arrow_row(prepared, split))


def _first_arrow_row(prepared: Path, split: str) -> dict[str, Any] | None:
    import pyarrow as pa

    files = sorted(prepared.glob(f"*-{split}.arrow")) or sorted(prepared.glob(f"*-{split}-00000-of-*.arrow"))
    if not files:
        return None
    try:
        with pa.memory_map(str(files[0])) as source:
            batch = pa.ipc.open_stream(source).read_next_batch()
    except (OSError, pa.ArrowInvalid, StopIteration):
        return None
    return batch.slice(0, 1).to_pylist()[0] if batch.num_rows else None
