"""BUS-BRA, BUSI and BreastMNIST read from hand-made folders in their real layouts: detection,
labels, folds, patients, masks, normal images, the inverted MedMNIST labels, and the audit."""

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medbench.cli import main
from medbench.data.audit.check import audit_dataset
from medbench.data.pixels import arrays
from medbench.data.read.layouts import breastmnist, busbra, busi, detect, list_layouts
from medbench.data.read.manifest import read_manifest, scan
from medbench.errors import DataError, MedbenchWarning
from tests.data.layouts import (
    breastmnist_npz,
    busbra_layout,
    busi_layout,
    gdph_layout,
    one_line_error,
    read_quietly,
)

# --------------------------------------------------------------------------- detection


def test_each_dataset_is_detected_by_what_is_on_disk(tmp_path):
    busbra_layout(tmp_path / "bra")
    busi_layout(tmp_path / "busi")
    inner = busi_layout(tmp_path / "inner", nested=False)
    breastmnist_npz(tmp_path / "mnist" / "breastmnist_64.npz", size=64)
    gdph_layout(tmp_path / "gdph")
    assert detect(tmp_path / "bra") is busbra
    assert detect(tmp_path / "bra", sheet="10-fold-cv.csv") is busbra  # not a sheet with an ID
    assert detect(tmp_path / "busi") is busi and detect(inner) is busi
    assert detect(tmp_path / "mnist") is breastmnist
    assert detect(tmp_path / "gdph").NAME == "gdph_sysucc"


def test_a_folder_no_reader_knows_gets_the_list_of_layouts(tmp_path):
    (tmp_path / "scans" / "empty").mkdir(parents=True)
    (tmp_path / "scans" / "notes.txt").write_text("nothing to read")
    message = one_line_error(tmp_path / "scans")
    assert "no dataset layout medbench knows fits this folder" in message
    for name in list_layouts():
        assert f"{name} (" in message
    assert "bus_data.csv" in message and "Dataset_BUSI_with_GT" in message


# --------------------------------------------------------------------------- BUS-BRA


def test_busbra_reads_labels_patients_devices_reader_and_the_5_fold_file(tmp_path):
    ds = busbra_layout(tmp_path)
    m = read_manifest(tmp_path)
    assert m.attrs["layout"] == "busbra" and m.attrs["sheet_file"].endswith("5-fold-cv.csv")
    assert len(m) == len(ds.rows) == 60  # 30 patients of 2, 3, 1, ... images
    rows = pd.DataFrame(ds.rows).set_index("ID")
    m = m.set_index("id")
    assert (m["label"] == (rows["Pathology"] == "malignant").astype(int)).all()
    assert (m["patient"] == rows["Case"].astype(str)).all()
    assert (m["site"] == rows["Device"]).all()
    assert (m["fold"] == rows["Case"].map(ds.folds5)).all()
    assert m["birads_reader1"].tolist() == [str(v) for v in rows["BIRADS"]]
    assert m["birads_reader2"].isna().all() and m["split"].isna().all()
    assert m.loc["bus_0001-r", "path"].endswith("Images/bus_0001-r.png")
    # the authors' folds are by patient: no Case in two folds
    assert (m.groupby("patient")["fold"].nunique() == 1).all()
    by_label_fold = Counter(zip(m["label"], m["fold"], strict=True))
    expected = Counter((int(r["Pathology"] == "malignant"), ds.folds5[r["Case"]]) for r in ds.rows)
    assert by_label_fold == expected


def test_busbra_sheet_names_the_10_fold_file(tmp_path):
    ds = busbra_layout(tmp_path)
    m = read_manifest(tmp_path, sheet="10-fold-cv.csv").set_index("id")
    rows = pd.DataFrame(ds.rows).set_index("ID")
    assert sorted(m["fold"].unique()) == list(range(1, 11))
    assert (m["fold"] == rows["Case"].map(ds.folds10)).all()
    message = one_line_error(tmp_path, sheet="3-fold-cv.csv")
    assert message.endswith(
        "fold file not found; " + str(tmp_path) + " holds 5-fold-cv.csv, 10-fold-cv.csv"
    )


def test_busbra_problems_are_named(tmp_path):
    busbra_layout(tmp_path, drop_image="bus_0004-l", mismatch="bus_0002-r")
    found = scan(tmp_path)
    messages = dict((m, s) for s, m in found.problems)
    missing = next(m for m in messages if "missing from" in m)
    assert messages[missing] == "error" and "'bus_0004-l' (row 5)" in missing
    mismatch = next(m for m in messages if "Pathology differs" in m)
    assert messages[mismatch] == "warning" and "'bus_0002-r'" in mismatch
    assert len(found.manifest) == 59


def test_busbra_masks_are_counted_not_read(tmp_path):
    busbra_layout(tmp_path)
    found = scan(tmp_path)
    assert found.left_out == {"lesion masks (Masks/)": 60}
    assert {Path(p).parent.name for p in found.manifest["path"]} == {"Images"}


def test_audit_reports_a_patient_across_the_sheets_folds(tmp_path):
    ds = busbra_layout(tmp_path, split_case=2)
    report = audit_dataset(tmp_path, phash=False)
    warnings = [p.message for p in report.warnings]
    assert report.usable and report.n_patients == 30 and report.n_images == 60
    case2 = ds.folds5[2]
    assert any(
        w.startswith("1 patient with images in several folds")
        and f"'2' (folds {', '.join(map(str, sorted({case2, case2 % 5 + 1})))})" in w
        for w in warnings
    )
    assert "30 patients" in report.render() and "left out: 60 lesion masks" in report.render()
    clean = audit_dataset(busbra_layout(tmp_path / "clean").root, phash=False)
    assert not any("several folds" in p.message for p in clean.problems)


# --------------------------------------------------------------------------- BUSI


@pytest.mark.parametrize("nested", [True, False])
def test_busi_leaves_masks_and_normal_images_out(tmp_path, nested):
    base = busi_layout(tmp_path, n_benign=8, n_malignant=6, n_normal=3, nested=nested)
    found = scan(tmp_path if nested else base)
    m = found.manifest
    assert m.attrs["layout"] == "busi"
    assert sorted(m["id"]) == sorted(
        [f"benign ({k})" for k in range(1, 9)] + [f"malignant ({k})" for k in range(1, 7)]
    )
    assert m.set_index("id")["label"].to_dict() == {
        **{f"benign ({k})": 0 for k in range(1, 9)},
        **{f"malignant ({k})": 1 for k in range(1, 7)},
    }
    assert found.left_out == {
        "normal images (data.include_normal: false)": 3,
        "lesion masks (*_mask.png, *_mask_N.png)": 17 + 2,  # one per image, 2 second masks
    }
    assert m["fold"].isna().all() and m["site"].isna().all() and m["patient"].isna().all()


def test_busi_include_normal_folds_normal_into_benign(tmp_path):
    busi_layout(tmp_path, n_benign=8, n_malignant=6, n_normal=3)
    m = read_manifest(tmp_path, include_normal=True)
    assert len(m) == 17 and int((m["label"] == 0).sum()) == 11
    assert set(m.loc[m["id"].str.startswith("normal"), "label"]) == {0}


def test_busi_file_named_for_another_class_is_a_warning(tmp_path):
    base = busi_layout(tmp_path)
    (base / "benign" / "benign (3).png").rename(base / "benign" / "malignant (99).png")
    with pytest.warns(
        MedbenchWarning, match=r"1 image named for another class .*benign/malignant \(99\)\.png"
    ):
        m = read_manifest(tmp_path)
    assert m.set_index("id").at["malignant (99)", "label"] == 0  # the folder decides


def test_audit_of_busi_counts_and_warns_of_duplicates_folds_may_split(tmp_path):
    base = busi_layout(tmp_path)
    (base / "malignant" / "malignant (6).png").write_bytes(
        (base / "malignant" / "malignant (2).png").read_bytes()
    )
    report = audit_dataset(tmp_path)
    text = report.render()
    assert "left out: 3 normal images (data.include_normal: false)" in text
    assert report.counts.loc[("total", ""), "total"] == 14
    assert report.counts.loc[("-", "malignant"), "total"] == 6
    assert any(
        "1 near-duplicate pair (0 with different labels, " in p.message
        and "); the dataset has no folds of its own" in p.message
        and "malignant (2)" in p.message
        and "malignant (6)" in p.message
        for p in report.warnings
    )


# --------------------------------------------------------------------------- BreastMNIST


def test_breastmnist_inverts_medmnist_labels_and_keeps_the_official_split(tmp_path):
    data = breastmnist_npz(tmp_path / "breastmnist.npz", size=28)
    m = read_manifest(tmp_path)
    assert m.attrs["layout"] == "breastmnist"
    n = {split: len(data[f"{split}_labels"]) for split in ("train", "val", "test")}
    assert m["split"].value_counts().to_dict() == n
    medmnist = np.concatenate([data[f"{s}_labels"].ravel() for s in ("train", "val", "test")])
    assert m["label"].tolist() == (1 - medmnist).tolist()
    assert int(m["label"].sum()) == int((medmnist == 0).sum()) == 11  # malignant = MedMNIST 0
    assert m["id"].iloc[0] == "train_0" and m["id"].iloc[-1] == "test_9"
    member = arrays.parse(m["path"].iloc[21])
    assert (member.file.name, member.array, member.index) == ("breastmnist.npz", "val_images", 1)
    assert m["fold"].isna().all() and m["patient"].isna().all()


def test_breastmnist_reads_the_largest_of_several_sizes_unless_named(tmp_path):
    breastmnist_npz(tmp_path / "breastmnist.npz", size=28)
    breastmnist_npz(tmp_path / "breastmnist_64.npz", size=64)
    with pytest.warns(MedbenchWarning, match="reading breastmnist_64.npz .*not breastmnist.npz"):
        m = read_manifest(tmp_path)
    assert all("breastmnist_64.npz::" in p for p in m["path"])
    m28 = read_quietly(tmp_path, sheet="breastmnist.npz")
    assert all(p.split("::")[0].endswith("breastmnist.npz") for p in m28["path"])


def test_breastmnist_errors_name_the_file(tmp_path):
    arrays_ = breastmnist_npz(tmp_path / "a" / "breastmnist.npz")
    del arrays_["val_labels"]
    np.savez(tmp_path / "a" / "breastmnist.npz", **arrays_)
    message = one_line_error(tmp_path / "a")
    assert "breastmnist.npz: not a MedMNIST file: no val_labels" in message
    bad = breastmnist_npz(tmp_path / "b" / "breastmnist.npz")
    bad["test_labels"][0] = 2
    np.savez(tmp_path / "b" / "breastmnist.npz", **bad)
    assert "test_labels must hold MedMNIST's 0 (malignant)" in one_line_error(tmp_path / "b")


def test_breastmnist_audit_counts_malignant_right_and_by_split(tmp_path):
    breastmnist_npz(tmp_path / "breastmnist_64.npz", size=64)
    report = audit_dataset(tmp_path)
    counts = report.counts
    assert list(counts.columns) == ["split train", "split val", "split test", "total"]
    assert counts.loc[("-", "malignant")].tolist() == [6, 2, 3, 11]
    assert counts.loc[("-", "benign")].tolist() == [14, 3, 7, 24]
    assert report.usable and not report.warnings


# --------------------------------------------------------------------------- medbench data check


def test_data_check_accepts_each_dataset(tmp_path, capsys):
    busbra_layout(tmp_path / "bra")
    busi_layout(tmp_path / "busi")
    breastmnist_npz(tmp_path / "mnist" / "breastmnist_64.npz", size=64)
    assert main(["data", "check", str(tmp_path / "bra"), "--sheet", "10-fold-cv.csv"]) == 0
    out = capsys.readouterr().out
    assert "layout busbra, sheet 10-fold-cv.csv, 60 images, 30 patients" in out
    assert "fold 9  fold 10  total" in out
    assert main(["data", "check", str(tmp_path / "busi"), "--include-normal"]) == 0
    out = capsys.readouterr().out
    assert "layout busi, 17 images" in out and "normal images" not in out
    assert main(["data", "check", str(tmp_path / "mnist"), "--no-phash"]) == 0
    assert "layout breastmnist, sheet breastmnist_64.npz, 35 images" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "busi"), "--layout", "busbra"]) == 2
    assert "bus_data.csv" in capsys.readouterr().err


def test_a_named_layout_that_does_not_fit_is_a_one_line_error(tmp_path):
    busi_layout(tmp_path)
    with pytest.raises(DataError):
        read_manifest(tmp_path, layout="breastmnist")
