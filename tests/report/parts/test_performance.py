"""The performance part's headline intervals: a t interval over folds with Nadeau and Bengio's
ratio, never "[x, x]" (issue 22 #4)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as sps

from medbench.metrics import PREDICTS_ONE_CLASS, SAME_ON_EVERY_FOLD
from medbench.report.analysis import analyse
from medbench.report.parts.performance import headline_cell, image_noise_cell
from tests.report.generated import N_IMAGES, make_record


@pytest.fixture(scope="module")
def performance():
    record = make_record()
    preds = record.predictions
    sam = preds["optimizer"] == "sam"  # m/sam calls every image benign: one predicted class
    preds = preds.assign(
        prob_malignant=np.where(sam, 0.4 * preds["prob_malignant"], preds["prob_malignant"])
    )
    a = analyse(dataclasses.replace(record, predictions=preds))
    return a.inputs, a.result("performance").performance.set_index(["model", "optimizer"])


def test_the_headline_interval_is_the_corrected_t_interval_over_folds(performance):
    inputs, perf = performance
    row = perf.loc[("m", "adam")]
    folds = inputs.fold_means.query("model == 'm' and optimizer == 'adam'")["accuracy"]
    # these runs logged no n_train: the 2 other folds' 48 test images stand in
    ratio = N_IMAGES / (2 * N_IMAGES)
    assert row["test_train_ratio"] == pytest.approx(ratio)
    half = sps.t.ppf(0.975, 2) * folds.std(ddof=1) * math.sqrt(1 / 3 + ratio)
    low, high = max(folds.mean() - half, 0.0), min(folds.mean() + half, 1.0)
    assert (row["accuracy_fold_ci_low"], row["accuracy_fold_ci_high"]) == pytest.approx((low, high))
    assert row["accuracy_fold_ci_degenerate"] == ""
    # wider than the bootstrap over test images, which holds the fold models fixed
    assert high - low > row["accuracy_ci_high"] - row["accuracy_ci_low"]
    assert headline_cell(row, "accuracy").endswith(f"[{low:.3f}, {high:.3f}]")


def test_a_model_that_predicts_one_class_has_no_interval_for_its_calls(performance):
    _, perf = performance
    row = perf.loc[("m", "sam")]
    assert bool(row["one_class"])
    for metric in ("accuracy", "sensitivity", "specificity", "f1", "balanced_accuracy"):
        assert row[f"{metric}_fold_ci_degenerate"] == PREDICTS_ONE_CLASS
        assert np.isnan(row[f"{metric}_fold_ci_low"])
        assert headline_cell(row, metric).endswith(f"(no interval: {PREDICTS_ONE_CLASS})")
        assert image_noise_cell(row, metric) == f"n/a ({PREDICTS_ONE_CLASS})"
    assert row["auc_fold_ci_degenerate"] == ""  # its scores still rank the images
    assert "[" in headline_cell(row, "auc")


def test_equal_values_and_bounds_never_print_as_a_zero_width_interval():
    row = {
        "auc_mean": 0.8,
        "auc_std": 0.0,
        "auc_fold_ci_low": math.nan,
        "auc_fold_ci_high": math.nan,
        "auc_fold_ci_degenerate": SAME_ON_EVERY_FOLD,
        "auc_ci_low": 0.8,
        "auc_ci_high": 0.8,
    }
    assert headline_cell(row, "auc") == f"0.800 ± 0.000 (no interval: {SAME_ON_EVERY_FOLD})"
    assert image_noise_cell(row, "auc") == "no spread over the resamples"
