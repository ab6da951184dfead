"""The report as a list of blocks, rendered twice: Markdown (GitHub, relative links) and one
self-contained HTML file (figures embedded as data URIs, no external resource of any kind; the
only links are the table of contents and the CSV files beside the report).

Inline text may use ``code`` and **bold**; everything else is escaped, in Markdown as in HTML
(text carries names that came from data: sites, models, experiments, failure reasons). A
:class:`Contents` block
lists the level-2 headings of the whole document, wherever they are; a :class:`Details` block
folds its blocks away (``<details>``, which GitHub renders in Markdown too).
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
from collections.abc import Iterator
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
class Banner:
    """A notice the reader must not miss (e.g. that the data are synthetic)."""

    title: str
    text: str


@dataclass
class Contents:
    """The table of contents: a link to every level-2 heading of the document."""

    title: str = "Contents"


@dataclass
class Details:
    """Blocks folded away under a one-line summary (an appendix)."""

    summary: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> None:
        self.blocks.extend(blocks)


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> None:
        self.blocks.extend(blocks)


def walk(blocks) -> Iterator:
    """Every block in document order, those inside :class:`Details` included."""
    for b in blocks:
        yield b
        if isinstance(b, Details):
            yield from walk(b.blocks)


def _slug(text: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to '-'."""
    plain = re.sub(r"[`*]", "", text).lower()
    kept = "".join(ch for ch in plain if ch in " -_" or unicodedata.category(ch)[0] in "LMN")
    return kept.replace(" ", "-")


def anchors(doc: Document) -> dict[int, str]:
    """The anchor of each heading (by ``id``), numbered like GitHub's when a text repeats."""
    seen: dict[str, int] = {_slug(doc.title): 1}
    out = {}
    for b in walk(doc.blocks):
        if isinstance(b, Heading):
            base = _slug(b.text)
            n = seen.get(base, 0)
            seen[base] = n + 1
            out[id(b)] = base if n == 0 else f"{base}-{n}"
    return out


def _contents(doc: Document) -> list[tuple[str, str]]:
    """(text, anchor) of every level-2 heading."""
    slugs = anchors(doc)
    return [
        (b.text, slugs[id(b)]) for b in walk(doc.blocks) if isinstance(b, Heading) and b.level == 2
    ]


# -- Markdown ----------------------------------------------------------------------------------


#: The report's own inline forms, kept in both renderings: `code` and **bold**.
_SPANS = re.compile(r"(`[^`]+`|\*\*[^*]+\*\*)")
#: What Markdown (GitHub's) would read as markup or HTML inside text: a backslash, emphasis,
#: code and strikethrough marks, underscores at a word's edge, the start of a tag, comment or
#: autolink, an entity, the ``](`` / ``][`` of a link or image.
_MD_ESCAPES = (
    (re.compile(r"\\"), r"\\\\"),
    (re.compile(r"([`*~])"), r"\\\1"),
    (re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"), r"\\_"),
    (re.compile(r"<(?=[A-Za-z/!?])"), r"\\<"),
    (re.compile(r"&(?=#?\w+;)"), r"\\&"),
    (re.compile(r"\](?=[(\[])"), r"\\]"),
)
#: A line that Markdown would open as a block: heading, quote, list item, rule, link definition.
_MD_BLOCK_START = re.compile(
    r"^([ \t]*)(?:(\d+)(?=[.)]\s)|([#>]|\[|[-+](?=\s)|[-=]{3,}[ \t]*$))", re.MULTILINE
)


def _md_plain(text: str) -> str:
    for pattern, repl in _MD_ESCAPES:
        text = pattern.sub(repl, text)
    return text


def _md_code(text: str) -> str:
    """A code span whose content is shown as it is, backticks in it included."""
    if "`" not in text:
        return f"`{text}`"
    fence = "`" * (max(len(run) for run in re.findall(r"`+", text)) + 1)
    return f"{fence} {text} {fence}"


def md_inline(text) -> str:
    """Inline text as Markdown: the report's `code` and **bold** kept, everything else escaped,
    so that what came from data (site, model and experiment names, reasons) shows as the text
    it is, never as Markdown or HTML (the HTML rendering escapes the same way)."""
    out = []
    for i, part in enumerate(_SPANS.split(str(text))):
        if i % 2 and part.startswith("`"):
            out.append(_md_code(part[1:-1]))
        elif i % 2:
            out.append(f"**{_md_plain(part[2:-2])}**")
        else:
            out.append(_md_plain(part))
    return "".join(out)


def _md_text(text) -> str:
    """A paragraph or list item: inline text whose lines cannot open a block either."""

    def escape(m: re.Match) -> str:  # a backslash before the mark; a list number's after it
        indent, number, mark = m.groups()
        return f"{indent}{number}\\" if number else f"{indent}\\{mark}"

    return _MD_BLOCK_START.sub(escape, md_inline(text))


def _md_cell(value) -> str:
    return md_inline(str(value).replace("\n", " ")).replace("|", "\\|")


def _md_fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``."""
    runs = re.findall(r"`{3,}", text)
    return "`" * max([3, *(len(r) + 1 for r in runs)])


def to_markdown(doc: Document) -> str:
    out = [f"# {md_inline(doc.title)}", ""]
    _md_blocks(doc.blocks, doc, out)
    return "\n".join(out).rstrip("\n") + "\n"


def _md_blocks(blocks, doc: Document, out: list[str]) -> None:
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + md_inline(b.text.replace("\n", " ")), ""]
        elif isinstance(b, Paragraph):
            out += [_md_text(b.text), ""]
        elif isinstance(b, Bullets):
            out += [f"- {_md_text(item)}" for item in b.items] + [""]
        elif isinstance(b, Code):
            fence = _md_fence(b.text)
            out += [f"{fence}{b.language}", b.text.rstrip("\n"), fence, ""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"*{md_inline(b.caption)}*", ""]
            cols = [_md_cell(c) for c in b.frame.columns]
            out.append("| " + " | ".join(cols) + " |")
            out.append("|" + "|".join("---" for _ in cols) + "|")
            for row in b.frame.itertuples(index=False):
                out.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
            out.append("")
            if b.csv:
                out += [f"Full precision: [{md_inline(b.csv)}]({b.csv})", ""]
        elif isinstance(b, Image):
            alt = md_inline(b.alt or b.caption).replace("[", "\\[").replace("]", "\\]")
            out += [
                f"![{alt}]({b.png})",
                "",
                f"*{md_inline(b.caption)}* ([SVG]({b.svg}))",
                "",
            ]
        elif isinstance(b, Banner):
            out += [f"> **{md_inline(b.title)}** {md_inline(b.text)}", ""]
        elif isinstance(b, Contents):
            links = " · ".join(f"[{md_inline(t)}](#{a})" for t, a in _contents(doc))
            out += [f"**{md_inline(b.title)}:** " + links, ""]
        elif isinstance(b, Details):
            out += ["<details>", f"<summary>{html.escape(b.summary)}</summary>", ""]
            _md_blocks(b.blocks, doc, out)
            out += ["</details>", ""]
        else:  # pragma: no cover - a block type without a renderer is a bug
            raise TypeError(f"unknown block {type(b).__name__}")


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
.csv{font-size:.85em;margin-top:-.6em}
.banner{border:2px solid #b00020;background:#fff4f4;padding:.6em .9em;margin:1em 0}
.banner strong{color:#b00020}
nav.toc{background:#f6f8fa;padding:.5em 1em;margin:1em 0}nav.toc ol{margin:.3em 0;padding:0}
nav.toc li{display:inline;margin-right:1.2em}
details{border:1px solid #ddd;padding:.4em .9em;margin:1em 0}
summary{cursor:pointer;font-weight:600}
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
    _html_blocks(doc.blocks, doc, anchors(doc), folder, out)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _html_blocks(
    blocks, doc: Document, slugs: dict[int, str], folder: Path, out: list[str]
) -> None:
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f'<h{b.level} id="{slugs[id(b)]}">{_inline(b.text)}</h{b.level}>')
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
                "<tr>" + "".join(f"<td>{_inline(v)}</td>" for v in row) + "</tr>"
                for row in b.frame.itertuples(index=False)
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            if b.csv:
                name = html.escape(b.csv, quote=True)
                out.append(f'<p class="csv">Full precision: <a href="{name}">{name}</a></p>')
        elif isinstance(b, Image):
            path = folder / b.svg
            alt = html.escape(b.alt or b.caption, quote=True)
            out.append(
                f'<figure><img src="{data_uri(path)}" alt="{alt}"{_width(path)}>'
                f"<figcaption>{_inline(b.caption)}</figcaption></figure>"
            )
        elif isinstance(b, Banner):
            out.append(
                f'<div class="banner" role="note"><strong>{html.escape(b.title)}</strong> '
                f"{_inline(b.text)}</div>"
            )
        elif isinstance(b, Contents):
            items = "".join(f'<li><a href="#{a}">{_inline(t)}</a></li>' for t, a in _contents(doc))
            out.append(
                f'<nav class="toc"><strong>{html.escape(b.title)}</strong><ol>{items}</ol></nav>'
            )
        elif isinstance(b, Details):
            out.append(f"<details><summary>{html.escape(b.summary)}</summary>")
            _html_blocks(b.blocks, doc, slugs, folder, out)
            out.append("</details>")
        else:  # pragma: no cover
            raise TypeError(f"unknown block {type(b).__name__}")
