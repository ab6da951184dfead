"""The label coding of every manifest: 0 benign, 1 malignant.

A layout whose source codes labels otherwise (BreastMNIST: 0 = malignant) maps them to this.
``SPLITS`` are the values of the manifest's ``split`` column: a dataset's own split.
"""

from __future__ import annotations

LABELS = {"benign": 0, "malignant": 1}
LABEL_NAMES = {label: name for name, label in LABELS.items()}
SPLITS = ("train", "val", "test")  # in reading order
