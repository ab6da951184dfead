"""What the parent runs record about the data they train on, for the report to say: the data
card that describes it, whether it was generated, and its near-duplicate images.

The report reads MLflow only, never the dataset folder: what it says about the data must be
logged when the runs are made.
"""

from __future__ import annotations

import json

from medbench.data.audit.check import NEAR_DUPLICATE_BITS, near_duplicates_of
from medbench.data.audit.near_duplicates import ids_to_exclude
from medbench.data.dataset import Dataset
from medbench.tracking import schema as s

#: MLflow's longest tag value (8,000 characters), with room for the counts.
MAX_TAG_CHARS = 7500


def dataset_tags(dataset: Dataset) -> dict[str, str]:
    """The parent runs' tags about ``dataset``: its data card, ``medbench.synthetic`` when it
    was generated (any layout), and its near-duplicate pairs (hashed from the preprocessed
    images; :func:`near_duplicate_summary`)."""
    tags: dict[str, str] = {}
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
