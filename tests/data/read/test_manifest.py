"""The manifest reader: folder checks, dtypes and attrs, layout choice, strict and collecting reads."""

import pandas as pd
import pytest

from medbench.data.read.manifest import MANIFEST_COLUMNS, read_manifest, scan
from medbench.errors import MedbenchWarning
from tests.data.layouts import flat_layout, gdph_layout, one_line_error


def test_missing_dataset_folder(tmp_path):
    message = one_line_error(tmp_path / "nowhere")
    assert "nowhere" in message and "dataset folder not found" in message


def test_dataset_path_is_a_file(tmp_path):
    (tmp_path / "data.zip").write_bytes(b"PK")
    assert "not a folder" in one_line_error(tmp_path / "data.zip")


def test_empty_folder_names_the_layouts_medbench_reads(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    message = one_line_error(tmp_path)
    assert message.startswith(f"{tmp_path}: no dataset layout medbench knows fits this folder")
    assert "gdph_sysucc (site folders of images and BIRADS&FOLD.xlsx with an ID column)" in message
    assert "flat (images, in one folder or the root, and a sheet" in message


def test_dtypes_and_attrs(tmp_path):
    gdph_layout(tmp_path / "release", stray=None)
    flat_layout(tmp_path / "flat")
    for name, layout in (("release", "gdph_sysucc"), ("flat", "flat")):
        m = read_manifest(tmp_path / name)
        assert tuple(m.columns) == MANIFEST_COLUMNS
        assert [str(t) for t in m.dtypes] == ["str", "str", "int64", "str", "Int64", *["str"] * 4]
        assert m["patient"].isna().all() and m["split"].isna().all()
        assert set(m.attrs) == {"root", "sheet_file", "sheet_name", "layout"}
        assert m.attrs["layout"] == layout
        assert m.attrs["root"] == str((tmp_path / name).resolve())


def test_one_class_only(tmp_path):
    gdph_layout(tmp_path, per_site={"GDPH": (6, 0)}, stray=None)
    message = one_line_error(tmp_path)
    assert "all 6 images are benign" in message


def test_scan_collects_every_problem_read_manifest_raises_the_first(tmp_path):
    ds = gdph_layout(tmp_path)  # one stray reader value: a warning
    ds.rows[2]["fold"] = "two"
    ds.rows[3]["ID"] = "../benign(3)"
    ds.files["benign(5)"].unlink()
    ds.write_sheet()
    found = scan(tmp_path)
    severities = [s for s, _ in found.problems]
    assert severities == ["error", "error", "error", "error", "warning"]
    kinds = ["bad ID", "listed image missing", "not in", "must hold integers", "not a BI-RADS"]
    assert all(k in m for k, (_, m) in zip(kinds, found.problems, strict=True))
    # rows at fault are left out (the path ID, the missing image); a bad fold is kept missing
    assert len(found.manifest) == len(ds.rows) - 2
    assert found.manifest.set_index("id")["fold"].isna().to_dict() == {
        id_: id_ == "benign(2)" for id_ in found.manifest["id"]
    }
    assert len(found.sheet_rows) == len(found.name_labels) == len(found.manifest)
    assert found.sheet_rows[:2] == [2, 3] and found.name_labels[0] == 0
    assert one_line_error(tmp_path) == found.problems[0][1]


def test_warnings_point_at_the_caller(tmp_path):
    gdph_layout(tmp_path)
    with pytest.warns(MedbenchWarning, match="row 8 '4/5'") as caught:
        read_manifest(tmp_path)
    assert [w.filename for w in caught] == [__file__]


def test_a_named_layout_is_read_without_detection(tmp_path):
    gdph_layout(tmp_path, stray=None)
    detected = read_manifest(tmp_path)
    assert read_manifest(tmp_path, layout="gdph_sysucc").equals(detected)
    # The release's IDs are file stems, so the flat layout reads the same rows.
    as_flat = read_manifest(tmp_path, layout="flat")
    assert as_flat.attrs["layout"] == "flat"
    pd.testing.assert_frame_equal(as_flat, detected)


def test_an_unknown_layout_name_lists_the_known_ones(tmp_path):
    gdph_layout(tmp_path, stray=None)
    assert one_line_error(tmp_path, layout="gdph") == (
        "unknown dataset layout 'gdph' (did you mean 'gdph_sysucc'?); "
        "medbench reads busbra, busi, breastmnist, gdph_sysucc, flat"
    )


def test_exclude_leaves_images_out_and_names_an_unknown_id(tmp_path):
    from medbench.data.read.manifest import exclude_images
    from medbench.errors import ConfigError
    from tests.data.layouts import flat_layout

    flat_layout(tmp_path, n_benign=4, n_malignant=3)
    m = read_manifest(tmp_path)
    kept = exclude_images(m, ["benign (2)", "malignant (1)"])
    assert len(kept) == 5 and not kept["id"].isin(["benign (2)", "malignant (1)"]).any()
    assert kept.attrs == m.attrs and kept.index.tolist() == list(range(5))
    assert exclude_images(m, []) is m
    with pytest.raises(
        ConfigError, match=r"data.exclude: no image 'benign \(9\)' in .*did you mean"
    ):
        exclude_images(m, ["benign (2)", "benign (9)"])
