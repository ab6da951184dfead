"""Layouts whose sheet lists image files: matching rows to files, parsing cells, reporting problems."""

import pytest

from medbench.data.read.manifest import read_manifest
from medbench.errors import DataError
from tests.data.layouts import flat_layout, gdph_layout, one_line_error, pattern, write_png


def test_folder_without_images(tmp_path):
    (tmp_path / "BIRADS&FOLD.xlsx").write_bytes(b"")
    assert "no image files" in one_line_error(tmp_path)


def test_empty_sheet(tmp_path):
    ds = gdph_layout(tmp_path)
    ds.rows = []
    ds.write_sheet()
    assert "has no rows" in one_line_error(tmp_path)


def test_duplicate_ids_name_the_id_and_both_rows(tmp_path):
    ds = gdph_layout(tmp_path)
    ds.rows.append(dict(ds.rows[3]))
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert "duplicate IDs" in message and "'benign(3)' (rows 5 and 26)" in message


@pytest.mark.parametrize("bad", ["../benign(0)", "GDPH/benign(0)", "..", "C:\\x\\benign(0)"])
def test_ids_that_are_paths(tmp_path, bad):
    ds = gdph_layout(tmp_path)
    ds.rows[2]["ID"] = bad
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert f"row 4 ID {bad!r}" in message and "is a path" in message


def test_missing_images_name_the_first_few_and_the_count(tmp_path):
    ds = gdph_layout(tmp_path)
    for id_ in ["benign(0)", "benign(1)", "benign(2)", "benign(3)", "benign(4)", "benign(5)"]:
        ds.files[id_].unlink()
    message = one_line_error(tmp_path)
    assert "6 listed images missing" in message
    assert "'benign(0)' (row 2)" in message and "and 1 more" in message


def test_images_not_in_the_sheet(tmp_path):
    ds = gdph_layout(tmp_path)
    ds.rows = [r for r in ds.rows if r["ID"] != "malignant(8)"]
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert "1 image not in" in message and "GDPH/malignant(8).png" in message


def test_same_id_in_two_site_folders(tmp_path):
    ds = gdph_layout(tmp_path)
    write_png(tmp_path / "GDPH" / "benign(0).png", pattern(99))
    message = one_line_error(tmp_path)
    assert "'benign(0)' (row 2) matches GDPH/benign(0).png and SYSUCC/benign(0).png" in message
    assert ds  # the layout itself is otherwise fine


@pytest.mark.parametrize(
    "value, shown", [(None, "row 4 is empty"), ("two", "row 4 'two'"), (2.5, "row 4 '2.5'")]
)
def test_fold_values_must_be_integers(tmp_path, value, shown):
    ds = gdph_layout(tmp_path)
    ds.rows[2]["fold"] = value
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert "column 'fold' must hold integers" in message and shown in message


def test_file_names_without_a_label(tmp_path):
    ds = flat_layout(tmp_path)
    ds.files["benign (2)"].rename(tmp_path / "images" / "case (2).png")
    ds.rows[1]["image"] = "case (2).png"
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert "'case (2).png' (row 3)" in message and "without a label" in message


def test_label_column_and_file_names_disagreeing_stop_unless_told_which_wins(tmp_path):
    """A column named like a label can hold something else (site codes): where it contradicts
    the file names, reading stops with one line, unless data.labels says which one wins."""
    ds = flat_layout(tmp_path)
    ds.columns = ("image", "label")
    for r in ds.rows:
        r["label"] = "malignant" if "malignant" in r["image"] else 0
    ds.rows[0]["label"] = 1  # a benign-named file labelled malignant
    ds.write_sheet()
    with pytest.raises(
        DataError,
        match=r"the label column disagrees with the file names for 1 image of \d+ \(e\.g\. row 2 ",
    ):
        read_manifest(tmp_path)
    m = read_manifest(tmp_path, labels="sheet")
    assert m["label"].iloc[0] == 1 and m["label"].sum() == 7
    m = read_manifest(tmp_path, labels="names")
    assert m["label"].iloc[0] == 0 and m["label"].sum() == 6


def test_a_label_column_of_site_codes_is_caught(tmp_path):
    """The reported case: a 'Class' column holding 0/1 site codes, not labels."""
    ds = flat_layout(tmp_path, n_benign=10, n_malignant=10)
    ds.columns = ("image", "Class")
    for i, r in enumerate(ds.rows):
        r["Class"] = i % 2  # alternating site codes
    ds.write_sheet()
    with pytest.raises(DataError, match=r"disagrees with the file names for 10 images of 20"):
        read_manifest(tmp_path)


def test_label_column_with_bad_values(tmp_path):
    ds = flat_layout(tmp_path)
    ds.columns = ("image", "label")
    for r in ds.rows:
        r["label"] = 0
    ds.rows[4]["label"] = "maybe"
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert "column 'label'" in message and "row 6 'maybe'" in message


def test_two_columns_for_one_role(tmp_path):
    ds = gdph_layout(tmp_path, stray=None)
    ds.columns = (*ds.columns, "reader1")
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert message.endswith(
        "columns 'BIRADS-reader1' and 'reader1' both read as 'birads_reader1'; keep one"
    )
