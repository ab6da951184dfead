"""What the parent runs record about the data they train on, for the report to say: the data
card that describes it, whether it was generated, its near-duplicate images, and the external
datasets' images that are training images too.

The report reads MLflow only, never the dataset folder: what it says about the data must be
logged when the runs are made.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping

import numpy as np

from medbench.data.audit.check import NEAR_DUPLICATE_BITS, hash_images, near_duplicates_of
from medbench.data.audit.near_duplicates import ids_to_exclude, near_duplicate_pairs
from medbench.data.dataset import Dataset
from medbench.data.messages import plural
from medbench.errors import DataError, MedbenchWarning
from medbench.tracking import schema as s

#: MLflow's longest tag value (8,000 characters), with room for the counts.
MAX_TAG_CHARS = 7500


def dataset_tags(
    dataset: Dataset, overlap: Mapping[str, Mapping[str, int]] | None = None
) -> dict[str, str]:
    """The parent runs' tags about ``dataset``: its data card, ``medbench.synthetic`` when it
    was generated (any layout), its near-duplicate pairs (hashed from the preprocessed images;
    :func:`near_duplicate_summary`), and the external datasets' ``overlap`` with it
    (:func:`external_overlap`) where there is any."""
    tags: dict[str, str] = {}
    if overlap and any(o["identical"] or o["near_duplicates"] for o in overlap.values()):
        tags[s.TAG_EXTERNAL_OVERLAP] = json.dumps(dict(overlap), sort_keys=True)
    if dataset.card:
        tags[s.TAG_DATASET_CARD] = dataset.card
    if dataset.synthetic:
        tags[s.TAG_SYNTHETIC] = "true"
    tags[s.TAG_NEAR_DUPLICATES] = near_duplicate_summary(dataset)
    return tags


def near_duplicate_summary(dataset: Dataset) -> str:
    """The near-duplicate pairs among the images a grid trains on, as the JSON of
    ``TAG_NEAR_DUPLICATES``: counts across the grid's folds and with different labels, and the
    ids ``data.exclude`` would leave out (every pair when medbench drew the folds, since
    leaving images out draws them again)."""
    pairs = near_duplicates_of(dataset.manifest, dataset.images.numpy())
    drawn = dataset.fold_source == "stratified"
    exclude = ids_to_exclude(pairs, every_pair=drawn)
    summary = {
        "pairs": len(pairs),
        "across_folds": int((~pairs["same_fold"]).sum()),
        "different_labels": int((~pairs["same_label"]).sum()),
        "max_bits": NEAR_DUPLICATE_BITS,
        "exclude": exclude,
    }
    while len(json.dumps(summary)) > MAX_TAG_CHARS:
        summary["exclude"] = summary["exclude"][: len(summary["exclude"]) // 2]
        summary["exclude_more"] = len(exclude) - len(summary["exclude"])
    return json.dumps(summary)


def _digests(images: np.ndarray) -> list[bytes]:
    return [hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest() for image in images]


def external_overlap(
    dataset: Dataset, externals: Mapping[str, Dataset]
) -> dict[str, dict[str, int]]:
    """Per external dataset: its images (``n``), those that are training images (``identical``:
    the same preprocessed pixels) and those, besides, that are near-duplicates of one
    (``near_duplicates``: the audit's perceptual hash, within its bits).

    An external test is meant to be on data from elsewhere: an external dataset that is the
    training data (``data.external`` pointed at the data root, or a copy of it) is refused with
    one line; a partial overlap is warned about here and marked in the report with its counts.
    """
    if not externals:
        return {}
    train = dataset.images.numpy()
    seen = set(_digests(train))
    train_hashes = hash_images(train)
    out: dict[str, dict[str, int]] = {}
    for name, ext in externals.items():
        images = ext.images.numpy()
        same = np.array([d in seen for d in _digests(images)], dtype=bool)
        hashes = np.concatenate([train_hashes, hash_images(images)])
        pairs = near_duplicate_pairs(hashes, NEAR_DUPLICATE_BITS)
        across = (
            pairs[(pairs[:, 0] < len(train)) != (pairs[:, 1] < len(train))] if len(pairs) else pairs
        )
        near = np.zeros(len(images), dtype=bool)
        if len(across):
            near[across.max(axis=1) - len(train)] = True
        counts = {
            "n": len(images),
            "identical": int(same.sum()),
            "near_duplicates": int((near & ~same).sum()),
        }
        out[name] = counts
        if counts["identical"] == counts["n"]:
            raise DataError(
                f"external dataset {name!r}: all {plural(counts['n'], 'image')} are training "
                "images (the same pixels as the dataset's): its test would be on what the models "
                "trained on; point data.external at data from elsewhere"
            )
        if counts["identical"] or counts["near_duplicates"]:
            warnings.warn(
                f"external dataset {name!r}: {counts['identical']} of its {counts['n']} images "
                f"are training images and {counts['near_duplicates']} more near-duplicates of "
                "one: its external results overstate generalisation (the report says so)",
                MedbenchWarning,
                stacklevel=2,
            )
    return out
