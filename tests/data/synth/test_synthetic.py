"""The synthetic BUS generator writes the GDPH&SYSUCC layout, deterministically, with a card that matches."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medbench.cli import main
from medbench.data.audit.check import audit_dataset
from medbench.data.cards import read_card
from medbench.data.pixels.images import read_rgb
from medbench.data.read import birads
from medbench.data.read.labels import LABEL_NAMES
from medbench.data.read.layouts.gdph_sysucc import SHEET_FILE, SITES
from medbench.data.synth import synthetic as S
from medbench.errors import DataError
from medbench.smallcnn import SmallCNN

NAME = re.compile(r"^(benign|malignant)\((\d+)\)\.png$")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return S.generate(tmp_path_factory.mktemp("small") / "bus", n=60, seed=3)


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    """One generation with the card's default n and seed (about 10 s)."""
    return S.generate(tmp_path_factory.mktemp("default") / "bus")


def _sheet(root: Path) -> tuple[list[str], list[tuple]]:
    from openpyxl import load_workbook

    wb = load_workbook(root / SHEET_FILE, read_only=True)
    assert wb.sheetnames == ["prediction"]
    rows = list(wb["prediction"].iter_rows(values_only=True))
    wb.close()
    return list(rows[0]), rows[1:]


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_sheet_and_columns_are_exact(small):
    root = small.root
    assert {p.name for p in root.iterdir()} == {"BIRADS&FOLD.xlsx", "GDPH", "SYSUCC", S.MARKER}
    header, rows = _sheet(root)
    assert header == ["ID", "BIRADS-reader1", "BIRADS-reader2", "fold"]
    files = [p for site in ("GDPH", "SYSUCC") for p in (root / site).iterdir()]
    assert all(NAME.match(p.name) for p in files)
    assert sorted(p.stem for p in files) == sorted(r[0] for r in rows)
    assert sorted(files) == sorted(small.images) and small.sheet == root / SHEET_FILE
    assert len(small.paths) == 61
    assert not [p for p in root.parent.iterdir() if p.name != "bus"]  # no temporary folder left


@pytest.mark.parametrize("n", [20, 61, 600, 2405])
def test_counts_keep_the_real_proportions(n):
    counts = S.site_label_counts(n)
    assert sum(counts.values()) == n and min(counts.values()) >= 3
    for key, real in S.REAL_COUNTS.items():
        assert abs(counts[key] - n * real / 2405) < 1
    if n == 2405:
        assert counts == S.REAL_COUNTS


def test_summary_counts_match_the_disk(small):
    on_disk = Counter()
    _, rows = _sheet(small.root)
    fold = {r[0]: r[3] for r in rows}
    for p in small.images:
        label = NAME.match(p.name).group(1)  # the label is the file-name prefix
        on_disk[(p.parent.name, label, fold[p.stem])] += 1
    assert dict(on_disk) == small.counts
    assert sum(small.counts.values()) == small.n == 60
    expected = S.site_label_counts(60)
    assert {(s, lab): c[lab] for s, c in small.by_site_label().items() for lab in c} == expected
    text = str(small)
    assert "60 images" in text and "SYSUCC" in text and "near-duplicates" in text


@pytest.mark.e2e
def test_numbering_continues_from_sysucc_to_gdph(default):
    numbers = {}
    for p in default.images:
        label, k = NAME.match(p.name).groups()
        numbers.setdefault(label, []).append((int(k), p.parent.name))
    for items in numbers.values():
        items.sort()
        assert [k for k, _ in items] == list(range(len(items)))  # unique and contiguous
        sites = [s for _, s in items]
        n_sysucc = sites.count("SYSUCC")
        assert sites == ["SYSUCC"] * n_sysucc + ["GDPH"] * (len(sites) - n_sysucc)
    assert len({p.stem for p in default.images}) == len(default.images)


def test_birads_values_as_excel_stores_them(default):
    _, rows = _sheet(default.root)
    values = [v for r in rows for v in r[1:3]]
    assert {birads.category(v) for v in values} == set(S.READER_CATEGORIES)
    assert all(isinstance(v, int) for v in values if birads.category(v) in {"2", "3", "5"})
    assert all(isinstance(v, str) for v in values if birads.category(v).startswith("4"))
    assert {"4A", "4a"} <= {v for v in values if isinstance(v, str)}


def test_readers_mostly_agree_with_the_label_and_each_other(default):
    _, rows = _sheet(default.root)
    label = np.array([r[0].startswith("malignant") for r in rows])
    positive = np.array([[birads.call(v) for v in r[1:3]] for r in rows])
    for k in (0, 1):
        sensitivity = positive[label, k].mean()
        specificity = (~positive[~label, k]).mean()
        assert 0.82 <= sensitivity <= 0.97, sensitivity
        assert 0.55 <= specificity <= 0.78, specificity
    exact = np.mean([birads.category(r[1]) == birads.category(r[2]) for r in rows])
    assert 0.3 < exact < 0.8  # correlated readers, not copies
    assert 0.75 < (positive[:, 0] == positive[:, 1]).mean() < 0.95


def test_folds_are_stratified_by_label_and_site(default):
    folds = set(f for _, _, f in default.counts)
    assert folds == {1, 2, 3, 4, 5}
    for site in SITES:
        for label in LABEL_NAMES.values():
            per_fold = [default.counts.get((site, label, f), 0) for f in folds]
            assert max(per_fold) - min(per_fold) <= 1, (site, label, per_fold)
    for label in LABEL_NAMES.values():
        per_fold = [sum(default.counts.get((s, label, f), 0) for s in SITES) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1


def test_image_modes_and_sizes_vary_by_site(default):
    modes = {site: Counter() for site in SITES}
    sizes = set()
    examples = {}
    for p in default.images:
        with Image.open(p) as img:
            modes[p.parent.name][img.mode] += 1
            sizes.add(img.size)
            examples.setdefault(img.mode, p)
    assert modes["GDPH"].most_common(1)[0][0] == "L"
    assert modes["SYSUCC"].most_common(1)[0][0] == "RGB"
    assert {"L", "RGB", "RGBA", "P", "I;16"} <= set(examples)
    assert len(sizes) > 100
    assert all(380 <= side <= 660 for size in sizes for side in size)
    for p in examples.values():  # every mode is readable by the suite, as RGB
        rgb = read_rgb(p)
        assert rgb.ndim == 3 and rgb.shape[2] == 3


def test_images_look_like_b_mode(small):
    """Bright skin line on top, darker with depth, a dark lesion: not noise, not flat."""
    gray = np.asarray(Image.open(small.images[0]).convert("L"), dtype=np.float32)
    gray = gray[:, gray.shape[1] // 10 : -gray.shape[1] // 10]  # inside any black frame
    rows = gray.mean(axis=1)
    h = len(rows)
    assert rows[: h // 8].max() > 150
    assert rows[h // 4 : h // 2].mean() > rows[-h // 6 :].mean()
    assert 20 < gray.std() < 90


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = S.generate(tmp_path / "a", n=20, seed=11)
    b = S.generate(tmp_path / "b", n=20, seed=11)
    c = S.generate(tmp_path / "c", n=20, seed=12)
    ha, hb, hc = _hashes(a.root), _hashes(b.root), _hashes(c.root)
    assert ha == hb
    assert a.counts == b.counts and a.near_duplicates == b.near_duplicates
    shared = set(ha) & set(hc)
    assert sum(ha[k] != hc[k] for k in shared) > 15


def test_near_duplicates_are_planted(small, default):
    for summary in (small, default):
        dups = summary.near_duplicates
        assert len(dups) >= 3
        assert sum(not d.same_label for d in dups) == 2
        assert any(d.crosses_folds for d in dups)
    assert 0.01 <= len(default.near_duplicates) / default.n <= 0.02
    _, rows = _sheet(default.root)
    fold = {r[0]: r[3] for r in rows}
    path = {p.stem: p for p in default.images}

    def thumb(stem: str) -> np.ndarray:
        img = Image.open(path[stem]).convert("L").resize((32, 32), Image.BILINEAR)
        return np.asarray(img, dtype=np.float32).ravel()

    for d in default.near_duplicates:
        assert (d.original.split("(")[0] == d.copy.split("(")[0]) == d.same_label
        assert (fold[d.original] != fold[d.copy]) == d.crosses_folds
        assert np.corrcoef(thumb(d.original), thumb(d.copy))[0, 1] > 0.9
        assert path[d.original].read_bytes() != path[d.copy].read_bytes()
    unrelated = np.corrcoef(thumb("benign(0)"), thumb("benign(1)"))[0, 1]
    assert unrelated < 0.8


def test_card_counts_equal_the_default_generation(default):
    meta, body = read_card("synthetic_bus")
    assert meta["name"] == "synthetic_bus"
    assert (meta["default_n"], meta["default_seed"]) == (default.n, default.seed) == (600, 0)
    counts = meta["counts"]
    assert counts["total"] == default.n
    assert counts["by_label"] == default.by_label()
    assert counts["by_site_label"] == default.by_site_label()
    assert {int(k): v for k, v in counts["by_fold"].items()} == default.by_fold()
    assert meta["folds"] == S.N_FOLDS
    assert meta["reader_columns"] == ["BIRADS-reader1", "BIRADS-reader2"]
    assert meta["near_duplicates"] == len(default.near_duplicates)
    assert "diagnosis" in " ".join(meta["intended_use"]["not_for"]).lower()
    assert "## " in body


def test_same_n_and_seed_is_not_regenerated(small):
    before = {p: p.stat().st_mtime_ns for p in small.paths}
    again = S.generate(small.root, n=60, seed=3)
    assert again.reused and "not regenerated" in str(again)
    assert again.counts == small.counts and again.near_duplicates == small.near_duplicates
    assert sorted(again.images) == sorted(small.images)
    assert {p: p.stat().st_mtime_ns for p in small.paths} == before


def test_empty_folder_is_filled(tmp_path):
    (tmp_path / "empty").mkdir()
    assert S.generate(tmp_path / "empty", n=20).n == 20


def test_refuses_folders_it_did_not_write(tmp_path, small):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=re.escape(str(other))):
        S.generate(other, n=20)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    with pytest.raises(DataError, match="n=60, seed=3"):
        S.generate(small.root, n=60, seed=4)
    with pytest.raises(DataError, match="not a folder"):
        S.generate(other / "notes.txt", n=20)


@pytest.mark.parametrize("n", [0, 5, 19])
def test_too_few_images_is_a_clear_error(tmp_path, n):
    with pytest.raises(DataError, match=f"n={n} is too small"):
        S.generate(tmp_path / "x", n=n)
    assert not (tmp_path / "x").exists()


def test_cli_writes_and_summarises(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path / "cli"), "--n", "20", "--seed", "1"]) == 0
    assert "20 images" in capsys.readouterr().out
    assert (tmp_path / "cli" / "BIRADS&FOLD.xlsx").is_file()


@pytest.mark.slow
def test_a_small_cnn_learns_it_but_not_perfectly(default):
    """SmallCNN, Adam lr 1e-3, 64x64, 8 epochs, train folds 1-4, test fold 5."""
    import torch
    from sklearn.metrics import roc_auc_score

    _, rows = _sheet(default.root)
    path = {p.stem: p for p in default.images}

    def load(stem: str) -> np.ndarray:
        rgb = read_rgb(path[stem])
        if rgb.dtype != np.uint8:  # 16-bit files come back as floats in [0, 1]
            rgb = np.round(rgb * 255).astype(np.uint8)
        return np.asarray(Image.fromarray(rgb).resize((64, 64), Image.BILINEAR))

    x = torch.tensor(np.stack([load(r[0]) for r in rows])).permute(0, 3, 1, 2).float() / 255
    y = torch.tensor([int(r[0].startswith("malignant")) for r in rows])
    test = torch.tensor([r[3] == 5 for r in rows])
    train_idx = torch.where(~test)[0]
    torch.manual_seed(0)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(8):
        model.train()
        for batch in train_idx[torch.randperm(len(train_idx))].split(32):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        prob = torch.softmax(model(x[test]), 1)[:, 1]
    auc = roc_auc_score(y[test].numpy(), prob.numpy())
    print(f"SmallCNN 64x64, 8 epochs, test fold 5: AUC {auc:.3f}")
    assert 0.75 < auc < 0.99, auc


@pytest.mark.slow
def test_same_bytes_whatever_simd_numpy_uses(tmp_path):
    """NumPy's AVX2/AVX-512 kernels differ in the last bits; the generator must not care."""
    import hashlib
    import os
    import subprocess
    import sys

    digests = []
    for disabled in ("", "X86_V3", "X86_V3 X86_V4 AVX512_ICL"):
        out = tmp_path / f"syn-{len(digests)}"
        env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": disabled}
        code = f"from medbench.data.synth.synthetic import generate; generate({str(out)!r}, n=40, seed=5)"
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        h = hashlib.sha256()
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            h.update(path.relative_to(out).as_posix().encode() + path.read_bytes())
        digests.append(h.hexdigest())
    assert len(set(digests)) == 1


@pytest.mark.e2e
def test_the_audit_finds_every_planted_near_duplicate(default):
    report = audit_dataset(default.root)
    found = {
        frozenset(pair)
        for pair in zip(report.near_duplicates["id_a"], report.near_duplicates["id_b"], strict=True)
    }
    planted = {frozenset((d.original, d.copy)) for d in default.near_duplicates}
    assert planted <= found
    meta, _ = read_card("synthetic_bus")
    assert meta["near_duplicates"] == len(planted) == 9


# --------------------------------------------------------------------------- size profiles


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return S.generate(tmp_path_factory.mktemp("release") / "bus", n=60, seed=3, sizes="release")


@pytest.mark.e2e
def test_release_sizes_change_the_pixels_only(small, release):
    """Same sheet (labels, folds, readers) and planted pairs as the default; larger images."""
    assert (release.root / SHEET_FILE).read_bytes() == (small.root / SHEET_FILE).read_bytes()
    assert release.counts == small.counts and release.near_duplicates == small.near_duplicates
    (h_lo, _), (w_lo, _) = S.SIZE_PROFILES["default"].site_sizes["GDPH"]
    sides = []
    for p in release.images:
        with Image.open(p) as img:
            (hr, wr) = S.SIZE_PROFILES["release"].site_sizes[p.parent.name]
            planted = p.stem in {d.copy for d in release.near_duplicates}  # cropped a little
            assert hr[0] - 12 * planted <= img.height <= hr[1], (p, img.size)
            assert wr[0] - 12 * planted <= img.width <= wr[1], (p, img.size)
            sides += [img.height, img.width]
    assert max(sides) > 900 and np.median(sides) > 650  # the release's 500-1,000 px


def test_release_sizes_are_remembered_and_checked(release, tmp_path):
    assert S.generate(release.root, n=60, seed=3, sizes="release").reused
    with pytest.raises(DataError, match="sizes release.*asked: n=60, seed=3, sizes default"):
        S.generate(release.root, n=60, seed=3)
    with pytest.raises(DataError, match="sizes 'huge' is not one of default, release"):
        S.generate(tmp_path / "x", n=20, sizes="huge")


def test_the_audit_finds_the_planted_pairs_at_release_sizes(release):
    found = audit_dataset(release.root).near_duplicates
    pairs = {frozenset((a, b)) for a, b in zip(found["id_a"], found["id_b"], strict=True)}
    assert {frozenset((d.original, d.copy)) for d in release.near_duplicates} <= pairs


def test_cli_writes_release_sizes(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["data", "synth", str(out), "--n", "20", "--sizes", "release"]) == 0
    assert "20 images" in capsys.readouterr().out
    assert '"sizes": "release"' in (out / S.MARKER).read_text()
