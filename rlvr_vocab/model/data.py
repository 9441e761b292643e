"""Data sets: load (hub name or local file), map rows to chat prompts plus the gold answer."""

import os
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset
from loguru import logger
from omegaconf import DictConfig

from rlvr_vocab.model.data_check import LOCAL_FORMATS, messages, missing_column, user_message


def cache_dir() -> Path:
    """Where built artefacts (the demo's data and tiny model) are cached across runs."""
    return Path(os.environ.get("RLVR_CACHE_DIR", Path.home() / ".cache" / "rlvr_vocab"))


def _load_split(ds: DictConfig, path: str, split: str) -> Dataset:
    local = Path(path).expanduser()
    if local.is_file():
        return load_dataset(LOCAL_FORMATS.get(local.suffix, "json"), data_files={split: str(local)}, split=split)
    # A local directory (e.g. train.jsonl + test.jsonl) or a hub name.
    return load_dataset(str(local) if local.is_dir() else path, ds.config_name, split=split)


def embedded_data_dir(ds: DictConfig) -> Path:
    """The demo's synthetic data set (generated once from its seed, then cached)."""
    from rlvr_vocab.embedded.arithmetic import write_arithmetic_dataset

    e = ds.embedded
    return write_arithmetic_dataset(
        cache_dir() / f"arithmetic-s{e.seed}-{e.n_train}-{e.n_test}-{e.max_operand}",
        seed=e.seed, n_train=e.n_train, n_test=e.n_test, max_operand=e.max_operand,
    )


def load_splits(ds: DictConfig, seed: int) -> tuple[Dataset, Dataset]:
    """Train and held-out splits, checked for the mapped question and answer columns."""
    path = str(embedded_data_dir(ds)) if ds.embedded is not None else ds.path
    train = _load_split(ds, path, ds.train_split)
    if ds.test_split is None:
        parts: DatasetDict = train.train_test_split(test_size=ds.test_size, seed=seed)
        train, test = parts["train"], parts["test"]
        held_out = f"{len(test)} carved out of split '{ds.train_split}' with seed {seed}, never trained on"
    else:
        test = _load_split(ds, path, ds.test_split)
        held_out = f"split '{ds.test_split}'"
    for name, split in (("train", train), ("test", test)):
        _check_columns(ds, split, name, path)
    if ds.max_train_samples:
        train = train.select(range(min(ds.max_train_samples, len(train))))
    if ds.max_test_samples:
        test = test.select(range(min(ds.max_test_samples, len(test))))
    logger.info(f"data: {path}: {len(train)} train rows, {len(test)} held-out rows ({held_out})")
    return train, test


def _check_columns(ds: DictConfig, split: Dataset, name: str, path: str) -> None:
    if error := missing_column(ds, split.column_names, name, path):
        raise error


def load_held_out(ds: DictConfig) -> Dataset:
    """A data set other than the run's own, for evaluation only: its held-out split (or its only split) whole."""
    path = str(embedded_data_dir(ds)) if ds.embedded is not None else ds.path
    split_name = ds.test_split or ds.train_split
    split = _load_split(ds, path, split_name)
    _check_columns(ds, split, split_name, path)
    if ds.max_test_samples:
        split = split.select(range(min(ds.max_test_samples, len(split))))
    logger.info(f"data: {path}: {len(split)} rows of split '{split_name}' to evaluate on")
    return split


def gold_answer(raw: object, answer_format: str) -> str:
    text = str(raw)
    if answer_format == "gsm8k":
        # GSM8K solutions end with "#### <number>".
        text = text.split("####")[-1]
        return text.strip().replace(",", "")
    return text.strip()


def to_prompts(split: Dataset, tokenizer, ds: DictConfig) -> Dataset:
    """Rows -> {prompt: chat-templated string, answer: gold answer} as the rewards expect."""

    # Read once: an OmegaConf attribute lookup per row costs more than the chat template itself.
    question, answer, answer_format, system = ds.question_column, ds.answer_column, ds.answer_format, ds.system_prompt
    contexts = list(ds.context_columns)

    def convert(row: dict) -> dict:
        chat = messages(system, user_message(row, question, contexts))
        prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return {"prompt": prompt, "answer": gold_answer(row[answer], answer_format)}

    return split.map(convert, remove_columns=split.column_names)
