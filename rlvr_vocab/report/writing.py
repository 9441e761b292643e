"""The report written to a file: one HTML page, or Markdown with its PNGs beside it."""

from pathlib import Path

from rlvr_vocab.report.document import Heading, Image
from rlvr_vocab.report.html import to_html
from rlvr_vocab.report.markdown import to_markdown
from rlvr_vocab.report.sections import QUESTION, build
from rlvr_vocab.report.summaries import DEFAULT_EFFECT
from rlvr_vocab.run.layout import RootPaths

FORMATS = ("html", "md")


def write_report(runs: list, root: Path, sweep: str, vs: str | None = None, out: Path | None = None,
                 fmt: str = "html", effect: float = DEFAULT_EFFECT) -> Path:
    """The report of sweep `sweep` (against `vs`) written to `out`, else to <root>/_reports/<sweep>[-vs-<vs>].<fmt>;
    `effect`: the difference to say how many seeds would detect."""
    return write(build(runs, sweep, vs, effect), out or default_out(root, sweep, vs, fmt), fmt)


def default_out(root: Path, sweep: str, vs: str | None, fmt: str) -> Path:
    return RootPaths(root).report(f"{sweep}{f'-vs-{vs}' if vs else ''}", fmt)


def write(blocks: list, out: Path, fmt: str = "html") -> Path:
    """The report as one HTML file, or (fmt "md") Markdown with its PNGs beside it (`<stem>-<plot>.png`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    title = next((b.text for b in blocks if isinstance(b, Heading)), QUESTION)
    if fmt == "html":
        out.write_text(to_html(blocks, title))
        return out
    names = {}
    for image in (b for b in blocks if isinstance(b, Image)):
        names[image.name] = f"{out.stem}-{image.name}.png"
        (out.parent / names[image.name]).write_bytes(image.png)
    out.write_text(to_markdown(blocks, names))
    return out
