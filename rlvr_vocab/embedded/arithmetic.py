"""Synthetic arithmetic data set for the offline demo: sums `a+b`, deterministic from a seed."""

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

from loguru import logger

from rlvr_vocab.core.errors import ConfigError

SPLITS = ("train", "test")
SPLIT_VERSION = 1  # recorded in params.json: bump when split_questions changes so stale caches are refused


def _row(a: int, b: int) -> tuple[str, str]:
    return f"{a}+{b}", str(a + b)


def split_questions(
    seed: int, n_train: int, n_test: int, max_operand: int
) -> dict[str, list[tuple[str, str]]]:
    """Seeded (question, answer) rows for sums `a+b` with operands in [0, max_operand].

    The test split holds out `n_test` questions `a+b` (a != b) whose mirror `b+a` stays in training: held-out
    accuracy then measures whether what the model learned carries over to unseen questions, and it can reach 100%.
    Train rows cycle through every other question in seeded order, repeating when `n_train` exceeds them.
    """
    unordered = [(a, b) for a in range(max_operand + 1) for b in range(a + 1, max_operand + 1)]
    if not 0 < n_test <= len(unordered):
        raise ConfigError(
            "n_test", f"{n_test} is not between 1 and {len(unordered)}", f"max_operand={max_operand} allows that many"
        )
    rng = random.Random(seed)
    rng.shuffle(unordered)
    test = [_row(a, b) if rng.random() < 0.5 else _row(b, a) for a, b in unordered[:n_test]]
    held_out = set(test)
    pool = [_row(a, b) for a in range(max_operand + 1) for b in range(max_operand + 1) if _row(a, b) not in held_out]
    train = []
    while len(train) < n_train:
        rng.shuffle(pool)
        train.extend(pool[: n_train - len(train)])
    return {"train": train, "test": test}


def _write_jsonl(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w") as f:
        for question, answer in rows:
            f.write(json.dumps({"question": question, "answer": answer}) + "\n")


def _is_complete(out_dir: Path) -> bool:
    return all((out_dir / f"{split}.jsonl").is_file() for split in SPLITS)


def write_arithmetic_dataset(out_dir: Path, seed: int, n_train: int, n_test: int, max_operand: int) -> Path:
    """Write `train.jsonl` and `test.jsonl` (columns `question`, `answer`) into `out_dir`; return `out_dir`.

    Existing files are kept as they are (after checking they were made with the same parameters). The split is built
    in a temporary directory and renamed into place, so concurrent writers never expose half a file.
    """
    out_dir = Path(out_dir)
    params = {"version": SPLIT_VERSION, "seed": seed, "n_train": n_train, "n_test": n_test, "max_operand": max_operand}
    if _is_complete(out_dir):
        _check_params(out_dir, params)
        return out_dir
    splits = split_questions(seed, n_train, n_test, max_operand)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp"))
    for split, rows in splits.items():
        _write_jsonl(tmp / f"{split}.jsonl", rows)
    (tmp / "params.json").write_text(json.dumps(params))
    try:
        os.rename(tmp, out_dir)  # atomic; fails if another writer got there first (or out_dir is not empty)
        logger.info(f"Wrote arithmetic data set ({n_train} train, {n_test} test) to {out_dir}")
    except OSError as e:
        shutil.rmtree(tmp)
        if not _is_complete(out_dir):
            raise ConfigError(str(out_dir), "exists but holds no train.jsonl/test.jsonl", "empty or remove it") from e
        _check_params(out_dir, params)
    return out_dir


def _check_params(out_dir: Path, params: dict) -> None:
    """Refuse to reuse a cached data set built from other parameters (its directory name should include them)."""
    params_file = out_dir / "params.json"
    if params_file.is_file() and json.loads(params_file.read_text()) != params:
        raise ConfigError(
            str(out_dir), f"holds a data set made with {params_file.read_text()}, not {json.dumps(params)}",
            "use another directory",
        )


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]
