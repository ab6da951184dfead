"""Cross-validation folds: which images are test, validation and training data for each outer fold.

The held-out fold is the test set and is never used for selection; early stopping and the best
checkpoint use a validation part carved, stratified and seeded, out of the training folds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from medbench.data.labels import LABEL_NAMES
from medbench.errors import ConfigError, DataError, MedbenchWarning, closest

FOLD_SOURCES = ("auto", "sheet", "stratified", "site")


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


def assign_folds(
    manifest: pd.DataFrame, source: str = "auto", k: int = 5, seed: int = 0
) -> pd.DataFrame:
    """A copy of the manifest with its ``fold`` column set.

    ``source``: ``"sheet"`` keeps the sheet's folds (any integer labels, at least two);
    ``"stratified"`` draws ``k`` seeded folds stratified by label and site; ``"auto"`` is
    ``"sheet"`` when the sheet has folds, else ``"stratified"``; ``"site"`` is leave-one-site-out
    (the fold is the site name).
    """
    if source not in FOLD_SOURCES:
        raise ConfigError(
            f"unknown fold source {source!r}{closest(source, FOLD_SOURCES)}; "
            f"choose one of {', '.join(FOLD_SOURCES)}"
        )
    out = manifest.copy()
    has_folds = bool(out["fold"].notna().any())
    if source == "auto":
        source = "sheet" if has_folds else "stratified"
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


def _stratified(manifest: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """Seeded k-fold labels, stratified by label (and site when every site x label has k images)."""
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
    strata = labels.astype(str)
    if _has_sites(manifest):
        by_site = manifest["site"].astype(str).to_numpy() + "/" + strata
        if pd.Series(by_site).value_counts().min() >= k:
            strata = by_site
    folds = np.empty(len(manifest), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(strata)), strata)):
        folds[test] = fold
    return folds


def fold_ids(manifest: pd.DataFrame) -> list:
    """The outer folds, sorted (plain Python ints, or site names for leave-one-site-out)."""
    values = manifest["fold"].dropna().unique().tolist()
    return sorted(int(v) if isinstance(v, (int, np.integer)) else v for v in values)


def split_fold(
    manifest: pd.DataFrame, test_fold: object, val_fraction: float = 0.2, seed: int = 0
) -> FoldSplit:
    """Test = ``test_fold``; validation = a stratified, seeded ``val_fraction`` of the other folds.

    A test part with a single class is allowed (a MedbenchWarning says so; its AUC will be
    undefined). The same manifest, fold and seed always give the same split.
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
    test = np.flatnonzero(fold == test_fold)
    rest = np.flatnonzero(fold != test_fold)
    labels = manifest["label"].to_numpy()

    val = np.empty(0, dtype=np.int64)
    train = rest
    n_val = int(round(val_fraction * len(rest)))
    if n_val > 0:
        strata = _val_strata(manifest.iloc[rest], n_val)
        train, val = train_test_split(
            rest, test_size=n_val, random_state=seed, shuffle=True, stratify=strata
        )
    _warn_single_class(test_fold, "test", labels[test])
    if len(val):
        _warn_single_class(test_fold, "validation", labels[val])
    return FoldSplit(fold=test_fold, train=np.sort(train), val=np.sort(val), test=np.sort(test))


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
