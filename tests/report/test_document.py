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
