"""The markers a completion lays out its reasoning and its solution with (the `prompt` section, conf/prompt/): what
makes a set of them usable, and the layouts the format rewards (rlvr_vocab.model.rewards) look for.

Standard library only: rlvr_vocab.model.rewards imports it, and it must stay cheap to import.
"""

from collections.abc import Mapping
from typing import Any

from rlvr_vocab.core.errors import ConfigError

MARKER_KEYS = ("reasoning_start", "reasoning_end", "solution_start", "solution_end")


def check_markers(where: str, markers: Mapping[str, Any]) -> None:
    """Raise ConfigError naming `<where>.<key>` unless the reasoning markers are non-empty text, the solution markers
    both non-empty or both null, and no marker equals or contains another (each is counted in a completion)."""
    for key in MARKER_KEYS:
        marker = markers[key]
        if marker is None and key.startswith("solution"):
            continue
        if not isinstance(marker, str) or not marker.strip():
            fix = "use null for no solution markers" if key.startswith("solution") else "set it to the model's marker"
            raise ConfigError(f"{where}.{key}", f"is {marker!r}: a marker must be non-empty text", fix)
    if (markers["solution_start"] is None) != (markers["solution_end"] is None):
        unset = "solution_start" if markers["solution_start"] is None else "solution_end"
        raise ConfigError(f"{where}.{unset}", "is null but its pair is set",
                          "set both solution markers, or both to null (the answer then follows reasoning_end)")
    present = [(key, markers[key]) for key in MARKER_KEYS if markers[key] is not None]
    for i, (key, marker) in enumerate(present):
        for other_key, other in present[:i]:
            if marker == other:
                raise ConfigError(f"{where}.{key}", f"is {marker!r}, the same as {where}.{other_key}",
                                  "every marker must be distinct")
            if marker in other or other in marker:
                raise ConfigError(f"{where}.{key}", f"{marker!r} and {where}.{other_key} {other!r}: one holds the "
                                  "other, so a completion would count it twice", "use markers that do not overlap")


def present_markers(*markers: str | None) -> list[str]:
    """The markers in use (unset solution markers left out)."""
    return [m for m in markers if m is not None]


def well_formatted(text: str, reasoning_start: str, reasoning_end: str, solution_start: str | None,
                   solution_end: str | None) -> bool:
    """`<reasoning_start>thought<reasoning_end>answer` with each marker once and both parts non-empty; with solution
    markers the answer is `<solution_start>solution<solution_end>`, with only whitespace around it."""
    # String operations rather than one regex: no backtracking cost on 100k-char completions.
    text = text.strip()
    markers = present_markers(reasoning_start, reasoning_end, solution_start, solution_end)
    if not text.startswith(reasoning_start) or any(text.count(m) != 1 for m in markers):
        return False
    thought, closed, answer = text[len(reasoning_start):].partition(reasoning_end)
    # An empty thought is what chat templates emit with thinking switched off: not the format we want.
    if not closed or not thought.strip():
        return False
    if solution_start is None or solution_end is None:
        return bool(answer.strip())
    answer = answer.strip()
    if not (answer.startswith(solution_start) and answer.endswith(solution_end)):
        return False
    return bool(answer[len(solution_start):len(answer) - len(solution_end)].strip())


def marker_score(text: str, markers: list[str], once: float, missing: float, repeated: float) -> float:
    """Per marker: `once` if the text holds it exactly once, `missing` if not at all, `repeated` if more often."""
    counts = [text.count(m) for m in markers]
    return sum(once if n == 1 else missing if n == 0 else repeated for n in counts)
