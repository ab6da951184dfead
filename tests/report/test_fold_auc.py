import math
from dataclasses import astuple

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medbench.metrics import auc
from medbench.report.fold_auc import compare_fold_stratified_auc, fold_stratified_auc
from medbench.report.stats import generalized_test, stratified_counts
from tests.report.simulated import fold_model_shifts, mean_auc


def test_fold_stratified_auc_by_hand():
    # fold 1: malignant 0.9 against benign 0.2 (won) and 0.95 (lost): 1 of 2 pairs
    # fold 2: malignant 0.1 and 0.5 against benign 0.5: lost, tie (1/2): 0.5 of 2 pairs
    labels = [1, 0, 0, 1, 1, 0]
    scores = [0.9, 0.2, 0.95, 0.1, 0.5, 0.5]
    folds = [1, 1, 1, 2, 2, 2]
    assert fold_stratified_auc(labels, scores, folds) == pytest.approx(1.5 / 4)
    # pooling ranks the folds against each other: 0.9 beats 0.2 and 0.5, 0.5 beats 0.2 and ties
    # 0.5, 0.1 beats nothing: 3.5 of 9 pairs
    assert auc(np.array(labels), np.array(scores)) == pytest.approx(3.5 / 9)
    # a single-class fold has no pairs and adds nothing
    more = fold_stratified_auc([*labels, 1, 1], [*scores, 0.0, 0.3], [*folds, 3, 3])
    assert more == pytest.approx(1.5 / 4)
    assert math.isnan(fold_stratified_auc([1, 1], [0.2, 0.3], [1, 1]))


def _folds(rng, k=5, n_pos=20, n_neg=30, shift=1.2):
    labels = np.tile(np.r_[np.ones(n_pos), np.zeros(n_neg)], k).astype(int)
    folds = np.repeat(np.arange(1, k + 1), n_pos + n_neg)
    logits = shift * labels + rng.standard_normal(len(labels))
    return labels, folds, logits


def test_calibration_between_folds_is_not_a_difference():
    """B's logits are A's under a fold-specific monotone map (shift and scale per fold): every
    fold is ordered alike, so the difference is exactly 0 and nothing is tested, although the
    pooled AUC of the two differs widely."""
    rng = np.random.default_rng(4)
    labels, folds, logit_a = _folds(rng)
    shift = np.array([-3.0, 2.5, 0.4, 4.0, -1.0])[folds - 1]
    logit_b = 0.5 * logit_a + shift
    prob_a, prob_b = 1 / (1 + np.exp(-logit_a)), 1 / (1 + np.exp(-logit_b))
    assert abs(auc(labels, prob_b) - auc(labels, prob_a)) > 0.05
    res = compare_fold_stratified_auc(labels, prob_a, prob_b, folds, ratio=0.25)
    assert res.diff == 0.0 and res.auc_a == res.auc_b and res.identical
    assert res.image_var == 0.0 and res.fold_var == 0.0 and res.test.se == 0.0
    assert math.isnan(res.test.p) and math.isnan(res.test.ci_low)


def test_comparison_parts_by_hand():
    rng = np.random.default_rng(8)
    labels, folds, logit_a = _folds(rng, k=4, n_pos=12, n_neg=18)
    logit_b = logit_a + 0.8 * rng.standard_normal(len(labels)) + 0.2 * labels
    ratio, n_resamples = 0.3, 60
    res = compare_fold_stratified_auc(labels, logit_a, logit_b, folds, ratio, n_resamples, seed=2)
    per_fold = np.array(
        [
            [roc_auc_score(labels[folds == f], s[folds == f]) for f in range(1, 5)]
            for s in (logit_a, logit_b)
        ]
    )
    d = per_fold[1] - per_fold[0]
    # equal folds: equal pair weights, so the estimate is the mean of the folds' differences
    assert res.n_folds == 4 and res.diff == pytest.approx(d.mean())
    assert (res.auc_a, res.auc_b) == pytest.approx(tuple(per_fold.mean(axis=1)))
    # image part: the same stratified resamples, each fold's AUC recomputed by scikit-learn
    strata = np.char.add(np.char.add(folds.astype(str), "|"), labels.astype(str))
    counts = stratified_counts(strata, n_resamples, 2)
    boot = []
    for w in counts:
        diffs = []
        for f in range(1, 5):
            m = folds == f
            y = np.repeat(labels[m], w[m])
            diffs.append(
                roc_auc_score(y, np.repeat(logit_b[m], w[m]))
                - roc_auc_score(y, np.repeat(logit_a[m], w[m]))
            )
        boot.append(np.mean(diffs))
    image_var = np.var(boot, ddof=1)
    assert res.image_var == pytest.approx(image_var)
    assert (res.image_ci_low, res.image_ci_high) == pytest.approx(
        tuple(np.percentile(boot, [2.5, 97.5]))
    )
    # folds: the spread of their differences; the part images do not explain is corrected
    fold_var = d.var(ddof=1) / 4
    assert res.fold_var == pytest.approx(fold_var) and res.test.df == 3
    c = 1 + 4 * ratio
    expected = generalized_test(
        d.mean(), fold_var, 3, c, floor=image_var, offset=-(c - 1) * image_var
    )
    assert astuple(res.test) == pytest.approx(astuple(expected))
    assert res.test.se == pytest.approx(
        math.sqrt(c * max(fold_var, image_var) - (c - 1) * image_var)
    )
    assert res.test.ci_low < res.diff < res.test.ci_high and not res.identical


@pytest.mark.e2e
@pytest.mark.parametrize("delta", [0.0, 0.2])
def test_fold_stratified_comparison_covers_and_keeps_its_level(delta):
    """Generating model (tests/report/simulated.py): 5 folds of 100 test images (40 malignant);
    each fold model's malignant scores are shifted by mu = 1.64 plus a fold difficulty
    N(0, 0.3²) both optimizers share and each optimizer's training variation N(0, 0.15²),
    equicorrelated over folds with rho = 1/5; B adds delta. Scores: a latent N(0, 1) per image
    shared by both, plus each model's noise N(0, 0.5²). The truth is the expected AUC difference
    (analytic). 300 data sets under no difference, 200 under delta = 0.2 (AUC +0.028)."""
    k, n_pos, n_neg, mu, tau = 5, 40, 60, 1.64, 0.5
    n_sets = 300 if delta == 0 else 200
    rng = np.random.default_rng(2024)
    shift_a, shift_b = fold_model_shifts(rng, n_sets, k, mu, delta, 0.3, 0.15)
    truth = mean_auc(mu + delta, 0.3**2 + 0.15**2, tau) - mean_auc(mu, 0.3**2 + 0.15**2, tau)
    n = n_pos + n_neg
    labels = np.tile(np.r_[np.ones(n_pos), np.zeros(n_neg)], k).astype(int)
    folds = np.repeat(np.arange(k), n)
    covered, rejected = [], []
    for s in range(n_sets):
        latent = rng.standard_normal(k * n)
        a = np.repeat(shift_a[s], n) * labels + latent + tau * rng.standard_normal(k * n)
        b = np.repeat(shift_b[s], n) * labels + latent + tau * rng.standard_normal(k * n)
        res = compare_fold_stratified_auc(labels, a, b, folds, 1 / (k - 1), n_resamples=200, seed=s)
        covered.append(res.test.ci_low <= truth <= res.test.ci_high)
        rejected.append(res.test.p < 0.05)
    assert 0.92 <= np.mean(covered) <= 0.98
    if delta == 0:
        assert np.mean(rejected) <= 0.07
