import warnings

import numpy as np
import pandas as pd
import pytest

from medbench.data.folds import FoldSplit, assign_folds, fold_ids, split_fold
from medbench.data.manifest import MANIFEST_COLUMNS, read_manifest
from medbench.errors import ConfigError, DataError, MedbenchWarning
from tests.data.layouts import flat_layout, gdph_layout


def manifest(n_benign=40, n_malignant=60, sites=("A", "B"), folds=None, seed=0) -> pd.DataFrame:
    """An in-memory manifest: labels in blocks, sites alternating, folds as given."""
    n = n_benign + n_malignant
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_benign, int), np.ones(n_malignant, int)]
    rng.shuffle(labels)
    m = pd.DataFrame(
        {
            "id": [f"img{i}" for i in range(n)],
            "path": [f"/data/img{i}.png" for i in range(n)],
            "label": labels,
            "site": pd.array(
                [sites[i % len(sites)] for i in range(n)] if sites else [None] * n, dtype="str"
            ),
            "fold": pd.array(folds if folds is not None else [None] * n, dtype="Int64"),
            "birads_reader1": pd.array([None] * n, dtype="str"),
            "birads_reader2": pd.array([None] * n, dtype="str"),
        },
        columns=list(MANIFEST_COLUMNS),
    )
    m.attrs["sheet_file"] = "/data/labels.xlsx"
    return m


def quiet_split(m, fold, **kwargs) -> FoldSplit:
    with warnings.catch_warnings():
        warnings.simplefilter("error", MedbenchWarning)
        return split_fold(m, fold, **kwargs)


# --------------------------------------------------------------------------- assign_folds


def test_auto_keeps_the_sheet_folds(tmp_path):
    gdph_layout(tmp_path, stray=None)
    m = read_manifest(tmp_path)
    out = assign_folds(m)
    assert out["fold"].tolist() == m["fold"].tolist()
    assert fold_ids(out) == [1, 2, 3, 4, 5]
    assert out.attrs["layout"] == "gdph_sysucc"


def test_auto_draws_stratified_folds_when_the_sheet_has_none(tmp_path):
    flat_layout(tmp_path, n_benign=10, n_malignant=10)
    m = read_manifest(tmp_path)
    out = assign_folds(m, k=5, seed=3)
    assert fold_ids(out) == [0, 1, 2, 3, 4]
    assert str(out["fold"].dtype) == "Int64"
    assert (out.groupby("fold")["label"].agg(["min", "max"]).to_numpy() == [0, 1]).all()
    assert m["fold"].isna().all()  # the input is left alone


def test_stratified_folds_balance_label_and_site_and_follow_the_seed():
    m = manifest(n_benign=50, n_malignant=100, sites=("GDPH", "SYSUCC"))
    a = assign_folds(m, source="stratified", k=5, seed=0)
    b = assign_folds(m, source="stratified", k=5, seed=0)
    c = assign_folds(m, source="stratified", k=5, seed=1)
    assert a["fold"].tolist() == b["fold"].tolist()
    assert a["fold"].tolist() != c["fold"].tolist()
    per = a.groupby(["fold", "site", "label"]).size().unstack(["site", "label"])
    assert (per.max() - per.min()).max() <= 1  # every site x label spread evenly


def test_stratified_ignores_existing_folds_and_works_without_sites():
    m = manifest(sites=(), folds=[7] * 100)
    out = assign_folds(m, source="stratified", k=4)
    assert fold_ids(out) == [0, 1, 2, 3]


def test_sheet_source_requires_the_fold_column():
    with pytest.raises(DataError, match=r"/data/labels.xlsx: no fold column"):
        assign_folds(manifest(), source="sheet")


def test_sheet_folds_need_two_folds_and_no_gaps():
    with pytest.raises(DataError, match="single fold"):
        assign_folds(manifest(folds=[1] * 100), source="sheet")
    with pytest.raises(DataError, match=r"3 images have no fold, e.g. 'img0'"):
        assign_folds(manifest(folds=[None] * 3 + [1, 2] * 48 + [1]), source="auto")


def test_leave_one_site_out():
    out = assign_folds(manifest(sites=("GDPH", "SYSUCC")), source="site")
    assert fold_ids(out) == ["GDPH", "SYSUCC"]
    assert (out["fold"] == out["site"]).all()
    split = quiet_split(out, "GDPH")
    assert set(out["site"].iloc[split.test]) == {"GDPH"}
    assert set(out["site"].iloc[np.r_[split.train, split.val]]) == {"SYSUCC"}
    with pytest.raises(DataError, match="at least 2 sites"):
        assign_folds(manifest(sites=("GDPH",)), source="site")
    with pytest.raises(DataError, match="at least 2 sites"):
        assign_folds(manifest(sites=()), source="site")


def test_unknown_source_and_bad_k():
    with pytest.raises(ConfigError, match="did you mean 'sheet'"):
        assign_folds(manifest(), source="sheets")
    with pytest.raises(ConfigError, match="at least 2"):
        assign_folds(manifest(), source="stratified", k=1)


def test_too_few_images_of_a_class_for_k_folds():
    with pytest.raises(DataError, match="only 3 benign images"):
        assign_folds(manifest(n_benign=3, n_malignant=30), source="stratified", k=5)
    with pytest.raises(DataError, match="single class"):
        assign_folds(manifest(n_benign=0, n_malignant=30), source="stratified", k=5)


# --------------------------------------------------------------------------- split_fold


@pytest.mark.parametrize("labels", [[0, 1, 2, 3, 4], [1, 2, 3, 4, 5], [0, 3, 7], [-1, 10]])
def test_split_partitions_the_rows_for_any_fold_labels(labels):
    folds = [labels[i % len(labels)] for i in range(100)]
    m = manifest(folds=folds)
    assert fold_ids(m) == sorted(labels)
    for fold in fold_ids(m):
        s = quiet_split(m, fold, val_fraction=0.2, seed=0)
        assert s.fold == fold
        together = np.concatenate([s.train, s.val, s.test])
        assert len(together) == len(set(together.tolist())) == len(m)
        assert (m["fold"].iloc[s.test] == fold).all()
        assert not (m["fold"].iloc[np.r_[s.train, s.val]] == fold).any()
        rest = len(m) - len(s.test)
        assert len(s.val) == round(0.2 * rest)
        assert set(m["label"].iloc[s.val]) == {0, 1}
        assert all(np.all(np.diff(part) > 0) for part in (s.train, s.val, s.test))


def test_validation_is_stratified_and_seeded():
    m = assign_folds(manifest(n_benign=60, n_malignant=140), source="stratified", k=5)
    a, b = quiet_split(m, 2, seed=5), quiet_split(m, 2, seed=5)
    c = quiet_split(m, 2, seed=6)
    assert np.array_equal(a.val, b.val) and np.array_equal(a.train, b.train)
    assert not np.array_equal(a.val, c.val)
    rate = m["label"].iloc[a.val].mean()
    assert abs(rate - 0.7) < 0.05
    sites = m["site"].iloc[a.val].value_counts()
    assert abs(sites["A"] - sites["B"]) <= 2


def test_no_validation_part():
    m = manifest(folds=[i % 5 for i in range(100)])
    s = quiet_split(m, 0, val_fraction=0.0)
    assert len(s.val) == 0 and len(s.train) == 80


def test_single_class_test_fold_warns_and_goes_on():
    m = manifest(n_benign=50, n_malignant=50, sites=())
    m["fold"] = pd.array(np.where(m["label"] == 1, 0, 1 + np.arange(100) % 3), dtype="Int64")
    with pytest.warns(MedbenchWarning) as record:
        s = split_fold(m, 0)
    messages = [str(w.message) for w in record]
    assert (
        "fold 0: the test part has only malignant images (50); its AUC will be undefined"
        in messages
    )
    assert any("the validation part has only benign" in w for w in messages)
    assert len(s.test) == 50 and len(s.train) + len(s.val) == 50


def test_split_errors():
    m = manifest(folds=[i % 5 for i in range(100)])
    with pytest.raises(
        DataError, match=r"fold 9 is not in the dataset; its folds are 0, 1, 2, 3, 4"
    ):
        split_fold(m, 9)
    with pytest.raises(ConfigError, match="val_fraction"):
        split_fold(m, 0, val_fraction=1.0)
    with pytest.raises(DataError, match="assign_folds"):
        split_fold(manifest(), 0)


def test_tiny_folds_fall_back_to_an_unstratified_validation_part():
    m = manifest(n_benign=3, n_malignant=5, sites=(), folds=[0, 1] * 4)
    with pytest.warns(MedbenchWarning, match="validation part has only"):
        s = split_fold(m, 0, val_fraction=0.25)
    assert len(s.val) == 1 and len(s.train) == 3
