"""The report as one self-contained HTML file (tables and base64 images inside) and as Markdown.

Both render the same :class:`Document`, so the two never say different things.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { font-weight: 600; } img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #555; }
"""


@dataclass(frozen=True)
class Section:
    """A titled part of the report: sentences, then tables, then images (PNG paths)."""

    title: str
    lines: tuple[str, ...] = ()
    tables: tuple[tuple[str, pd.DataFrame], ...] = ()
    images: tuple[tuple[str, Path], ...] = ()


@dataclass(frozen=True)
class Document:
    """What the report says: a title, facts about the analysis (``meta``) and its sections."""

    title: str
    meta: tuple[tuple[str, str], ...]
    sections: tuple[Section, ...] = field(default_factory=tuple)


def cell(value) -> str:
    """A table cell as text: floats to four significant places, missing values as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a GitHub Markdown table (no index); ``(none)`` when it has no rows."""
    if frame.empty:
        return "(none)"

    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(esc(str(c)) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(esc(cell(v)) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def html_table(frame: pd.DataFrame) -> str:
    """``frame`` as an HTML table, values formatted as in :func:`cell` and escaped."""
    if frame.empty:
        return "<p class='note'>(none)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_markdown(doc: Document, relative_to: Path | None = None) -> str:
    """The document as Markdown; images are linked relative to ``relative_to`` (the report folder)."""
    out = [f"# {doc.title}", ""]
    out += [f"- **{key}**: {value}" for key, value in doc.meta]
    for section in doc.sections:
        out += ["", f"## {section.title}", ""]
        out += [f"- {line}" for line in section.lines]
        for title, frame in section.tables:
            out += ["", f"**{title}**", "", markdown_table(frame)] if title else ["", markdown_table(frame)]
        for title, path in section.images:
            link = path.relative_to(relative_to) if relative_to else path
            out += ["", f"![{title}]({link.as_posix()})"]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


def render_html(doc: Document) -> str:
    """The document as one HTML page that needs no other file: images are embedded as base64."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(doc.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1><dl>",
        *(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in doc.meta),
        "</dl>",
    ]
    for section in doc.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.lines:
            parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in section.lines) + "</ul>")
        for title, frame in section.tables:
            parts.append((f"<h3>{html.escape(title)}</h3>" if title else "") + html_table(frame))
        for title, path in section.images:
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            parts.append(
                f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(title)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
