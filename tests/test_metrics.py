import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    recall_score,
    roc_auc_score,
)

from medbench.metrics import binary_metrics, expected_calibration_error


def test_against_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    probs = np.clip(labels * 0.3 + rng.random(200) * 0.7, 0, 1)
    m = binary_metrics(labels, probs)
    pred = (probs >= 0.5).astype(int)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, probs))
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, pred))
    assert m["sensitivity"] == pytest.approx(recall_score(labels, pred))
    assert m["specificity"] == pytest.approx(recall_score(1 - labels, 1 - pred))
    assert m["f1"] == pytest.approx(f1_score(labels, pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, pred))
    assert m["brier"] == pytest.approx(brier_score_loss(labels, probs))


def test_single_class_gives_undefined_auc_not_a_crash():
    m = binary_metrics(np.array([1, 1, 1]), np.array([0.9, 0.2, 0.7]))
    assert math.isnan(m["auc"]) and math.isnan(m["specificity"])
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_ece_hand_computed():
    labels = np.array([0, 1, 1, 1])
    probs = np.array([0.05, 0.15, 0.95, 0.85])
    # bins: [0.0,0.1): {0.05 -> 0}: |0-0.05|; [0.1,0.2): {0.15 -> 1}: |1-0.15|; [0.8,0.9): |1-0.85|; [0.9,1): |1-0.95|
    expected = (0.05 + 0.85 + 0.15 + 0.05) / 4
    assert expected_calibration_error(labels, probs) == pytest.approx(expected)
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == pytest.approx(0.0)
