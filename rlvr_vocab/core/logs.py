"""Logging: loguru to stderr and the run's train.log; the standard `logging` routed through it."""

import logging
import sys
import warnings
from pathlib import Path

from loguru import logger

from rlvr_vocab.core.secrets import redact

_FORMAT = "{time:YYYY-MM-DD HH:mm:ss} | {level: <7} | {message}"


class _InterceptHandler(logging.Handler):
    """Send records of transformers, trl, datasets, ... to loguru (loguru's documented recipe)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = logging.currentframe(), 2
        while frame and frame.f_code.co_filename == logging.__file__:
            frame, depth = frame.f_back, depth + 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


class RunLogFile:
    """train.log as a loguru sink. A write that fails (the disk full) stops it with one line on stderr, where the
    log goes on, instead of loguru's traceback for every message that follows."""

    def __init__(self, path: Path) -> None:
        self.path, self.stopped = Path(path), False
        self.file = self.path.open("a", buffering=1, encoding="utf-8")

    def write(self, message: str) -> None:
        if self.stopped:
            return
        try:
            self.file.write(message)
        except OSError as e:
            self.stopped = True
            sys.stderr.write(f"rlvr: cannot write {self.path} ({e.strerror or e}): the log goes on here only\n")

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass  # what did not fit is lost either way


_run_log: RunLogFile | None = None


def _redact_record(record) -> bool:
    record["message"] = redact(record["message"])
    return True


def setup_logging(log_file: Path | None = None, level: str = "INFO") -> None:
    """(Re)configure sinks; call again with the run's train.log once the run dir exists."""
    global _run_log
    logger.remove()
    if _run_log is not None:
        _run_log.close()
        _run_log = None
    logger.add(sys.stderr, level=level, format=_FORMAT, filter=_redact_record, diagnose=False)
    if log_file is not None:
        _run_log = RunLogFile(log_file)
        logger.add(_run_log.write, level="DEBUG", format=_FORMAT, filter=_redact_record, diagnose=False)
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    # transformers' v6 renames (gradient -> activation checkpointing) warn on every step from TRL's code.
    warnings.filterwarnings("ignore", message=r".*deprecated and will be removed in v6.*", category=FutureWarning)
    for name in ("transformers", "trl", "datasets", "accelerate", "wandb"):
        lib_logger = logging.getLogger(name)
        lib_logger.handlers = []
        lib_logger.propagate = True


def quiet_progress_bars_off_tty() -> None:
    """Progress bars are for terminals; in SLURM output files they are pages of carriage returns."""
    if sys.stderr.isatty():
        return
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
