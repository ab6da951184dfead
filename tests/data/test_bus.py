import re
import warnings

import pandas as pd
import pytest

from medbench.data.bus import (
    MANIFEST_COLUMNS,
    label_from_name,
    read_manifest,
)
from medbench.errors import DataError, MedbenchWarning
from tests.data.layouts import flat_layout, gdph_layout, pattern, write_png, write_sheet


def read_quietly(root, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MedbenchWarning)
        return read_manifest(root, **kwargs)


def one_line_error(root, **kwargs) -> str:
    with pytest.raises(DataError) as exc:
        read_quietly(root, **kwargs)
    message = str(exc.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    "name, label",
    [
        ("benign(12)", 0),
        ("Malignant(3)", 1),
        ("MALIGNANT_001", 1),
        ("case_malignant_7", 1),
        ("img_benign", 0),
        ("img_001", None),
        ("benign_vs_malignant", 0),
    ],
)
def test_label_from_name(name, label):
    assert label_from_name(name) == label


# --------------------------------------------------------------------------- release layout


def test_release_layout_is_read_whole(tmp_path):
    ds = gdph_layout(tmp_path)
    with pytest.warns(MedbenchWarning, match=r"row 8 '4/5'"):
        m = read_manifest(tmp_path)
    assert tuple(m.columns) == MANIFEST_COLUMNS
    assert len(m) == len(ds.rows) == 24
    assert m["id"].tolist() == [r["ID"] for r in ds.rows]
    assert m.attrs["layout"] == "gdph_sysucc"
    assert m.attrs["sheet_name"] == "prediction"  # the extra sheet placed first is ignored
    assert m.attrs["sheet_file"].endswith("BIRADS&FOLD.xlsx")
    # labels from the prefix, sites from the folders
    assert (m["label"] == m["id"].str.startswith("malignant").astype(int)).all()
    assert m["label"].dtype == "int64"
    assert m.groupby(["site", "label"]).size().to_dict() == {
        ("GDPH", 0): 6,
        ("GDPH", 1): 5,
        ("SYSUCC", 0): 6,
        ("SYSUCC", 1): 7,
    }
    first = m.set_index("id")
    assert first.loc["benign(0)", "site"] == "SYSUCC"
    assert first.loc["benign(6)", "site"] == "GDPH"  # numbering continues across sites
    # absolute paths to existing files
    assert all(p.startswith(str(tmp_path.resolve())) for p in m["path"])
    assert first.loc["benign(6)", "path"].endswith("GDPH/benign(6).png")
    # folds as given (1-based here), nullable integers
    assert str(m["fold"].dtype) == "Int64"
    assert sorted(m["fold"].unique().tolist()) == [1, 2, 3, 4, 5]
    # BI-RADS from numbers and text alike
    r1 = first["birads_reader1"]
    assert r1["benign(0)"] == "2" and r1["benign(1)"] == "3" and r1["benign(4)"] == "2"
    assert r1["malignant(0)"] == "4a" and r1["malignant(2)"] == "5" and r1["malignant(6)"] == "4c"
    assert set(m["birads_reader1"].dropna()) <= {"2", "3", "4", "4a", "4b", "4c", "5"}
    # the one stray value is missing, nothing else is
    assert pd.isna(first.loc["malignant(0)", "birads_reader2"])
    assert m["birads_reader2"].isna().sum() == 1
    assert m["birads_reader1"].isna().sum() == 0


def test_release_layout_with_one_site_and_csv_sheet(tmp_path):
    ds = gdph_layout(tmp_path, per_site={"GDPH": (5, 5)}, stray=None)
    ds.sheet.unlink()
    ds.sheet = tmp_path / "folds.csv"
    ds.write_sheet()
    m = read_manifest(tmp_path)
    assert m.attrs["layout"] == "gdph_sysucc" and m.attrs["sheet_name"] is None
    assert set(m["site"]) == {"GDPH"}
    assert m["fold"].notna().all()


def test_column_names_match_loosely(tmp_path):
    ds = gdph_layout(tmp_path, stray=None)
    rename = {"ID": " id ", "BIRADS-reader1": "birads_reader1", "BIRADS-reader2": "Birads Reader 2"}
    ds.rows = [{rename.get(k, k).replace("fold", "FOLD"): v for k, v in r.items()} for r in ds.rows]
    ds.columns = (" id ", "birads_reader1", "Birads Reader 2", "FOLD")
    ds.write_sheet()
    m = read_manifest(tmp_path)
    assert m.attrs["layout"] == "gdph_sysucc"
    assert m["fold"].notna().all() and m["birads_reader2"].notna().all()


def test_ids_may_carry_the_extension(tmp_path):
    ds = gdph_layout(tmp_path, stray=None)
    for r in ds.rows:
        r["ID"] += ".png"
    ds.write_sheet()
    m = read_manifest(tmp_path)
    assert m["id"].iloc[0] == "benign(0)"


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


def test_label_column_wins_over_the_file_name(tmp_path):
    ds = flat_layout(tmp_path)
    ds.columns = ("image", "label")
    for r in ds.rows:
        r["label"] = "malignant" if "malignant" in r["image"] else 0
    ds.rows[0]["label"] = 1  # a benign-named file labelled malignant
    ds.write_sheet()
    m = read_manifest(tmp_path)
    assert m["label"].iloc[0] == 1
    assert m["label"].sum() == 7


# --------------------------------------------------------------------------- flat layout


def test_flat_layout_with_image_folder_and_csv(tmp_path):
    flat_layout(tmp_path, n_benign=4, n_malignant=3)
    m = read_manifest(tmp_path)
    assert tuple(m.columns) == MANIFEST_COLUMNS
    assert m.attrs["layout"] == "flat"
    assert m["label"].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert m["site"].isna().all() and m["fold"].isna().all()
    assert m["birads_reader1"].isna().all()
    assert m["id"].iloc[0] == "benign (1)"


def test_flat_layout_images_in_root_xlsx_names_without_extension(tmp_path):
    flat_layout(tmp_path, folder=None, sheet="labels.xlsx", extension=False)
    m = read_manifest(tmp_path)
    assert m.attrs["layout"] == "flat" and m.attrs["sheet_name"] == "Sheet1"
    assert len(m) == 12 and m["label"].sum() == 6


# --------------------------------------------------------------------------- bad input


def test_missing_dataset_folder(tmp_path):
    message = one_line_error(tmp_path / "nowhere")
    assert "nowhere" in message and "dataset folder not found" in message


def test_dataset_path_is_a_file(tmp_path):
    (tmp_path / "data.zip").write_bytes(b"PK")
    assert "not a folder" in one_line_error(tmp_path / "data.zip")


def test_folder_without_images(tmp_path):
    (tmp_path / "BIRADS&FOLD.xlsx").write_bytes(b"")
    assert "no image files" in one_line_error(tmp_path)


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


def test_sheet_without_id_column(tmp_path):
    ds = gdph_layout(tmp_path)
    ds.columns = ("BIRADS-reader1", "BIRADS-reader2", "fold")
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert "no ID column" in message and "'BIRADS-reader1'" in message
    assert "worksheet 'prediction'" in message


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


def test_one_class_only(tmp_path):
    gdph_layout(tmp_path, per_site={"GDPH": (6, 0)}, stray=None)
    message = one_line_error(tmp_path)
    assert "all 6 images are benign" in message


def test_file_names_without_a_label(tmp_path):
    ds = flat_layout(tmp_path)
    ds.files["benign (2)"].rename(tmp_path / "images" / "case (2).png")
    ds.rows[1]["image"] = "case (2).png"
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert "'case (2).png' (row 3)" in message and "without a label" in message


def test_label_column_with_bad_values(tmp_path):
    ds = flat_layout(tmp_path)
    ds.columns = ("image", "label")
    for r in ds.rows:
        r["label"] = 0
    ds.rows[4]["label"] = "maybe"
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert "column 'label'" in message and "row 6 'maybe'" in message


def test_flat_sheet_whose_first_column_is_not_file_names(tmp_path):
    ds = flat_layout(tmp_path)
    ds.columns = ("note", "image")
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert re.search(r"first column 'note' names no image", message)


def test_earlier_release_form_img_folder_and_label_csv(tmp_path):
    """The first HoVer-Trans release: img/ and label.csv with 'name, label'."""
    ds = flat_layout(tmp_path, folder="img", sheet="label.csv")
    for path in ds.files.values():
        path.rename(path.with_name(path.name.replace(" ", "")))
    ds.columns = ("name", "label")
    ds.rows = [
        {"name": p.name.replace(" ", ""), "label": int("malignant" in p.name)}
        for p in ds.files.values()
    ]
    ds.write_sheet()
    m = read_manifest(tmp_path)
    assert m.attrs["layout"] == "flat" and len(m) == 12
    assert m["id"].iloc[0] == "benign(1)" and m["label"].tolist() == [0] * 6 + [1] * 6
    assert m["site"].isna().all()
