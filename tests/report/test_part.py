"""The contract of the report's parts: a new topic is one module (here: this test's own
functions) and one entry in the list of parts, and its table, figure and section reach the built
report; the parts' results are computed once, on demand, in any order they need each other."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from medbench.report import document as d
from medbench.report.analysis import analyse
from medbench.report.build import write_report
from medbench.report.figures import save, subplots
from medbench.report.part import Analysis, Part, Writer
from medbench.report.parts import PARTS

# -- a toy topic: the number of test images per model, read from the performance part ------------


def toy_analyse(a: Analysis) -> pd.DataFrame:
    pooled = a.result("performance").pooled  # another part's numbers
    return pooled.groupby("model", as_index=False)["n_images"].max()


def toy_tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"toy_images": frame}


def toy_figures(frame: pd.DataFrame, a: Analysis, out):
    fig, axes = subplots(1, 1, 3.0, 2.0)
    axes[0, 0].bar(frame["model"], frame["n_images"])
    return {"toy": save(fig, out, "fig_toy_images")}


def toy_sections(frame: pd.DataFrame, w: Writer) -> None:
    w.doc.add(d.Heading("Toy topic"), d.Paragraph(f"{len(frame)} model(s) counted."))
    w.table(frame.rename(columns={"model": "Model"}), "Test images per model.", "toy_images")
    w.image("toy", "Test images per model.")


TOY = Part("toy", toy_analyse, toy_tables, toy_figures, toy_sections)


@pytest.mark.e2e
def test_a_new_part_is_one_module_and_one_list_entry(generated, tmp_path):
    parts = [*PARTS[:-1], TOY, PARTS[-1]]  # before the appendix
    a = analyse(generated, parts=parts)
    out = write_report(generated, a, tmp_path / "report", log=False)

    table = pd.read_csv(out / "table_toy_images.csv")
    assert dict(zip(table["model"], table["n_images"], strict=True)) == {"m": 72, "n": 24}
    assert (out / "fig_toy_images.png").is_file() and (out / "fig_toy_images.svg").is_file()
    md = (out / "report.md").read_text()
    section = md[md.index("## Toy topic") : md.index("## Appendix")]
    assert "2 model(s) counted." in section
    assert "[table_toy_images.csv](table_toy_images.csv)" in section
    assert "![Test images per model.](fig_toy_images.png)" in section
    assert md.index("## Flatness of the minima") < md.index("## Toy topic")
    html = (out / "report.html").read_text()
    assert 'id="toy-topic"' in html and 'href="#toy-topic"' in html  # in the contents too
    assert re.search(r'<figure><img src="data:image/svg\+xml;base64,[^"]+" alt="Test images', html)


@pytest.mark.e2e
def test_the_report_without_a_part_still_builds(generated, tmp_path):
    parts = [p for p in PARTS if p.name not in ("readers", "sites")]
    a = analyse(generated, parts=parts)
    out = write_report(generated, a, tmp_path / "report", log=False)
    md = (out / "report.md").read_text()
    assert "## Clinical context" not in md and "## Per site" not in md
    assert not (out / "table_readers.csv").exists() and (out / "table_performance.csv").exists()


def test_parts_are_analysed_once_in_the_order_they_need_each_other(generated):
    calls: list[str] = []

    def counted(name: str, needs: str | None) -> Part:
        def run(a: Analysis) -> str:
            calls.append(name)
            return f"{name}+{a.result(needs)}" if needs else name

        return Part(name, run)

    a = analyse(generated, parts=[counted("late", "early"), counted("early", None)])
    assert calls == ["late", "early"]  # "late" asked for "early" while it was analysed
    assert a.result("late") == "late+early" and calls == ["late", "early"]
    assert list(a.results) == ["early", "late"]
    with pytest.raises(KeyError, match="no part 'missing'"):
        a.result("missing")
    with pytest.raises(ValueError, match="parts named twice: early"):
        analyse(generated, parts=[counted("early", None), counted("early", None)])
    with pytest.raises(RuntimeError, match="needs its own result"):
        analyse(generated, parts=[counted("self", "self")])


def test_every_shipped_part_has_its_own_name_tables_and_figures():
    assert len(PARTS) >= 8 and len({p.name for p in PARTS}) == len(PARTS)
    assert PARTS[0].name == "verdict" and PARTS[-1].name == "appendix"
