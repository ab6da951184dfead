"""The layout registry and detection, the GDPH&SYSUCC release layout and the flat one."""

import re

import pandas as pd
import pytest

from medbench.data.read.labels import LABELS
from medbench.data.read.layouts import (
    LAYOUTS,
    detect,
    flat,
    gdph_sysucc,
    get_layout,
    list_layouts,
    listed,
)
from medbench.data.read.layouts.gdph_sysucc import COLUMNS, image_id, label_from_name
from medbench.data.read.manifest import MANIFEST_COLUMNS, read_manifest
from medbench.errors import DataError, MedbenchWarning
from tests.data.layouts import flat_layout, gdph_layout, one_line_error

# --------------------------------------------------------------------------- registry


def test_registry_lists_the_layouts_in_detection_order():
    assert list_layouts() == ["busbra", "busi", "breastmnist", "gdph_sysucc", "flat"]
    assert get_layout("flat") is flat and get_layout("gdph_sysucc") is gdph_sysucc
    assert all(name == LAYOUTS[name].NAME for name in LAYOUTS)


def test_detect_by_what_is_on_disk(tmp_path):
    gdph_layout(tmp_path / "release")
    flat_layout(tmp_path / "flat")
    renamed = gdph_layout(tmp_path / "renamed", stray=None)
    renamed.sheet.rename(tmp_path / "renamed" / "folds.xlsx")
    assert detect(tmp_path / "release") is gdph_sysucc
    assert detect(tmp_path / "renamed") is gdph_sysucc  # an ID column, whatever the file name
    assert detect(tmp_path / "flat") is flat
    assert detect(tmp_path / "release", sheet="notes") is flat  # a worksheet without an ID column
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no dataset layout medbench knows fits this folder"):
        detect(tmp_path / "empty")


# --------------------------------------------------------------------------- gdph_sysucc


def test_release_columns_read_as_their_roles():
    assert listed.column_roles(list(COLUMNS), gdph_sysucc.NAMES, "sheet") == {
        role: column for column, role in COLUMNS.items()
    }
    assert set(COLUMNS.values()) < set(MANIFEST_COLUMNS)


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


@pytest.mark.parametrize("label", sorted(LABELS.values()))
def test_image_ids_give_their_label_back(label):
    assert image_id(label, 12) == ("benign(12)", "malignant(12)")[label]
    assert label_from_name(image_id(label, 12)) == label


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


def test_release_layout_named_for_a_sheet_without_ids(tmp_path):
    flat_layout(tmp_path)
    message = one_line_error(tmp_path, layout="gdph_sysucc")
    assert message == f"{tmp_path / 'labels.csv'}: no ID column; columns are 'image', 'note'"


# --------------------------------------------------------------------------- flat


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


def test_sheet_without_id_column(tmp_path):
    ds = gdph_layout(tmp_path)
    ds.columns = ("BIRADS-reader1", "BIRADS-reader2", "fold")
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert "no ID column" in message and "'BIRADS-reader1'" in message
    assert "worksheet 'prediction'" in message


def test_flat_sheet_whose_first_column_is_not_file_names(tmp_path):
    ds = flat_layout(tmp_path)
    ds.columns = ("note", "image")
    ds.write_sheet()
    message = one_line_error(tmp_path)
    assert re.search(r"first column 'note' names no image", message)


def test_flat_images_in_several_folders_take_the_folder_as_site(tmp_path):
    ds = flat_layout(tmp_path)
    (tmp_path / "other").mkdir()
    ds.files["malignant (1)"].rename(tmp_path / "other" / "malignant (1).png")
    m = read_manifest(tmp_path)
    assert m.attrs["layout"] == "flat"
    assert m.set_index("id")["site"].to_dict()["malignant (1)"] == "other"
    assert m["site"].value_counts().to_dict() == {"images": 11, "other": 1}


def test_flat_site_and_patient_columns_are_read_not_ignored(tmp_path):
    """A ``site`` column wins over the folder; ``patient`` ids keep a patient's images in one
    stratified fold."""
    from medbench.data.folds import assign_folds

    ds = flat_layout(tmp_path, n_benign=10, n_malignant=10)
    ds.columns = ("image", "Site", "Patient ID", "note")
    for k, row in enumerate(ds.rows):
        row["Site"] = "" if k == 0 else ("north" if k % 2 else "south")
        row["Patient ID"] = f"p{k // 2}"  # two images per patient, same label
    ds.write_sheet()
    m = read_manifest(tmp_path)
    assert m["site"].isna().tolist() == [True] + [False] * 19  # an empty cell is missing
    assert m["site"].iloc[1:3].tolist() == ["north", "south"]
    assert m["patient"].tolist() == [f"p{k // 2}" for k in range(20)]
    folds = assign_folds(m, source="stratified", k=5, seed=0)
    assert (folds.groupby("patient")["fold"].nunique() == 1).all()
    assert sorted(folds["fold"].unique()) == [1, 2, 3, 4, 5]
