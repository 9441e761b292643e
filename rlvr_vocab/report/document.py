"""The report as a list of blocks, independent of how it is rendered (rlvr_vocab.report.html, .markdown)."""

from typing import Any, NamedTuple


class Link(NamedTuple):
    text: str
    url: str


class Verdict(NamedTuple):
    """A table cell that says which arm is better, coloured by its kind."""

    text: str
    kind: str  # better | worse | unclear


class Heading(NamedTuple):
    text: str
    level: int = 2


class Para(NamedTuple):
    text: str
    kind: str = "p"  # p | note | answer


class Table(NamedTuple):
    headers: list[str]
    rows: list[list[Any]]  # cells: text, Link or Verdict


class Image(NamedTuple):
    name: str
    png: bytes
    alt: str


class Code(NamedTuple):
    lines: list[str]
