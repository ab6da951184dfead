import warnings
from itertools import combinations

import numpy as np
import pytest

from medbench.cli import main
from medbench.data.audit.check import audit_dataset, near_duplicate_pairs
from medbench.data.folds import make_folds
from medbench.data.read.manifest import read_manifest
from medbench.errors import DataError, MedbenchWarning
from tests.data.layouts import (
    breastmnist_npz,
    busi_layout,
    flat_layout,
    gdph_layout,
    pattern,
    truncate,
    write_png,
)


def lines_of(report, severity):
    return [p.message for p in report.problems if p.severity == severity]


def test_release_like_layout_is_usable_with_warnings(tmp_path):
    gdph_layout(tmp_path, near_duplicate=True)  # 16-bit, palette, RGBA, RGB and gray images
    report = audit_dataset(tmp_path)
    assert report.usable, report.render()
    assert report.layout == "gdph_sysucc" and report.n_images == 25
    assert report.counts.loc[("total", ""), "total"] == 25
    assert report.counts.loc[("GDPH", "benign"), "total"] == 6
    assert list(report.counts.columns) == [f"fold {k}" for k in range(1, 6)] + ["total"]
    warnings = lines_of(report, "warning")
    assert any("'BIRADS-reader2'" in w and "row 8 '4/5'" in w for w in warnings)
    dup = [w for w in warnings if w.startswith("near-duplicate")]
    assert len(dup) == 1
    assert "different labels, split across folds" in dup[0]
    assert "SYSUCC/benign(0) (benign, fold 1)" in dup[0]
    assert "SYSUCC/malignant(12) (malignant, fold 2)" in dup[0]
    assert len(report.near_duplicates) == 1
    text = report.render()
    assert "GDPH" in text and "fold 5" in text and "usable: yes (2 warnings)" in text
    # the list ends with what to do: labels differ, so both images go
    assert report.exclude == ["benign(0)", "malignant(12)"]
    assert text.splitlines()[-2] == (
        "what to do: leave out one image of each pair (both when their labels differ) with "
        "--set 'data.exclude=[benign(0), malignant(12)]' on run (or data.exclude in the "
        "config), or drop those 2 files from the dataset"
    )
    assert "folds: the dataset's own (1, 2, 3, 4, 5)" in text


def test_distinct_images_are_not_near_duplicates(tmp_path):
    gdph_layout(tmp_path, per_site={"A": (20, 20), "B": (20, 20)}, stray=None)
    report = audit_dataset(tmp_path)
    assert report.usable and report.problems == []
    assert len(report.near_duplicates) == 0


def test_near_duplicates_in_one_fold_with_one_label_are_not_problems(tmp_path):
    ds = gdph_layout(tmp_path, stray=None)
    write_png(ds.files["benign(5)"], pattern(0, (50, 40), noise=3.0))  # copy of benign(0)
    ds.rows[5]["fold"] = ds.rows[0]["fold"]
    ds.write_sheet()
    report = audit_dataset(tmp_path)
    assert len(report.near_duplicates) == 1 and report.problems == []
    write_png(ds.files["benign(5)"], pattern(0, (50, 40), noise=3.0))
    ds.rows[5]["fold"] = 5
    ds.write_sheet()
    report = audit_dataset(tmp_path)
    assert [p.message.split(":")[0] for p in report.problems] == [
        "near-duplicate images, split across folds"
    ]


def test_audit_collects_every_problem_at_once(tmp_path):
    ds = gdph_layout(tmp_path)
    ds.files["benign(1)"].write_bytes(b"")  # zero bytes
    truncate(ds.files["malignant(2)"])
    ds.files["benign(7)"].write_text("not a png")
    ds.files["malignant(9)"].unlink()  # listed, missing
    write_png(tmp_path / "GDPH" / "benign(99).png", pattern(99))  # present, unlisted
    ds.rows.append(dict(ds.rows[3]))  # duplicate ID
    ds.rows[4]["fold"] = "x"
    ds.write_sheet()
    report = audit_dataset(tmp_path, phash=False)
    assert not report.usable
    errors = lines_of(report, "error")
    assert len(errors) == 7, errors
    joined = "\n".join(errors)
    assert "duplicate IDs: 'benign(3)' (rows 5 and 26)" in joined
    assert f"'malignant(9)' (row {ds.row_of('malignant(9)')})" in joined
    assert "GDPH/benign(99).png" in joined
    assert "row 6 'x'" in joined
    assert "benign(1).png: empty file" in joined
    assert "malignant(2).png: corrupt or truncated" in joined
    assert "benign(7).png: not a readable image" in joined
    assert all("\n" not in e for e in errors)
    assert report.render().endswith("not usable: 7 errors, 1 warning")
    assert report.near_duplicates is None


def test_label_disagreements_and_single_class_folds_are_warnings(tmp_path):
    ds = flat_layout(tmp_path, n_benign=4, n_malignant=4)
    ds.columns = ("image", "label", "fold")
    for i, r in enumerate(ds.rows):
        r["label"] = int("malignant" in r["image"])
        r["fold"] = i % 2 if i < 6 else 2  # fold 2 holds two malignant images only
    ds.rows[0]["label"] = 1
    ds.write_sheet()
    # by default a disagreement is an error: the column may hold something else than labels
    report = audit_dataset(tmp_path)
    assert not report.usable
    (error,) = lines_of(report, "error")
    assert "the label column disagrees with the file names for 1 image of 8" in error
    assert "row 2 'benign (1)' is malignant in the sheet" in error and "data.labels" in error
    # told the column holds the labels: a warning listing where they differ
    report = audit_dataset(tmp_path, labels="sheet")
    assert report.usable
    warnings = lines_of(report, "warning")
    assert any("row 2 'benign (1)' is malignant in the sheet" in w for w in warnings)
    assert "fold 2 has only malignant images (2); its test AUC will be undefined" in warnings


def test_tiny_images_are_a_warning(tmp_path):
    ds = gdph_layout(tmp_path, stray=None)
    write_png(ds.files["benign(2)"], pattern(2, (20, 16)))
    report = audit_dataset(tmp_path, phash=False)
    assert report.usable
    assert any(
        "1 tiny image" in w and "benign(2).png (20x16)" in w for w in lines_of(report, "warning")
    )


def test_flat_layout_counts_the_folds_run_will_draw(tmp_path):
    """No folds in the sheet: the counts show the stratified folds ``run`` draws, numbered from
    1, not "fold -"; folds run could not draw make the dataset unusable, as run would stop."""
    flat_layout(tmp_path, n_benign=3, n_malignant=5)
    report = audit_dataset(tmp_path, n_folds=3)
    assert report.usable
    assert report.counts.loc[("-", "malignant"), "total"] == 5
    assert list(report.counts.columns) == ["fold 1", "fold 2", "fold 3", "total"]
    assert report.folds == "3 stratified folds as run draws them (data.n_folds 3, seed 0)"
    assert "folds: 3 stratified folds as run draws them" in report.render()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MedbenchWarning)
        manifest = make_folds(read_manifest(tmp_path), "auto", 3, 0, [])
    per_fold = manifest.groupby("fold").size().rename(lambda f: f"fold {f}")
    assert report.counts.loc[("total", "")].drop("total").to_dict() == per_fold.to_dict()
    five = audit_dataset(tmp_path, phash=False)  # 3 benign images cannot fill 5 folds
    assert not five.usable and five.folds == "none (run cannot draw them)"
    assert lines_of(five, "error") == [
        "cannot draw 5 stratified folds: only 3 benign images (each fold needs at least one of "
        "each class)"
    ]


def test_audit_raises_when_there_is_nothing_to_audit(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found"):
        audit_dataset(tmp_path / "missing")


def test_pairwise_hamming_matches_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, (40, 64))
    hashes = np.concatenate([base, base[:10] ^ (rng.random((10, 64)) < 0.05)]).astype(np.float32)
    hashes[3] = np.nan  # an unreadable image never matches
    expected = {
        (i, j)
        for i, j in combinations(range(len(hashes)), 2)
        if not np.isnan(hashes[[i, j]]).any() and np.abs(hashes[i] - hashes[j]).sum() <= 5
    }
    found = {tuple(p) for p in near_duplicate_pairs(hashes, 5).tolist()}
    assert found == expected and len(found) >= 8


def test_pairwise_hamming_is_quick_for_the_release_size(monkeypatch):
    """Quick as in little work, not as in seconds on this machine: at the release's size the
    search verifies a few candidates per image, not the 2.9 million pairs of brute force."""
    import medbench.data.audit.near_duplicates as nd

    expand, verified = nd._expand, []

    def counting(lo, hi, order):
        for rows, cols in expand(lo, hi, order):
            verified.append(len(rows))
            yield rows, cols

    monkeypatch.setattr(nd, "_expand", counting)
    n = 2405
    hashes = np.random.default_rng(1).integers(0, 2, (n, 256)).astype(np.float32)
    assert near_duplicate_pairs(hashes, 24).shape == (0, 2)  # random hashes are far apart
    assert sum(verified) < 0.02 * n * (n - 1) / 2


# --------------------------------------------------------------------------- command line


def test_cli_check_usable_dataset_exits_0(tmp_path, capsys):
    gdph_layout(tmp_path)
    assert main(["data", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "SYSUCC" in out and "usable: yes" in out


def test_cli_check_broken_dataset_exits_1_one_line_per_error(tmp_path, capsys):
    ds = gdph_layout(tmp_path)
    truncate(ds.files["benign(4)"])
    ds.files["malignant(3)"].unlink()
    assert main(["data", "check", str(tmp_path), "--no-phash"]) == 1
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert "benign(4).png" in errors[1] and "'malignant(3)'" in errors[0]
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda root: root / "missing", "dataset folder not found"),
        (lambda root: (gdph_layout(root).sheet.unlink(), root)[1], "no label sheet"),
    ],
)
def test_cli_check_unreadable_dataset_exits_2_with_one_line(tmp_path, capsys, make, expected):
    root = make(tmp_path)
    assert main(["data", "check", str(root)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("medbench: error: ") and expected in err[0]
    assert str(root) in err[0]
    assert "Traceback" not in captured.err


def test_cli_check_path_id_exits_1(tmp_path, capsys):
    ds = gdph_layout(tmp_path)
    ds.rows[0]["ID"] = "../benign(0)"
    ds.write_sheet()
    assert main(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "row 2 ID '../benign(0)' is a path" in out


def test_stray_folds_are_a_warning(tmp_path):
    ds = flat_layout(tmp_path, n_benign=20, n_malignant=20)
    ds.columns = ("image", "fold")
    for i, r in enumerate(ds.rows):
        r["fold"] = i % 4 + 1
    ds.rows[0]["fold"], ds.rows[1]["fold"] = 0, 6  # typos
    ds.write_sheet()
    report = audit_dataset(tmp_path, phash=False)
    warnings = lines_of(report, "warning")
    for fold in (0, 6):
        assert any(
            w.startswith(f"fold {fold} holds 1 image, far fewer than the other folds")
            and "data.folds_keep" in w
            for w in warnings
        ), warnings


def test_check_shows_the_folds_of_every_repeat(tmp_path, capsys):
    gdph_layout(tmp_path / "gdph", per_site={"A": (10, 10), "B": (10, 10)}, stray=None)
    report = audit_dataset(tmp_path / "gdph", phash=False, repeats=3)
    assert sorted(report.repeats) == [2, 3]  # repeat 1: the sheet's folds, the main table
    for repeat in (2, 3):
        how, counts = report.repeats[repeat]
        assert "re-partitioned into 5 stratified folds" in how
        assert list(counts.columns) == [f"fold {k}" for k in range(1, 6)] + ["total"]
        assert counts.loc[("total", ""), "total"] == 40
        assert (counts.loc[("total", ""), [f"fold {k}" for k in range(1, 6)]] == 8).all()
    assert main(["data", "check", str(tmp_path / "gdph"), "--no-phash", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert "repeat 1: the folds above" in out and "repeat 2: " in out
    assert "repeat 3" not in out


def test_check_shows_repeat_one_as_run_draws_it_for_a_dataset_without_folds(tmp_path):
    busi_layout(tmp_path, n_benign=10, n_malignant=10)
    report = audit_dataset(tmp_path, phash=False, repeats=2)
    assert sorted(report.repeats) == [2]  # repeat 1: the folds run draws, the main table
    assert report.folds.startswith("5 stratified folds as run draws them")
    assert report.counts.loc[("total", ""), "total"] == 20
    assert report.repeats[2][1].loc[("total", ""), "total"] == 20


def test_check_refuses_repeats_of_an_official_split(tmp_path, capsys):
    breastmnist_npz(tmp_path / "breastmnist.npz")
    assert main(["data", "check", str(tmp_path), "--no-phash", "--repeats", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cv.repeats: 2 repeats" in err[0] and "auto -> official" in err[0]
