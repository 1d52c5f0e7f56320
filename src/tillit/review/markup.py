"""Escaped Markdown and HTML tables and text, for the model card and the fairness audit."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence


def md_text(text: object) -> str:
    """Text safe inside Markdown: no raw HTML tags (``<`` before a letter, ``/``, ``!``, ``?``)."""
    # "n < 30" stays readable; "<script" or "&lt;" would be markup to a renderer.
    text = re.sub(r"&(?=[A-Za-z#])", "&amp;", str(text))
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)


def md_cell(text: object) -> str:
    """Text safe inside a Markdown table cell: also no pipes, backslashes or line breaks."""
    escaped = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return md_text(escaped)


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table with every cell escaped."""
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |"]
    lines.append("| " + " | ".join("---" for _ in header) + " |")
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table with every cell escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
