"""The synthetic BUS-BRA, BUSI and flat generators write layouts their readers read back exactly.

These tests compare generations with each other, never with fixed bytes: the B-mode renderer
they borrow from ``synthetic`` may change its arithmetic."""

import filecmp
import json

import pytest

from medbench.cli import main
from medbench.data.audit.check import audit_dataset
from medbench.data.pixels.transforms import file_digest
from medbench.data.read.manifest import read_manifest
from medbench.data.synth.synthetic import MARKER
from medbench.data.synth.synthetic_layouts import generate_layout
from medbench.errors import DataError

pytestmark = pytest.mark.e2e  # grids, reports or generated datasets end to end


@pytest.fixture(scope="module")
def busbra_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "busbra"
    return root, generate_layout("busbra", root, n=80, seed=2)


def test_busbra_twin_reads_back_with_patients_folds_and_masks(busbra_root):
    root, summary = busbra_root
    m = read_manifest(root)
    assert m.attrs["layout"] == "busbra" and len(m) == 80
    assert m["label"].map({0: "benign", 1: "malignant"}).value_counts().to_dict() == summary.counts
    assert m["patient"].nunique() == summary.n_patients and summary.n_patients < 80
    assert (m.groupby("patient")["fold"].nunique() == 1).all()
    assert sorted(m["fold"].unique()) == [1, 2, 3, 4, 5]
    assert m["site"].nunique() == 4 and m["birads_reader1"].isin(["2", "3", "4", "5"]).all()
    ten = read_manifest(root, sheet="10-fold-cv.csv")
    assert sorted(ten["fold"].unique()) == list(range(1, 11))
    assert (ten.groupby("patient")["fold"].nunique() == 1).all()
    assert (ten.groupby("fold")["label"].nunique() == 2).all()  # each fold has both classes
    assert len(list((root / "Masks").iterdir())) == 80
    report = audit_dataset(root, phash=False)
    assert report.usable and not report.warnings


def test_busbra_twin_is_deterministic_and_found_again(busbra_root, tmp_path):
    root, summary = busbra_root
    again = generate_layout("busbra", tmp_path / "again", n=80, seed=2)
    assert again.counts == summary.counts and again.n_patients == summary.n_patients
    for name in ("bus_data.csv", "5-fold-cv.csv", "10-fold-cv.csv"):
        assert filecmp.cmp(root / name, tmp_path / "again" / name, shallow=False)
    first = sorted((root / "Images").iterdir())
    second = sorted((tmp_path / "again" / "Images").iterdir())
    assert [file_digest(p) for p in first] == [file_digest(p) for p in second]
    assert generate_layout("busbra", root, n=80, seed=2).reused
    other = generate_layout("busbra", tmp_path / "other", n=80, seed=3)
    assert file_digest(first[0]) != file_digest(
        sorted((tmp_path / "other" / "Images").iterdir())[0]
    )
    assert other.n_patients is not None


def test_busi_twin_reads_back_with_masks_normal_and_duplicates(tmp_path):
    summary = generate_layout("busi", tmp_path / "busi", n=60, seed=1)
    assert sum(summary.counts.values()) == 60 and summary.counts["normal"] >= 5
    report = audit_dataset(tmp_path / "busi")
    n_task = summary.counts["benign"] + summary.counts["malignant"]
    assert report.n_images == n_task and report.usable
    assert report.left_out["normal images (data.include_normal: false)"] == summary.counts["normal"]
    assert report.left_out["lesion masks (*_mask.png, *_mask_N.png)"] >= 60
    found = {
        frozenset(p)
        for p in zip(report.near_duplicates["id_a"], report.near_duplicates["id_b"], strict=True)
    }
    assert {frozenset(pair) for pair in summary.near_duplicates} <= found
    marker = json.loads((tmp_path / "busi" / MARKER).read_text())
    assert marker["layout"] == "busi" and marker["n"] == 60
    assert len(read_manifest(tmp_path / "busi", include_normal=True)) == 60


def test_generator_refusals(tmp_path):
    with pytest.raises(DataError, match="n=10 is too small"):
        generate_layout("busbra", tmp_path / "x", n=10)
    with pytest.raises(DataError, match="no synthetic generator for layout 'breastmnist'"):
        generate_layout("breastmnist", tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="folder is not empty"):
        generate_layout("busi", tmp_path / "full", n=30)


def test_cli_writes_each_layout(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path / "b"), "--layout", "busi", "--n", "30"]) == 0
    assert "synthetic busi dataset written" in capsys.readouterr().out
    assert read_manifest(tmp_path / "b").attrs["layout"] == "busi"
    assert main(["data", "synth", str(tmp_path / "g"), "--n", "20"]) == 0
    assert read_manifest(tmp_path / "g").attrs["layout"] == "gdph_sysucc"


def test_flat_example_reads_back_with_sites_patients_and_a_reader(tmp_path, capsys):
    """``data synth --layout flat``: images/ and labels.csv with the optional columns; no folds,
    so ``data check`` shows the patient-grouped folds ``run`` draws."""
    root = tmp_path / "flat"
    assert main(["data", "synth", str(root), "--layout", "flat", "--n", "60"]) == 0
    out = capsys.readouterr().out
    assert "synthetic flat dataset written" in out and "no folds: run draws them" in out
    manifest = read_manifest(root)
    assert manifest.attrs["layout"] == "flat" and len(manifest) == 60
    assert set(manifest["site"]) == {"site-A", "site-B"}
    assert manifest["patient"].notna().all() and manifest["patient"].nunique() < 60
    assert manifest["birads_reader1"].notna().all() and manifest["birads_reader2"].isna().all()
    assert manifest["fold"].isna().all()
    names = manifest["path"].map(lambda p: p.rsplit("/", 1)[-1])
    assert (manifest["label"] == names.str.startswith("malignant").astype(int)).all()
    meta = json.loads((root / MARKER).read_text())
    assert meta["layout"] == "flat" and meta["n_patients"] == manifest["patient"].nunique()
    report = audit_dataset(root, phash=False)
    assert report.usable and "whole patients" in report.folds
    assert generate_layout("flat", root, n=60).reused
