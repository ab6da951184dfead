import re

import pandas as pd

from medbench.report import document as d


def test_markdown_and_html_escape_what_they_must(tmp_path):
    (tmp_path / "f.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    doc = d.Document("T <1>")
    doc.add(
        d.Heading("Part"),
        d.Paragraph("a `code` and **bold** <b>raw</b>"),
        d.Table(pd.DataFrame({"x|y": ["1|2"], "z": ["<i>"]}), "cap", "t.csv"),
        d.Image("f.png", "f.svg", "a figure"),
        d.Code("k: <v>", "yaml"),
    )
    md = d.to_markdown(doc)
    assert "| x\\|y | z |" in md and "| 1\\|2 | \\<i> |" in md
    assert "![a figure](f.png)" in md and "[t.csv](t.csv)" in md and "```yaml" in md
    html = d.to_html(doc, tmp_path)
    assert "<code>code</code>" in html and "<strong>bold</strong>" in html
    assert "&lt;b&gt;raw&lt;/b&gt;" in html and "&lt;i&gt;" in html and "k: &lt;v&gt;" in html
    assert 'src="data:image/svg+xml;base64,' in html and "f.png" not in html


def test_markdown_escapes_what_came_from_data():
    """Site, model and experiment names went raw into report.md (HTML there; report.html was
    escaped): every text but the report's own `code` and **bold** is escaped now."""
    site = "<img src=x onerror=alert(1)>"
    doc = d.Document("study <b>1</b>")
    doc.add(
        d.Heading(f"Per site: {site}"),
        d.Paragraph(f"{site} and *em* _u_ [link](http://x) &amp; `{site}` **{site}**"),
        d.Paragraph("# not a heading\n- not a list\n> not a quote\n---"),
        d.Bullets([f"{site}: 3 images", "1. not a numbered list"]),
        d.Table(pd.DataFrame({"Site": [site, "a|b", "x`y"]}), f"rows of {site}"),
        d.Code("name: ```\n", "yaml"),
    )
    md = d.to_markdown(doc)
    outside_code = re.sub(r"`[^`]*`", "", md)
    assert "<img" not in outside_code.replace("\\<img", "")  # no tag opens outside code
    assert "# study \\<b>1\\</b>" in md
    assert "## Per site: \\<img src=x onerror=alert(1)>" in md
    assert "\\*em\\* \\_u\\_ [link\\](http://x) \\&amp; `" + site + "` **\\<img" in md
    assert "\\# not a heading\n\\- not a list\n\\> not a quote\n\\---" in md
    assert "- \\<img src=x onerror=alert(1)>: 3 images" in md
    assert "- 1\\. not a numbered list" in md  # CommonMark reads "1\\." as text
    assert "| a\\|b |" in md and "| x\\`y |" in md
    assert "````yaml\nname: ```\n````" in md  # the fence outlasts the backticks inside


def test_contents_banner_and_folded_appendix(tmp_path):
    doc = d.Document("Report")
    appendix = d.Details("Config & more")
    appendix.add(d.Heading("Configuration", 3), d.Paragraph("inside"))
    doc.add(
        d.Banner("SYNTHETIC DATA.", "not **patients**"),
        d.Contents(),
        d.Heading("Verdict"),
        d.Heading("Clinical context: the radiologists' BI-RADS calls"),
        d.Heading("Verdict"),  # a repeated heading gets GitHub's numbered anchor
        d.Heading("Appendix"),
        appendix,
    )
    md = d.to_markdown(doc)
    assert "> **SYNTHETIC DATA.** not **patients**" in md
    assert (
        "**Contents:** [Verdict](#verdict) · [Clinical context: the radiologists' BI-RADS calls]"
        "(#clinical-context-the-radiologists-bi-rads-calls) · [Verdict](#verdict-1) · "
        "[Appendix](#appendix)"
    ) in md
    assert "<details>\n<summary>Config &amp; more</summary>\n\n### Configuration" in md
    assert md.rstrip().endswith("</details>")
    html = d.to_html(doc, tmp_path)
    ids = re.findall(r'\bid="([^"]+)"', html)
    links = re.findall(r'href="#([^"]+)"', html)
    assert links == [
        "verdict",
        "clinical-context-the-radiologists-bi-rads-calls",
        "verdict-1",
        "appendix",
    ]
    assert set(links) <= set(ids) and "configuration" in ids
    assert '<div class="banner" role="note"><strong>SYNTHETIC DATA.</strong> not <strong>' in html
    assert html.index("<details><summary>Config &amp; more</summary>") < html.index("inside")


def test_names_from_data_show_as_text_in_markdown():
    """A site, model or experiment name is text: it opens no block, link, tag or emphasis."""
    assert d.md_inline("site <b>x</b> & a_b_ *c* [l](u)") == (
        "site \\<b>x\\</b> & a_b\\_ \\*c\\* [l\\](u)"
    )
    assert d.md_inline("keep `co`de` and **bold**") == "keep `co`de\\` and **bold**"
    assert d.md_inline("`a``b`") == "`a``b`"  # spans split on single backticks
    md = d.to_markdown(d.Document("t", (d.Paragraph("# not a heading\n1. not a list"),)))
    assert "\\# not a heading\n1\\. not a list\n" in md  # CommonMark: 1\\. is text
