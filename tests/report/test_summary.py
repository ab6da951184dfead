import math

import pandas as pd

from medbench.report.summary import (
    bottom_lines,
    read_bottom_lines,
    render_summary,
    render_verdict,
    summary_table,
)


def test_summary_table_is_the_performance_table_of_the_analysis(analysis):
    table = summary_table(analysis).set_index(["model", "optimizer"])
    perf = analysis.result("performance").performance.set_index(["model", "optimizer"])
    assert list(table.index) == [("m", "adam"), ("m", "sam"), ("n", "adam")]
    for key, row in table.iterrows():
        p = perf.loc[key]
        assert row["runs"] == p["n_finished"]
        for col in ("auc_mean", "auc_std", "accuracy_mean", "accuracy_std"):
            assert row[col] == p[col] or (math.isnan(row[col]) and math.isnan(p[col])), col
    assert list(table["failed"]) == [0, 1, 0]  # sam fold 3 of "m" failed
    assert math.isnan(table.loc[("n", "adam"), "auc_std"])  # one fold: no spread


def test_render_summary_prints_what_the_report_prints(analysis):
    table = summary_table(analysis)
    lines = render_summary(table).splitlines()
    assert lines[0] == "model            optimizer  test AUC         test accuracy    runs"
    m_sam = table.iloc[1]
    auc = f"{m_sam['auc_mean']:.3f} ± {m_sam['auc_std']:.3f}"
    acc = f"{m_sam['accuracy_mean']:.3f} ± {m_sam['accuracy_std']:.3f}"
    assert lines[2] == f"{'m':<16} {'sam':<10} {auc:<16} {acc:<16} 2 (1 failed)"
    n_adam = table.iloc[2]  # a single fold: the mean alone, as in report.md
    auc, acc = f"{n_adam['auc_mean']:.3f}", f"{n_adam['accuracy_mean']:.3f}"
    assert lines[3] == f"{'n':<16} {'adam':<10} {auc:<16} {acc:<16} 1"


def test_render_summary_says_undefined_without_a_value():
    row = {"model": "m", "optimizer": "adam", "runs": 1, "failed": 0}
    nan = {"auc_mean": math.nan, "auc_std": math.nan, "accuracy_mean": 0.5, "accuracy_std": 0.1}
    line = render_summary(pd.DataFrame([{**row, **nan}])).splitlines()[1]
    assert line.split()[2] == "undefined" and "0.500 ± 0.100" in line


def test_bottom_lines_are_the_verdicts_and_wrap_under_their_model(analysis, tmp_path):
    lines = bottom_lines(analysis)
    assert list(lines) == ["m", "n"]
    assert lines == analysis.result("verdict").bottom_lines
    assert lines["n"].endswith("only adam has results, nothing to compare.")
    text = render_verdict({"m": "word " * 40}).splitlines()
    assert text[0].startswith("verdict  m: word") and all(len(t) <= 100 for t in text)
    assert all(t.startswith(" " * 9 + "word") for t in text[1:])
    pd.DataFrame({"model": ["m"], "bottom_line": ["No detectable difference."]}).to_csv(
        tmp_path / "table_verdict.csv", index=False
    )
    assert read_bottom_lines(tmp_path) == {"m": "No detectable difference."}
    assert read_bottom_lines(tmp_path / "none") == {} and render_verdict({}) == ""
