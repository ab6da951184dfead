"""Cross-validation folds: which images are test, validation and training data for each outer fold.

The held-out fold is the test set and is never used for selection; early stopping and the best
checkpoint use a validation part carved, stratified and seeded, out of the training folds.

When the manifest has patients, every split made here keeps a patient's images together:
stratified folds come from scikit-learn's ``StratifiedGroupKFold`` and the validation part is
made of whole patients. Two single-fold modes exist besides cross-validation: ``official``
(a dataset's own train/val/test split, as BreastMNIST's) and ``none`` (train on every image,
minus validation, and test only on external datasets).

Everything about folds lives here: the fold sources and their assignment (:func:`make_folds`
for what a run asks), which folds to keep and which look mistyped, the dataset's own folds as
the audit reads them, the folds of each repeat of a repeated cross-validation
(:func:`repartition`: repeat 1 is the dataset's own, later repeats re-partition the same images),
and each outer fold's train/validation/test split (:func:`split_fold`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medbench.data.messages import plural
from medbench.data.read.labels import LABEL_NAMES, SPLITS
from medbench.errors import ConfigError, DataError, MedbenchWarning, closest
from medbench.optional import lazy_import

# scikit-learn takes a second to import: config checks and `medbench list` read FOLD_SOURCES only
model_selection = lazy_import("sklearn.model_selection")

FOLD_SOURCES = ("auto", "sheet", "stratified", "site", "official", "none")
#: The one fold of ``official`` (the dataset's own split) and of ``none`` (no internal test).
OFFICIAL_FOLD = "official"
ALL_FOLD = "all"


@dataclass(frozen=True)
class FoldSplit:
    """Row positions (into the manifest) of one outer fold's train, validation and test parts."""

    fold: object
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _sheet_name(manifest: pd.DataFrame) -> str:
    return str(manifest.attrs.get("sheet_file") or "the manifest")


def _has_sites(manifest: pd.DataFrame) -> bool:
    return bool(manifest["site"].notna().all()) and manifest["site"].nunique() > 1


def patient_groups(manifest: pd.DataFrame) -> np.ndarray | None:
    """The group of each row for patient-aware splits: its patient, or the image alone when it
    has none; None when no row has a patient."""
    if "patient" not in manifest or not manifest["patient"].notna().any():
        return None
    patient = manifest["patient"].astype(object)
    own = "image:" + manifest["id"].astype(str)
    return np.where(patient.notna(), "patient:" + patient.astype(str), own).astype(str)


def has_split(manifest: pd.DataFrame) -> bool:
    """Whether the dataset comes with its own train/val/test split (BreastMNIST)."""
    return "split" in manifest and bool(manifest["split"].notna().any())


def resolve_source(manifest: pd.DataFrame, source: str) -> str:
    """The fold source ``"auto"`` stands for: ``"sheet"`` when the sheet has folds, else
    ``"official"`` when the dataset has its own split, else ``"stratified"``; any other source
    is itself."""
    if source != "auto":
        return source
    if manifest["fold"].notna().any():
        return "sheet"
    return "official" if has_split(manifest) else "stratified"


def assign_folds(
    manifest: pd.DataFrame, source: str = "auto", k: int = 5, seed: int = 0
) -> pd.DataFrame:
    """A copy of the manifest with its ``fold`` column set.

    ``source``: ``"sheet"`` keeps the sheet's folds (any integer labels, at least two);
    ``"stratified"`` draws ``k`` seeded folds stratified by label and site (grouped by patient
    when there are patients); ``"site"`` is leave-one-site-out (the fold is the site name);
    ``"official"`` is the dataset's own train/val/test split as one fold (``OFFICIAL_FOLD``);
    ``"none"`` puts every image in one fold (``ALL_FOLD``) that has no test part; ``"auto"`` is
    ``"sheet"`` when the sheet has folds, else ``"official"`` when the dataset has a split, else
    ``"stratified"``.
    """
    if source not in FOLD_SOURCES:
        raise ConfigError(
            f"unknown fold source {source!r}{closest(source, FOLD_SOURCES)}; "
            f"choose one of {', '.join(FOLD_SOURCES)}"
        )
    out = manifest.copy()
    has_folds = bool(out["fold"].notna().any())
    source = resolve_source(out, source)
    if source in ("official", "none"):
        if source == "official":
            _check_official(out)
        label = OFFICIAL_FOLD if source == "official" else ALL_FOLD
        out["fold"] = pd.array([label] * len(out), dtype="str")
        return out
    if source == "sheet":
        if not has_folds:
            raise DataError(
                f"{_sheet_name(manifest)}: no fold column; add one, or use stratified folds"
            )
        empty = out.loc[out["fold"].isna(), "id"].tolist()
        if empty:
            raise DataError(
                f"{_sheet_name(manifest)}: {len(empty)} images have no fold, e.g. {empty[0]!r}"
            )
        if out["fold"].nunique() < 2:
            raise DataError(
                f"{_sheet_name(manifest)}: the fold column holds a single fold "
                f"({out['fold'].iloc[0]}); cross-validation needs at least 2"
            )
        return out
    if source == "site":
        if out["site"].isna().any() or out["site"].nunique() < 2:
            sites = sorted(out["site"].dropna().unique().tolist())
            raise DataError(
                f"leave-one-site-out needs at least 2 sites; the dataset has {sites or 'none'}"
            )
        out["fold"] = out["site"].astype("str")
        return out
    out["fold"] = pd.array(_stratified(out, k, seed), dtype="Int64")
    return out


def make_folds(
    manifest: pd.DataFrame,
    source: str,
    k: int,
    seed: int,
    keep: Sequence[str],
    repeats: int = 1,
) -> pd.DataFrame:
    """The manifest with the folds a run asks for: assigned from ``source`` (``k`` folds seeded
    by ``seed`` when stratified, see :func:`assign_folds`), then only those in ``keep``
    (:func:`keep_folds`). With ``repeats`` > 1 the source must be one that can be drawn again
    (:func:`check_repeats`, after ``auto`` is resolved).

    A fold far smaller than the others (:func:`small_folds`) gets a MedbenchWarning: its test
    metrics would weigh as much as a full fold's in every mean.
    """
    check_repeats(source, repeats, resolve_source(manifest, source))
    manifest = keep_folds(assign_folds(manifest, source=source, k=k, seed=seed), keep)
    for fold, size, median in small_folds(manifest):
        warnings.warn(
            f"fold {fold} holds {plural(size, 'image')}, far fewer than the other folds "
            f"(median {median:g}): its test metrics are noise and weigh as much as a full "
            "fold's in every mean; leave it out with data.folds_keep if it is a typo",
            MedbenchWarning,
            stacklevel=3,  # the caller of prepare_dataset
        )
    return manifest


# -- repeated cross-validation -------------------------------------------------------------------

#: Fold sources a repeated cross-validation can draw again: a partition of the images into folds.
#: Leave-one-site-out has one partition only, and ``official`` and ``none`` are single folds.
REPEATABLE_SOURCES = ("sheet", "stratified")

_WHY_NOT_REPEATABLE = {
    "site": "leave-one-site-out has one partition only (one fold per site)",
    "official": "the dataset's official train/val/test split is one fold",
    "none": "training on every image has no test fold",
}

#: Entropy that seeds the re-partitions with their repeat number (fixed: the same partitions on
#: every machine and every rerun).
_REPEAT_ENTROPY = 0x5EED_C0DE


def check_repeats(source: str, repeats: int, resolved: str | None = None) -> None:
    """Refuse ``repeats`` > 1 where folds cannot be drawn again (one line naming ``cv.repeats``).

    ``resolved`` is what ``source`` stands for on this dataset (``auto`` becomes ``official`` on
    BreastMNIST); by default ``source`` itself, and ``auto`` passes (checked once resolved)."""
    if repeats <= 1:
        return
    actual = resolved or source
    if actual == "auto" or actual in REPEATABLE_SOURCES:
        return
    via = f" (data.folds: {source} -> {actual})" if source != actual else f" (data.folds: {actual})"
    raise ConfigError(
        f"cv.repeats: {repeats} repeats re-partition cross-validation folds, but "
        f"{_WHY_NOT_REPEATABLE.get(actual, actual)}{via}; set cv.repeats: 1, or use "
        "data.folds: stratified"
    )


def repeat_seed(repeat: int) -> int:
    """The seed of repeat ``repeat``'s partition (repeats 2 and above), from its number only."""
    state = np.random.SeedSequence([_REPEAT_ENTROPY, int(repeat)]).generate_state(1)[0]
    return int(state % (2**31 - 1))


def repartition(manifest: pd.DataFrame, repeat: int) -> pd.DataFrame:
    """The manifest with the folds of repeat ``repeat`` of a repeated cross-validation.

    Repeat 1 is the manifest itself (the dataset's own folds, or those drawn for it). Repeat
    ``j`` >= 2 deals the same images into as many folds again, seeded by :func:`repeat_seed`,
    stratified by label (and site where every site x label has enough images) and grouped by
    patient when the manifest has patients (:func:`_stratified`); its folds carry the labels of
    the manifest's folds, so ``fold 3`` names a test part in every repeat. The same manifest and
    repeat always give the same folds.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or repeat < 1:
        raise ConfigError(f"cv.repeats: a repeat is an integer of at least 1, got {repeat!r}")
    if repeat == 1:
        return manifest
    labels = fold_ids(manifest)
    if len(labels) < 2:
        raise ConfigError(
            f"cv.repeats: repeat {repeat} needs cross-validation folds to draw again; the "
            f"manifest has {len(labels)} fold(s)"
        )
    index = _stratified(manifest, len(labels), repeat_seed(repeat))
    out = manifest.copy()
    values = np.empty(len(out), dtype=object)
    for i, label in enumerate(labels, start=1):  # _stratified numbers its folds from 1
        values[index == i] = label
    out["fold"] = pd.array(values.tolist(), dtype=manifest["fold"].dtype)
    return out


def _check_official(manifest: pd.DataFrame) -> None:
    """The dataset's own split must cover every image and hold training and test images."""
    where = _sheet_name(manifest)
    if not has_split(manifest):
        raise DataError(
            f"{where}: the dataset has no official train/val/test split; use sheet or stratified folds"
        )
    split = manifest["split"]
    bad = manifest.loc[split.isna() | ~split.isin(SPLITS), "id"].tolist()
    if bad:
        raise DataError(
            f"{where}: {len(bad)} images are in no official part (train, val, test), "
            f"e.g. {bad[0]!r}"
        )
    for part in ("train", "test"):
        if not (split == part).any():
            raise DataError(f"{where}: the official split has no {part} images")


def _stratified(manifest: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """Seeded k-fold labels 1..k, stratified by label (and site when every site x label has k
    images, or k patients); a patient's images share one fold."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"folds: k must be an integer of at least 2, got {k!r}")
    labels = manifest["label"].to_numpy()
    counts = pd.Series(labels).value_counts()
    if len(counts) < 2:
        raise DataError("cannot draw stratified folds: the manifest holds a single class")
    if counts.min() < k:
        rare = LABEL_NAMES.get(counts.idxmin(), counts.idxmin())
        raise DataError(
            f"cannot draw {k} stratified folds: only {counts.min()} {rare} images "
            f"(each fold needs at least one of each class)"
        )
    groups = patient_groups(manifest)
    if groups is not None:
        patients = pd.DataFrame({"label": labels, "group": groups}).drop_duplicates()
        per_class = patients["label"].value_counts()
        if per_class.min() < k:
            rare = LABEL_NAMES.get(per_class.idxmin(), per_class.idxmin())
            raise DataError(
                f"cannot draw {k} stratified folds grouped by patient: only {per_class.min()} "
                f"patients have {rare} images (each fold needs at least one of each class)"
            )
    strata = labels.astype(str)
    if _has_sites(manifest):
        by_site = manifest["site"].astype(str).to_numpy() + "/" + strata
        if groups is None:
            smallest = pd.Series(by_site).value_counts().min()
        else:  # patients, not images, are dealt into folds
            smallest = pd.Series(groups).groupby(by_site).nunique().min()
        if smallest >= k:
            strata = by_site
    folds = np.empty(len(manifest), dtype=np.int64)
    # numbered from 1, as the datasets' own fold columns are (GDPH&SYSUCC, BUS-BRA): fold1-5
    for fold, test in enumerate(_kfold_parts(strata, groups, k, seed), start=1):
        folds[test] = fold
    return folds


def _kfold_parts(strata: np.ndarray, groups: np.ndarray | None, k: int, seed: int) -> list:
    """The k test parts (row positions) of a seeded stratified k-fold, grouped when ``groups``."""
    x = np.zeros(len(strata))
    if groups is None:
        splitter = model_selection.StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return [test for _, test in splitter.split(x, strata)]
    with warnings.catch_warnings():  # a rare stratum is fine: it is spread as well as it can be
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        splitter = model_selection.StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return [test for _, test in splitter.split(x, strata, groups)]


#: A fold smaller than this share of the median fold is "far smaller than the rest".
SMALL_FOLD_SHARE = 0.25


def small_folds(manifest: pd.DataFrame) -> list[tuple[object, int, float]]:
    """(fold, images, median fold size) of each fold far smaller than the others: a typo in a
    sheet's fold column (0 or 6 in a 5-fold sheet) makes a fold of a few images whose AUC of,
    say, 1.0 on 2 images would lift the mean over folds."""
    sizes = manifest["fold"].dropna().value_counts()
    if len(sizes) < 3:
        return []
    median = float(sizes.median())
    return [
        (fold, int(n), median)
        for fold, n in sorted(sizes.items(), key=lambda kv: str(kv[0]))
        if n < SMALL_FOLD_SHARE * median
    ]


def keep_folds(manifest: pd.DataFrame, keep: Sequence[str]) -> pd.DataFrame:
    """Only the images of the folds in ``keep`` (``data.folds_keep``; empty: all of them)."""
    if not keep:
        return manifest
    present = {str(f): f for f in fold_ids(manifest)}
    missing = [k for k in keep if str(k) not in present]
    if missing:
        raise ConfigError(
            f"data.folds_keep: no fold {missing[0]!r} in the dataset; its folds are "
            f"{', '.join(present)}"
        )
    kept = manifest[manifest["fold"].astype(str).isin({str(k) for k in keep})]
    if kept["fold"].nunique() < 2:
        raise ConfigError("data.folds_keep: keep at least 2 folds for cross-validation")
    return kept.reset_index(drop=True)


def fold_ids(manifest: pd.DataFrame) -> list:
    """The outer folds, sorted (plain Python ints, site names for leave-one-site-out, or the one
    fold of ``official`` and ``none``)."""
    values = manifest["fold"].dropna().unique().tolist()
    return sorted(int(v) if isinstance(v, (int, np.integer)) else v for v in values)


def own_parts(manifest: pd.DataFrame) -> tuple[pd.Series | None, str]:
    """The dataset's own outer parts with their noun: its folds (``"fold"``), else its official
    train/val/test split (``"split"``); ``(None, "fold")`` when it has neither (medbench will
    draw folds)."""
    if manifest["fold"].notna().any():
        return manifest["fold"], "fold"
    if has_split(manifest):
        return manifest["split"], "split"
    return None, "fold"


def single_class_folds(manifest: pd.DataFrame) -> list[tuple[object, int, int]]:
    """(fold, its one label, images) of each fold that holds a single class: its test AUC is
    undefined."""
    found = []
    for fold, labels in manifest.dropna(subset=["fold"]).groupby("fold")["label"]:
        present = sorted(set(labels))
        if len(present) < 2:
            found.append((fold, present[0], len(labels)))
    return found


def patients_across_folds(manifest: pd.DataFrame) -> dict[object, list]:
    """Each patient whose images lie in several of the manifest's folds, with those folds
    (sorted): their images leak from training into test. Folds medbench draws never split a
    patient; a dataset's own folds may."""
    if "patient" not in manifest or manifest["fold"].isna().all():
        return {}
    known = manifest.dropna(subset=["patient", "fold"])
    spread = known.groupby("patient")["fold"].agg(lambda f: sorted(set(f)))
    return {patient: folds for patient, folds in spread.items() if len(folds) > 1}


def split_fold(
    manifest: pd.DataFrame, test_fold: object, val_fraction: float = 0.2, seed: int = 0
) -> FoldSplit:
    """Test = ``test_fold``; validation = a stratified, seeded ``val_fraction`` of the other folds
    (whole patients when the manifest has patients).

    The fold ``OFFICIAL_FOLD`` takes the dataset's own split (its ``val`` part, when it has one,
    is the validation part); ``ALL_FOLD`` has no test part. A test part with a single class is
    allowed (a MedbenchWarning says so; its AUC will be undefined); an empty or one-class
    validation part, or a one-class training part, is a DataError naming the fold and the sizes
    of its parts. The same manifest, fold and seed always give the same split.
    """
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if manifest["fold"].isna().any():
        raise DataError("the manifest has rows without a fold; call assign_folds first")
    folds = fold_ids(manifest)
    if test_fold not in folds:
        raise DataError(
            f"fold {test_fold!r} is not in the dataset{closest(str(test_fold), [str(f) for f in folds])}; "
            f"its folds are {', '.join(map(str, folds))}"
        )
    fold = manifest["fold"].to_numpy(dtype=object)
    labels = manifest["label"].to_numpy()
    single = bool((fold == test_fold).all())  # the one fold of official and none
    official = single and test_fold == OFFICIAL_FOLD and has_split(manifest)
    if official:
        split = manifest["split"].to_numpy(dtype=object)
        test, rest = np.flatnonzero(split == "test"), np.flatnonzero(split != "test")
    elif single and test_fold == ALL_FOLD:
        test, rest = np.empty(0, dtype=np.int64), np.arange(len(manifest))
    else:
        test, rest = np.flatnonzero(fold == test_fold), np.flatnonzero(fold != test_fold)

    if official and (split == "val").any():
        train, val = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    else:
        train, val = _carve_validation(manifest, rest, val_fraction, seed)
    sizes = f"{len(train)} training, {len(val)} validation, {len(test)} test images"
    _check_parts(test_fold, labels[train], labels[val], val_fraction, sizes)
    if len(test):
        _warn_single_class(test_fold, "test", labels[test])
    return FoldSplit(fold=test_fold, train=np.sort(train), val=np.sort(val), test=np.sort(test))


def _check_parts(
    fold: object, train: np.ndarray, val: np.ndarray, val_fraction: float, sizes: str
) -> None:
    """Refuse the parts a fold cannot train on: no or one-class validation images (selection
    and early stopping would see nothing, or an undefined AUC, and the first epoch would be
    tested), no or one-class training images (the model learns one answer, and its AUC would
    enter the mean)."""
    share = f"data.val_fraction {val_fraction:g}"
    for part, labels in (("validation", val), ("training", train)):
        if not len(labels):
            raise DataError(
                f"fold {fold}: {share} leaves no {part} images ({sizes}); "
                f"{'raise' if part == 'validation' else 'lower'} data.val_fraction"
            )
        present = sorted(set(labels.tolist()))
        if len(present) < 2:
            what = LABEL_NAMES.get(present[0], present[0])
            raise DataError(
                f"fold {fold}: the {part} part has only {what} images ({sizes}); a model cannot "
                f"be {'selected' if part == 'validation' else 'trained'} on one class: check "
                f"the labels and folds, or change {share}"
            )


def _carve_validation(
    manifest: pd.DataFrame, rest: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row positions: a stratified, seeded ``val_fraction`` of ``rest``."""
    n_val = int(round(val_fraction * len(rest)))
    if n_val == 0 or n_val == len(rest):  # nothing to carve, or nothing left: split_fold says so
        return (rest, np.empty(0, dtype=np.int64)) if n_val == 0 else (rest[:0], rest)
    part = manifest.iloc[rest]
    groups = patient_groups(part)
    if groups is None:
        strata = _val_strata(part, n_val)
        if strata is None and len(rest) - n_val < 2:  # one training image: one class at most
            return rest[: len(rest) - n_val], rest[len(rest) - n_val :]
        train, val = model_selection.train_test_split(
            rest, test_size=n_val, random_state=seed, shuffle=True, stratify=strata
        )
        return train, val
    # whole patients: the union of a few parts of a stratified group k-fold, as close to the
    # asked share as at most 20 parts allow (0.2 -> 1 of 5 parts, 0.3 -> 3 of 10)
    n_groups = len(set(groups.tolist()))
    if n_groups < 2:
        return rest, np.empty(0, dtype=np.int64)
    q, a = _share(val_fraction, min(20, n_groups))
    # by label only: finer strata cannot be kept with whole patients in a small part
    parts = _kfold_parts(part["label"].to_numpy().astype(str), groups, q, seed)
    val = np.concatenate([rest[p] for p in parts[:a]])
    return np.setdiff1d(rest, val), val


def _share(fraction: float, most: int) -> tuple[int, int]:
    """(q, a), 2 <= q <= ``most``, 1 <= a < q: the fraction a/q closest to ``fraction``,
    the smallest q on ties."""
    options = []
    for q in range(2, most + 1):
        a = min(max(int(round(fraction * q)), 1), q - 1)
        options.append((abs(a / q - fraction), q, a))
    _, q, a = min(options)
    return q, a


def _val_strata(rest: pd.DataFrame, n_val: int) -> np.ndarray | None:
    """Label x site strata when each has 2+ rows and fits the split, else label, else none."""
    labels = rest["label"].to_numpy().astype(str)
    options = [labels]
    if _has_sites(rest):
        options.insert(0, rest["site"].astype(str).to_numpy() + "/" + labels)
    for strata in options:
        counts = pd.Series(strata).value_counts()
        if counts.min() >= 2 and len(counts) <= n_val <= len(strata) - len(counts):
            return strata
    return None


def _warn_single_class(fold: object, part: str, labels: np.ndarray) -> None:
    present = sorted(set(labels.tolist()))
    if len(present) < 2:
        what = LABEL_NAMES.get(present[0], present[0]) if present else "no"
        warnings.warn(
            f"fold {fold}: the {part} part has only {what} images ({len(labels)}); "
            f"its AUC will be undefined",
            MedbenchWarning,
            stacklevel=3,
        )
