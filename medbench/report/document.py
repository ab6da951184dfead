"""The report as a list of blocks, rendered twice: Markdown (GitHub, relative links) and one
self-contained HTML file (figures embedded as data URIs, no external resource of any kind).

Inline text may use ``code`` and **bold**; everything else is escaped.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Code:
    text: str
    language: str = ""


@dataclass
class Table:
    frame: pd.DataFrame  # cells already formatted as text
    caption: str = ""
    csv: str | None = None  # file name of the full-precision CSV beside the report


@dataclass
class Image:
    png: str  # file names relative to the report folder
    svg: str
    caption: str
    alt: str = ""


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> None:
        self.blocks.extend(blocks)


# -- Markdown ----------------------------------------------------------------------------------


def _md_cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Paragraph):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Code):
            out += [f"```{b.language}", b.text.rstrip("\n"), "```", ""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"*{b.caption}*", ""]
            cols = [_md_cell(c) for c in b.frame.columns]
            out.append("| " + " | ".join(cols) + " |")
            out.append("|" + "|".join("---" for _ in cols) + "|")
            for row in b.frame.itertuples(index=False):
                out.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
            out.append("")
            if b.csv:
                out += [f"Full precision: [{b.csv}]({b.csv})", ""]
        elif isinstance(b, Image):
            out += [
                f"![{b.alt or b.caption}]({b.png})",
                "",
                f"*{b.caption}* ([SVG]({b.svg}))",
                "",
            ]
        else:  # pragma: no cover - a block type without a renderer is a bug
            raise TypeError(f"unknown block {type(b).__name__}")
    return "\n".join(out).rstrip("\n") + "\n"


# -- HTML --------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1,h2,h3{line-height:1.2}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.85em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}
code{background:#f6f8fa;padding:0 .2em}pre code{padding:0;background:none}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption,.caption{font-style:italic;color:#555;font-size:.9em}
"""


def _inline(text: str) -> str:
    """Escape, then the two inline forms the report uses: `code` and **bold**."""
    s = html.escape(str(text))
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)


def data_uri(path: Path) -> str:
    """The file as a base64 data URI (SVG or PNG)."""
    kind = "image/svg+xml" if path.suffix.lower() == ".svg" else "image/png"
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


#: SVG sizes are print sizes (pt); on screen they read better a little larger.
SCREEN_SCALE = 1.35


def _width(svg: Path) -> str:
    """A width attribute from the SVG's own width in pt (images then keep their proportions)."""
    head = svg.read_text(encoding="utf-8", errors="replace")[:2000]
    m = re.search(r'<svg[^>]*\swidth="([\d.]+)pt"', head)
    if not m:
        return ""
    return f' width="{round(float(m.group(1)) * 96 / 72 * SCREEN_SCALE)}"'


def to_html(doc: Document, folder: Path) -> str:
    """One HTML file; every image of ``folder`` it shows is embedded (SVG as a data URI)."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    for b in doc.blocks:
        if isinstance(b, Heading):
            slug = re.sub(r"[^a-z0-9]+", "-", b.text.lower()).strip("-")
            out.append(f'<h{b.level} id="{slug}">{_inline(b.text)}</h{b.level}>')
        elif isinstance(b, Paragraph):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Code):
            out.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
        elif isinstance(b, Table):
            if b.caption:
                out.append(f'<p class="caption">{_inline(b.caption)}</p>')
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in b.frame.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                for row in b.frame.itertuples(index=False)
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Image):
            path = folder / b.svg
            alt = html.escape(b.alt or b.caption, quote=True)
            out.append(
                f'<figure><img src="{data_uri(path)}" alt="{alt}"{_width(path)}>'
                f"<figcaption>{_inline(b.caption)}</figcaption></figure>"
            )
        else:  # pragma: no cover
            raise TypeError(f"unknown block {type(b).__name__}")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
