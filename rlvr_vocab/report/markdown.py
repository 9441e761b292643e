"""The report as Markdown, its images referenced as files beside it."""

from typing import Any

from rlvr_vocab.report.document import Heading, Image, Link, Para, Table, Verdict


def to_markdown(blocks: list, image_names: dict[str, str]) -> str:
    """Markdown of the blocks; images referenced by the relative file names given (name -> file)."""
    return "\n\n".join(_md_block(b, image_names) for b in blocks) + "\n"


def _md_block(block, image_names: dict[str, str]) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + block.text
    if isinstance(block, Para):
        return f"*{block.text}*" if block.kind == "note" else f"> {block.text}" if block.kind == "answer" else \
            block.text
    if isinstance(block, Table):
        lines = ["| " + " | ".join(block.headers) + " |", "|" + "---|" * len(block.headers)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Image):
        return f"![{block.alt}]({image_names[block.name]})"
    return "```bash\n" + "\n".join(block.lines) + "\n```"


def _md_cell(cell: Any) -> str:
    if isinstance(cell, Link):
        return f"[{cell.text}]({cell.url})"
    text = cell.text if isinstance(cell, Verdict) else str(cell)
    return text.replace("|", "\\|").replace("\n", " ")
