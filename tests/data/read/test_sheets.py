"""Label sheets: which file and worksheet are read, and how their rows are numbered."""

import pandas as pd
import pytest

from medbench.data.read.manifest import read_manifest
from medbench.data.read.sheets import column_key, filled_rows, find_sheet_file
from medbench.errors import DataError, MedbenchWarning
from tests.data.layouts import flat_layout, gdph_layout, one_line_error, write_sheet


@pytest.mark.parametrize(
    "name, key",
    [
        ("ID", "id"),
        (" id ", "id"),
        ("BIRADS-reader1", "biradsreader1"),
        ("Birads Reader 2", "biradsreader2"),
    ],
)
def test_column_key(name, key):
    assert column_key(name) == key


def test_filled_rows_keep_the_sheet_row_numbers():
    table = pd.DataFrame({"ID": ["a", None, " ", "b"], "fold": [1, None, None, 2]}, dtype=object)
    rows = filled_rows(table)
    assert rows.index.tolist() == [2, 5]  # header is row 1; the blank rows 3 and 4 are dropped
    assert rows["ID"].tolist() == ["a", "b"]


def test_a_named_sheet_file_must_exist(tmp_path):
    with pytest.raises(DataError, match="labels.csv: sheet file not found"):
        find_sheet_file(tmp_path, "labels.csv", preferred="BIRADS&FOLD.xlsx")


def test_sheet_argument_picks_a_worksheet_or_a_file(tmp_path):
    ds = gdph_layout(tmp_path, stray=None)
    assert read_manifest(tmp_path, sheet="prediction").attrs["sheet_name"] == "prediction"
    assert read_manifest(tmp_path, sheet="BIRADS&FOLD.xlsx:prediction").attrs["layout"] == (
        "gdph_sysucc"
    )
    write_sheet(tmp_path / "other.csv", ds.rows, ds.columns)
    assert read_manifest(tmp_path, sheet="other.csv").attrs["sheet_file"].endswith("other.csv")
    message = one_line_error(tmp_path, sheet="predictions")
    assert "no worksheet 'predictions'" in message and "'notes', 'prediction'" in message
    assert "did you mean 'prediction'" in message


def test_excel_lock_files_are_ignored(tmp_path):
    gdph_layout(tmp_path, stray=None)
    (tmp_path / "~$BIRADS&FOLD.xlsx").write_bytes(b"lock")
    (tmp_path / "~$other.xlsx").write_bytes(b"lock")
    assert len(read_manifest(tmp_path)) == 24


def test_no_sheet_file(tmp_path):
    ds = gdph_layout(tmp_path)
    ds.sheet.unlink()
    message = one_line_error(tmp_path)
    assert str(tmp_path) in message and "no label sheet" in message


def test_several_sheet_files_are_ambiguous(tmp_path):
    flat_layout(tmp_path)
    write_sheet(tmp_path / "old.xlsx", [], ("image",), extra_sheet=False)
    message = one_line_error(tmp_path)
    assert "several label sheets" in message and "labels.csv" in message and "old.xlsx" in message


def test_workbook_without_a_usable_sheet_names_its_sheets(tmp_path):
    ds = gdph_layout(tmp_path)
    ds.sheet_name = "Sheet2"
    ds.columns = ("image", "BIRADS-reader1", "BIRADS-reader2", "fold")
    ds.rows = [{"image" if k == "ID" else k: v for k, v in r.items()} for r in ds.rows]
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert "no usable worksheet" in message and "'notes', 'Sheet2'" in message


def test_corrupt_workbook(tmp_path):
    ds = gdph_layout(tmp_path)
    ds.sheet.write_text("this is not a workbook")
    message = one_line_error(tmp_path)
    assert "BIRADS&FOLD.xlsx" in message and "cannot read the workbook" in message


def test_a_hidden_worksheet_read_while_visible_ones_exist_is_said(tmp_path):
    from openpyxl import load_workbook

    ds = gdph_layout(tmp_path, stray=None)  # 'prediction' plus an unrelated visible sheet
    book = load_workbook(ds.sheet)
    book["prediction"].sheet_state = "hidden"
    book.save(ds.sheet)
    with pytest.warns(
        MedbenchWarning, match=r"read the hidden worksheet 'prediction' \(visible: '.*'\)"
    ):
        m = read_manifest(tmp_path)
    assert m.attrs["sheet_name"] == "prediction"
