import warnings

import numpy as np
import pandas as pd
import pytest

from medbench.data.folds import (
    ALL_FOLD,
    OFFICIAL_FOLD,
    FoldSplit,
    _share,
    assign_folds,
    check_repeats,
    fold_ids,
    keep_folds,
    make_folds,
    own_parts,
    patients_across_folds,
    repartition,
    repeat_seed,
    resolve_source,
    single_class_folds,
    small_folds,
    split_fold,
)
from medbench.data.read.manifest import MANIFEST_COLUMNS, read_manifest
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
    assert fold_ids(out) == [1, 2, 3, 4, 5]  # numbered from 1, as sheet folds are
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
    assert fold_ids(out) == [1, 2, 3, 4]


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


def test_an_empty_validation_part_is_an_error_naming_the_fold_and_the_sizes():
    """val_fraction 0.01 on 60 images in 3 folds: 0 validation images; 0.99: 0 training images
    (was scikit-learn's traceback); never a run whose 'best' checkpoint is its first epoch."""
    m = assign_folds(manifest(n_benign=24, n_malignant=36), source="stratified", k=3)
    with pytest.raises(DataError) as err:
        split_fold(m, 1, val_fraction=0.01)
    assert str(err.value) == (
        "fold 1: data.val_fraction 0.01 leaves no validation images (40 training, 0 validation, "
        "20 test images); raise data.val_fraction"
    )
    with pytest.raises(DataError, match=r"fold 2: data.val_fraction 0.99 leaves no training"):
        split_fold(m, 2, val_fraction=0.99)
    with pytest.raises(DataError, match=r"fold 3: the training part has only (benign|malign)"):
        split_fold(m, 3, val_fraction=0.97)  # 1 training image


def test_single_class_test_fold_warns_and_goes_on():
    m = manifest(n_benign=50, n_malignant=50, sites=())
    m["fold"] = pd.array(np.where(m["label"] == 1, 0, 1 + np.arange(100) % 3), dtype="Int64")
    m.loc[m.index[m["label"] == 1][:6], "fold"] = 1  # the training folds keep both classes
    with pytest.warns(MedbenchWarning) as record:
        s = split_fold(m, 0)
    messages = [str(w.message) for w in record]
    assert messages == [
        "fold 0: the test part has only malignant images (44); its AUC will be undefined"
    ]
    assert len(s.test) == 44 and len(s.train) + len(s.val) == 56


def test_a_one_class_training_part_is_an_error():
    """A test fold holding every malignant image leaves benign images only to train on: it used
    to train silently, and its AUC entered the mean."""
    m = manifest(n_benign=50, n_malignant=50, sites=())
    m["fold"] = pd.array(np.where(m["label"] == 1, 0, 1 + np.arange(100) % 3), dtype="Int64")
    with pytest.raises(DataError) as err:
        split_fold(m, 0)
    assert str(err.value) == (
        "fold 0: the validation part has only benign images (40 training, 10 validation, 50 test "
        "images); a model cannot be selected on one class: check the labels and folds, or "
        "change data.val_fraction 0.2"
    )
    official = with_split(manifest(n_benign=20, n_malignant=20, sites=()))
    official.loc[(official["split"] == "train") & (official["label"] == 1), "split"] = "test"
    with pytest.raises(DataError, match="fold official: the training part has only benign"):
        split_fold(official.assign(fold=OFFICIAL_FOLD), OFFICIAL_FOLD)


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


def test_folds_too_small_to_stratify_are_an_error_not_a_traceback():
    """Too few images of a class to stratify the validation part: one of the parts misses that
    class, which is said in one line (scikit-learn's error was a traceback)."""
    m = manifest(n_benign=3, n_malignant=5, sites=(), folds=[0, 1] * 4)
    with pytest.raises(DataError, match="fold 0: the validation part has only"):
        split_fold(m, 0, val_fraction=0.25)  # one validation image: one class
    with pytest.raises(DataError, match="fold 0: the training part has only"):
        split_fold(m, 0, val_fraction=0.7)


# --------------------------------------------------------------------------- patients


def with_patients(m: pd.DataFrame, per_patient=(1, 2, 3)) -> pd.DataFrame:
    """Give the images patients of 1-3 images, each patient's images of one label."""
    patient = np.empty(len(m), dtype=object)
    for label in (0, 1):
        rows = np.flatnonzero(m["label"] == label)
        ends = np.cumsum(np.resize(per_patient, len(rows)))
        patient[rows] = [
            f"{label}-{np.searchsorted(ends, k, side='right')}" for k in range(len(rows))
        ]
    return m.assign(patient=pd.array(patient, dtype="str"))


def test_stratified_folds_keep_a_patients_images_together():
    m = with_patients(manifest(n_benign=60, n_malignant=90))
    a = assign_folds(m, source="stratified", k=5, seed=0)
    assert (a.groupby("patient")["fold"].nunique() == 1).all()
    assert fold_ids(a) == [1, 2, 3, 4, 5]
    share = a.groupby("fold")["label"].mean()
    assert (share - 0.6).abs().max() < 0.1  # still stratified by label
    assert a["fold"].tolist() == assign_folds(m, source="stratified", k=5, seed=0)["fold"].tolist()
    assert a["fold"].tolist() != assign_folds(m, source="stratified", k=5, seed=1)["fold"].tolist()


def test_without_patients_the_folds_are_unchanged():
    m = manifest(n_benign=50, n_malignant=100)
    empty = m.assign(patient=pd.array([None] * len(m), dtype="str"))
    a = assign_folds(m, source="stratified", k=5, seed=4)
    b = assign_folds(empty, source="stratified", k=5, seed=4)
    assert a["fold"].tolist() == b["fold"].tolist()


def test_too_few_patients_of_a_class_for_k_folds():
    m = with_patients(manifest(n_benign=12, n_malignant=30), per_patient=(4,))  # 3 benign
    with pytest.raises(DataError, match="only 3 patients have benign images"):
        assign_folds(m, source="stratified", k=5)


@pytest.mark.parametrize("fraction, parts", [(0.2, (5, 1)), (0.3, (10, 3)), (0.25, (4, 1))])
def test_validation_share_as_whole_parts(fraction, parts):
    assert _share(fraction, 20) == parts
    assert _share(0.2, 3) == (3, 1)  # few patients: the closest share they allow


def test_validation_part_is_made_of_whole_patients():
    m = with_patients(manifest(n_benign=80, n_malignant=120))
    m = assign_folds(m, source="stratified", k=5, seed=0)
    s = quiet_split(m, 1, val_fraction=0.2, seed=3)
    val_patients = set(m["patient"].iloc[s.val])
    assert not val_patients & set(m["patient"].iloc[s.train])
    assert not set(m["patient"].iloc[s.test]) & (val_patients | set(m["patient"].iloc[s.train]))
    rest = len(s.train) + len(s.val)
    assert abs(len(s.val) - 0.2 * rest) <= 0.05 * rest
    assert set(m["label"].iloc[s.val]) == {0, 1}
    again = quiet_split(m, 1, val_fraction=0.2, seed=3)
    assert np.array_equal(again.val, s.val)
    assert not np.array_equal(quiet_split(m, 1, val_fraction=0.2, seed=4).val, s.val)


# --------------------------------------------------------------------------- official and none


def with_split(m: pd.DataFrame, val: bool = True) -> pd.DataFrame:
    parts = ["train", "train", "val" if val else "train", "test", "train"]
    m["split"] = pd.array([parts[i % 5] for i in range(len(m))], dtype="str")
    return m


def test_official_split_is_one_fold():
    m = with_split(manifest())
    out = assign_folds(m, source="official")
    assert fold_ids(out) == ["official"] and (out["fold"] == "official").all()
    assert assign_folds(m)["fold"].tolist() == out["fold"].tolist()  # auto picks it
    s = quiet_split(out, "official", val_fraction=0.3)
    assert s.test.tolist() == np.flatnonzero(m["split"] == "test").tolist()
    assert s.val.tolist() == np.flatnonzero(m["split"] == "val").tolist()  # the official val
    assert s.train.tolist() == np.flatnonzero(m["split"] == "train").tolist()


def test_official_split_without_val_carves_one_from_train():
    out = assign_folds(with_split(manifest(), val=False), source="official")
    s = quiet_split(out, "official", val_fraction=0.25, seed=1)
    assert len(s.test) == 20 and len(s.val) == 20 and len(s.train) == 60


def test_official_split_errors():
    with pytest.raises(DataError, match="no official train/val/test split"):
        assign_folds(manifest(), source="official")
    m = with_split(manifest())
    m.loc[m["split"] == "test", "split"] = "train"
    with pytest.raises(DataError, match="the official split has no test images"):
        assign_folds(m, source="official")
    m = with_split(manifest())
    m.loc[3, "split"] = "holdout"
    with pytest.raises(DataError, match="1 images are in no official part"):
        assign_folds(m, source="official")


def test_none_trains_on_everything_but_validation():
    out = assign_folds(manifest(), source="none")
    assert fold_ids(out) == ["all"]
    s = quiet_split(out, "all", val_fraction=0.2, seed=0)
    assert len(s.test) == 0 and len(s.val) == 20 and len(s.train) == 80
    assert set(m := out["label"].iloc[s.val]) == {0, 1} and m.mean() == pytest.approx(0.6)


def test_a_site_named_like_a_single_fold_mode_is_still_a_site():
    m = manifest(sites=("all", "other"))
    out = assign_folds(m, source="site")
    s = quiet_split(out, "all")
    assert set(out["site"].iloc[s.test]) == {"all"} and len(s.test) == 50


def test_folds_far_smaller_than_the_rest_are_found_and_can_be_left_out():
    """Folds 0 (1 image) and 6 (2 images): typos in a 5-fold sheet."""
    folds = [f for f in (1, 2, 3, 4, 5) for _ in range(30)] + [0, 6, 6]
    m = pd.DataFrame({"id": [f"i{i}" for i in range(len(folds))], "label": 0, "fold": folds})
    m["fold"] = m["fold"].astype("Int64")
    assert small_folds(m) == [(0, 1, 30.0), (6, 2, 30.0)]
    kept = keep_folds(m, ["1", "2", "3", "4", "5"])
    assert len(kept) == 150 and small_folds(kept) == []
    assert keep_folds(m, []) is m
    with pytest.raises(ConfigError, match=r"data\.folds_keep: no fold '7' in the dataset"):
        keep_folds(m, ["1", "7"])
    with pytest.raises(ConfigError, match=r"keep at least 2 folds"):
        keep_folds(m, ["1"])


def test_make_folds_assigns_keeps_and_warns_about_folds_far_smaller_than_the_rest():
    """What a run asks for in one call: the sheet's folds, the kept ones, a warning per stray fold
    (here fold 6, 2 images among folds of 30)."""
    folds = [f for f in (1, 2, 3, 4, 5) for _ in range(30)] + [6, 6]
    m = manifest(n_benign=64, n_malignant=88, folds=folds)
    with pytest.warns(MedbenchWarning, match=r"fold 6 holds 2 images, far fewer .*median 30\)"):
        out = make_folds(m, "sheet", 5, 0, [])
    assert fold_ids(out) == [1, 2, 3, 4, 5, 6]
    with warnings.catch_warnings():
        warnings.simplefilter("error", MedbenchWarning)
        kept = make_folds(m, "sheet", 5, 0, ["1", "2", "3", "4", "5"])
    assert fold_ids(kept) == [1, 2, 3, 4, 5] and len(kept) == 150
    drawn = make_folds(manifest(), "stratified", 4, 3, [])
    assert drawn["fold"].equals(assign_folds(manifest(), "stratified", k=4, seed=3)["fold"])


def test_the_datasets_own_parts_are_its_folds_else_its_official_split():
    sheet = manifest(folds=[1 + i % 2 for i in range(100)])
    parts, noun = own_parts(sheet)
    assert noun == "fold" and parts.tolist() == sheet["fold"].tolist()
    split = manifest()
    split["split"] = pd.array(["train", "val", "test", "train"] * 25, dtype="str")
    parts, noun = own_parts(split)
    assert noun == "split" and parts.tolist()[:3] == ["train", "val", "test"]
    assert own_parts(manifest()) == (None, "fold")
    assert OFFICIAL_FOLD == "official" and ALL_FOLD == "all"


def test_single_class_folds_and_patients_across_folds_are_found():
    m = manifest(n_benign=4, n_malignant=4, folds=[1, 1, 1, 1, 2, 2, 2, 2])
    m["label"] = [0, 1, 0, 1, 1, 1, 1, 1]
    assert single_class_folds(m) == [(2, 1, 4)]
    assert single_class_folds(manifest()) == []  # no folds yet
    m["patient"] = pd.array(["p1", "p1", "p2", "p3", "p1", "p4", "p3", None], dtype="str")
    assert patients_across_folds(m) == {"p1": [1, 2], "p3": [1, 2]}
    assert patients_across_folds(m.drop(columns=["patient"])) == {}


# --------------------------------------------------------------------------- repeats


def test_a_repeat_re_partitions_the_same_images_into_as_many_stratified_folds():
    sheet = np.resize([3, 5, 7, 9, 11], 150)  # any integer labels, kept by every repeat
    m = manifest(n_benign=50, n_malignant=100, sites=("GDPH", "SYSUCC"), folds=sheet)
    assert repartition(m, 1) is m  # repeat 1: the dataset's own folds
    r2, r3 = repartition(m, 2), repartition(m, 3)
    for r in (r2, r3):
        assert fold_ids(r) == [3, 5, 7, 9, 11] and str(r["fold"].dtype) == "Int64"
        assert r.drop(columns="fold").equals(m.drop(columns="fold"))  # same rows, same order
        assert (r["fold"].value_counts() == 30).all()
        per = r.groupby(["fold", "site", "label"]).size().unstack(["site", "label"])
        assert (per.max() - per.min()).max() <= 1  # every site x label spread evenly
    assert r2["fold"].tolist() != m["fold"].tolist()
    assert r2["fold"].tolist() != r3["fold"].tolist()
    assert repartition(m, 2)["fold"].tolist() == r2["fold"].tolist()  # seeded by the repeat
    assert len({repeat_seed(j) for j in range(2, 50)}) == 48


def test_a_repeat_keeps_a_patients_images_together():
    m = with_patients(manifest(n_benign=60, n_malignant=90))
    m = assign_folds(m, source="stratified", k=5, seed=0)
    for repeat in (2, 3):
        r = repartition(m, repeat)
        assert (r.groupby("patient")["fold"].nunique() == 1).all()
        assert (r.groupby("fold")["label"].mean() - 0.6).abs().max() < 0.1
        assert r["fold"].tolist() != m["fold"].tolist()


def test_repeats_are_refused_where_folds_cannot_be_drawn_again():
    for source in ("sheet", "stratified", "auto"):
        check_repeats(source, 3)
    for source in ("site", "official", "none"):
        check_repeats(source, 1)
        with pytest.raises(ConfigError, match=r"^cv\.repeats: 3 repeats .*set cv\.repeats: 1"):
            check_repeats(source, 3)
    official = with_split(manifest())
    assert resolve_source(official, "auto") == "official"
    with pytest.raises(ConfigError, match=r"data\.folds: auto -> official"):
        make_folds(official, "auto", 5, 0, (), repeats=2)
    assert fold_ids(make_folds(official, "auto", 5, 0, (), repeats=1)) == [OFFICIAL_FOLD]
    sites = assign_folds(manifest(), source="site")
    with pytest.raises(ConfigError, match="needs cross-validation folds"):
        repartition(sites.assign(fold=pd.array(["A"] * len(sites), dtype="str")), 2)
