"""The report as one self-contained HTML page: inline CSS, images as data URIs, no scripts, nothing fetched."""

import base64
import html
from typing import Any

from rlvr_vocab.report.document import Heading, Image, Link, Para, Table, Verdict

_CSS = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1b1f24; margin: 0;
       background: #fff; }
main { max-width: 1220px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 4px 0 10px; } h2 { font-size: 20px; margin: 30px 0 8px; border-bottom: 1px solid #d8dee4;
     padding-bottom: 4px; } h3 { font-size: 16px; margin: 18px 0 6px; }
p.note { color: #57606a; font-size: 13px; } p.answer { background: #f6f8fa; border-left: 4px solid #0969da;
         padding: 6px 10px; margin: 6px 0; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } tr:nth-child(even) td { background: #fbfcfd; }
td.better { background: #dafbe1 !important; } td.worse { background: #ffebe9 !important; }
td.unclear { background: #fff8c5 !important; }
pre { background: #f6f8fa; padding: 8px 10px; overflow-x: auto; font-size: 12.5px; white-space: pre-wrap;
      word-break: break-all; }
img { max-width: 100%; border: 1px solid #d8dee4; }
"""


def to_html(blocks: list, title: str) -> str:
    """One self-contained page: inline CSS, images as data URIs, no scripts, nothing fetched."""
    body = "\n".join(_html_block(b) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n")


def _html_block(block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        return f'<p class="{block.kind}">{_inline_code(block.text)}</p>'
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
        rows = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>\n" for row in block.rows)
        return f"<table>\n<tr>{head}</tr>\n{rows}</table>"
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode()
        return f'<p><img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}"></p>'
    return "<pre>" + "\n".join(html.escape(line) for line in block.lines) + "</pre>"


def _html_cell(cell: Any) -> str:
    if isinstance(cell, Link):
        return f'<td><a href="{html.escape(cell.url)}">{html.escape(cell.text)}</a></td>'
    if isinstance(cell, Verdict):
        return f'<td class="{cell.kind}">{html.escape(cell.text)}</td>'
    return f"<td>{html.escape(str(cell))}</td>"


def _inline_code(text: str) -> str:
    """`code` spans as <code>, the rest escaped."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
