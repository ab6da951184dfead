"""The stratified bootstrap of the test images and the resampled fold means."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from medbench.metrics import binary_metrics
from medbench.report import resampling


def test_bootstrap_of_the_fold_mean_is_sklearn_on_resampled_images():
    rng = np.random.default_rng(8)
    frames = []
    for fold in (1, 2):
        labels = np.arange(30) % 2
        for seed in (0, 1):
            probs = np.round(np.clip(0.3 * labels + 0.7 * rng.random(30), 0, 1), 2)
            frames.append(
                pd.DataFrame(
                    {
                        "run_id": f"r{fold}{seed}",
                        "model": "m",
                        "optimizer": "adam",
                        "fold": fold,
                        "seed": seed,
                        "id": [f"{fold}-{i}" for i in range(30)],
                        "site": np.where(np.arange(30) < 10, "A", "B"),
                        "label": labels,
                        "prob_malignant": probs,
                    }
                )
            )
    preds = pd.concat(frames, ignore_index=True)
    boot = resampling.resampling(preds, n_resamples=40)
    got = resampling.resampled_fold_mean(preds, boot, 0.5, ["auc", "accuracy"])
    for r in range(40):
        per_fold = []
        for fold in (1, 2):
            per_seed = []
            for seed in (0, 1):
                unit = preds[(preds["fold"] == fold) & (preds["seed"] == seed)]
                w = boot.columns("m", unit["id"])[r]
                y, p = unit["label"].to_numpy(), unit["prob_malignant"].to_numpy()
                per_seed.append(
                    [
                        roc_auc_score(y, p, sample_weight=w),
                        binary_metrics(np.repeat(y, w), np.repeat(p, w))["accuracy"],
                    ]
                )
            per_fold.append(np.mean(per_seed, axis=0))
        assert [got["auc"][r], got["accuracy"][r]] == pytest.approx(np.mean(per_fold, axis=0))
    # each resample keeps every fold's site and class make-up
    counts = boot.counts["m"]
    ids = boot.ids["m"]
    images = preds.drop_duplicates("id").set_index("id").loc[ids]
    for _, group in images.groupby(["fold", "site", "label"]):
        cols = ids.get_indexer(group.index)
        assert (counts[:, cols].sum(axis=1) == len(cols)).all()
