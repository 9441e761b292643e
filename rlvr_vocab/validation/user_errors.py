"""Turn bad user input (ours or Hydra's) into one line on stderr and exit code 2, no traceback."""

import difflib
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rlvr_vocab import CONF_DIR
from rlvr_vocab.core.errors import ConfigError

EXIT_BAD_INPUT = 2


def _chain(e: BaseException | None) -> Iterator[BaseException]:
    while e is not None:
        yield e
        e = e.__cause__ or e.__context__


def _closest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _missing_option(text: str) -> str | None:
    match = re.search(r"Could not (?:find|load) '([\w/.-]+)/([\w.-]+)'", text)
    if not match:
        return None
    group, name = match.groups()
    options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    return f"{group}/{name}: no such config; {_closest(name, options)}options: {', '.join(options)}"


def explain(e: BaseException) -> str | None:
    """One line for a user-input error, or None if `e` is not one."""
    from hydra.errors import HydraException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    for err in _chain(e):
        if isinstance(err, ConfigError):
            return str(err)
    for err in _chain(e):
        full_key = getattr(err, "full_key", None)
        if full_key and "RLVR_SECRET_" in str(err):
            return (f"{full_key}: held a secret typed on the command line, which is never stored; pass it again "
                    f"(e.g. `rlvr-vocab resume RUN {full_key}=...`) or read it from the environment "
                    f"({full_key}=${{oc.env:HF_TOKEN}})")
        if isinstance(err, ConfigKeyError | ConfigAttributeError) and full_key:
            misplaced = _misplaced(full_key)
            if misplaced is not None:
                return str(misplaced)
            parent = err.parent_node
            known = [str(k) for k in parent.keys()] if parent is not None else []
            prefix = full_key.rsplit(".", 1)[0] + "." if "." in full_key else ""
            close = difflib.get_close_matches(str(err.key), known, n=1)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else "check the spelling"
            return f"{full_key}: unknown key; {hint} (add a new key with +{full_key}=...)"
        if isinstance(err, OmegaConfBaseException) and full_key:
            msg = str(getattr(err, "msg", err)).strip().splitlines()[0]
            return _wrong_type(full_key, msg) or f"{full_key}: {msg}; fix the value"
    if isinstance(e, AssertionError) and _raised_in(e, "_apply_overrides_to_config"):
        # OmegaConf asserts when an override sets a key below a node another override made null.
        return (f"overrides: one sets a key below a node that is null ({e}); drop the key's override or the "
                "null one (e.g. dataset.embedded=null with dataset.embedded.n_test=5)")
    for err in _chain(e):
        if isinstance(err, HydraException):
            text = str(err)
            return _missing_option(text) or " ".join(ln.strip() for ln in text.splitlines() if ln.strip())
    return None


def _misplaced(full_key: str) -> ConfigError | None:
    """A GRPOConfig field typed without `+` that does not belong under `training` at all: the reason, not a hint to
    add it."""
    from rlvr_vocab.validation.typed import misplaced_training_key

    section, _, key = full_key.partition(".")
    return misplaced_training_key(key) if section == "training" and "." not in key else None


# OmegaConf's words for a value its structured config refuses: (value, its type or None, what the key takes).
_REFUSALS = (
    (re.compile(r"Value '(.*)' of type '(\w+)' could not be converted to (\w+)"), lambda m: m.groups()),
    (re.compile(r"Value '(.*)' is not a valid bool \(type (\w+)\)"), lambda m: (*m.groups(), "Boolean")),
    (re.compile(r"Invalid value '(.*)', expected one of \[(.*)\]"), lambda m: (m[1], "str", f"one of {m[2]}")),
    (re.compile(r"Invalid value assigned: (\w+) is not a ListConfig"), lambda m: (None, m[1], "List")),
    (re.compile(r"Cannot assign (\w+) to Dict"), lambda m: (None, m[1], "Dict")),
)
_TAKES = {"Integer": "an int", "Float": "a float", "Boolean": "a bool", "String": "a string", "List": "a list",
          "Dict": "a mapping"}


def _wrong_type(full_key: str, msg: str) -> str | None:
    """`<key>: got <value>, takes <what>` for a value of the wrong type, as core.config_types says it; what the
    key takes from our structured configs where it is ours (Hydra's launcher keys are not)."""
    from rlvr_vocab.config.schema import leaf_specs

    for pattern, parts in _REFUSALS:
        match = pattern.search(msg)
        if match is None:
            continue
        value, kind, takes = parts(match)
        if value is None:  # OmegaConf names only the type
            got = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
        else:
            got = repr(value) if kind == "str" else value
        spec = leaf_specs().get(full_key)
        return f"{full_key}: got {got}, takes {spec.describe() if spec else _TAKES.get(takes, takes)}"
    return None


def _raised_in(e: BaseException, function: str) -> bool:
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == function:
            return True
        tb = tb.tb_next
    return False


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Report a user-input error as `error: <one line>` and exit 2; let real failures raise."""
    try:
        yield
    except Exception as e:
        line = explain(e)
        if line is None:
            if getattr(e, "rlvr_logged", False):
                sys.exit(1)  # the job already logged its traceback (stderr and train.log)
            raise
        sys.stderr.write(f"error: {line}\n")
        sys.exit(EXIT_BAD_INPUT)


def mark_logged(e: BaseException) -> None:
    """The failure's traceback is already in the log: don't print it a second time."""
    try:
        e.rlvr_logged = True
    except AttributeError:
        pass


def prefer_raised_hydra_errors() -> None:
    # Let Hydra raise composition errors instead of printing its own multi-line report and exiting 1.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
