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
    assert "| x\\|y | z |" in md and "| 1\\|2 | <i> |" in md
    assert "![a figure](f.png)" in md and "[t.csv](t.csv)" in md and "```yaml" in md
    html = d.to_html(doc, tmp_path)
    assert "<code>code</code>" in html and "<strong>bold</strong>" in html
    assert "&lt;b&gt;raw&lt;/b&gt;" in html and "&lt;i&gt;" in html and "k: &lt;v&gt;" in html
    assert 'src="data:image/svg+xml;base64,' in html and "f.png" not in html


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
