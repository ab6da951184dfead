import math
from dataclasses import astuple

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medbench.report.external_test import compare_external
from medbench.report.stats import corrected_resampled_ttest, generalized_test, stratified_counts
from tests.report.simulated import fold_model_shifts, mean_auc


def _models(rng, n_pos, n_neg, shifts, noise=0.5):
    """Scores of fold models with these malignant shifts on one external set (a latent per
    image that every model shares, plus each model's own noise)."""
    labels = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(int)
    latent = rng.standard_normal(len(labels))
    own = noise * rng.standard_normal((len(shifts), len(labels)))
    return labels, np.asarray(shifts)[:, None] * labels + latent + own


def test_external_comparison_by_hand():
    rng = np.random.default_rng(3)
    labels, a = _models(rng, 15, 25, [1.2, 1.5, 1.0, 1.4])
    _, b = _models(rng, 15, 25, [1.4, 1.5, 1.3, 1.6])
    ratio, n_resamples = 0.25, 80
    res = compare_external(labels, a, b, ratio, n_resamples, seed=1)
    d = np.array([roc_auc_score(labels, b[k]) - roc_auc_score(labels, a[k]) for k in range(4)])
    assert res.n_folds == 4 and res.n_images == 40 and res.n_malignant == 15
    assert res.fold_diffs == pytest.approx(d) and res.diff == pytest.approx(d.mean())
    assert res.fold_var == pytest.approx(d.var(ddof=1))
    # the bootstrap: every fold model of both optimizers on the same resamples of the images
    counts = stratified_counts(labels.astype(str), n_resamples, 1)
    boot = np.array(
        [
            [
                roc_auc_score(np.repeat(labels, w), np.repeat(b[k], w))
                - roc_auc_score(np.repeat(labels, w), np.repeat(a[k], w))
                for k in range(4)
            ]
            for w in counts
        ]
    )
    assert res.image_var == pytest.approx(boot.mean(axis=1).var(ddof=1))
    cov = np.cov(boot, rowvar=False)
    own = max(0.0, np.diag(cov).mean() - cov[~np.eye(4, dtype=bool)].mean())
    assert res.own_image_var == pytest.approx(own)
    scale = 1 / 4 + ratio
    expected = generalized_test(
        d.mean(), d.var(ddof=1), 3, scale, floor=own, offset=res.image_var - scale * own
    )
    assert astuple(res.test) == pytest.approx(astuple(expected))


def test_p_does_not_grow_with_the_external_set():
    """The same 25 images (10 malignant) repeated 4, 75 and 200 times: 100, 1,875 and 5,000
    images whose fold models have exactly the same AUCs, hence the same fold differences. The
    old test (ratio n_external / n_train) loses significance as the set grows; this one gains."""
    rng = np.random.default_rng(0)
    labels, a = _models(rng, 10, 15, [1.0, 1.3, 0.9, 1.2, 1.1])
    _, b = _models(rng, 10, 15, [1.5, 1.6, 1.3, 1.8, 1.4])
    results, old = [], []
    for times in (4, 75, 200):
        res = compare_external(
            np.tile(labels, times), np.tile(a, times), np.tile(b, times), 0.25, n_resamples=400
        )
        results.append(res)
        old.append(corrected_resampled_ttest(res.fold_diffs, len(labels) * times / 1500).p)
    assert results[0].n_images == 100 and results[1].n_images == 1875
    assert results[2].n_images == 5000
    for res in results[1:]:
        assert res.fold_diffs == pytest.approx(results[0].fold_diffs, abs=1e-12)
    p = [res.test.p for res in results]
    assert p[0] > p[1] > p[2] and old[0] < old[1] < old[2]
    # the images' part shrinks as 1/n; the folds' part stays
    image = [res.image_var for res in results]
    assert image[0] / image[2] == pytest.approx(50, rel=0.2)


def test_single_model_or_single_class_has_no_test():
    labels = np.array([1, 1, 0, 0])
    one = compare_external(labels, [[0.9, 0.8, 0.1, 0.2]], [[0.9, 0.7, 0.3, 0.2]], 0.25, 50)
    assert one.n_folds == 1 and math.isnan(one.test.p)
    same = compare_external(np.ones(4), np.zeros((3, 4)), np.zeros((3, 4)), 0.25, 50)
    assert math.isnan(same.diff) and math.isnan(same.test.p)
    with pytest.raises(ValueError, match="fold models, images"):
        compare_external(labels, np.zeros((2, 4)), np.zeros((3, 4)), 0.25)


@pytest.mark.e2e
@pytest.mark.parametrize("delta", [0.0, 0.2])
def test_external_comparison_covers_and_keeps_its_level(delta):
    """Generating model (tests/report/simulated.py): 5 fold models per optimizer tested on one
    external set of 200 images (80 malignant); each fold model's malignant scores are shifted by
    mu = 1.64 plus a training-set effect N(0, 0.3²) both optimizers share at that fold and each
    optimizer's training variation N(0, 0.15²), equicorrelated over folds with rho = 1/5; B adds
    delta. Scores: a latent N(0, 1) per image shared by every model, plus each model's own noise
    N(0, 0.5²). The truth is the expected AUC difference over training sets and images
    (analytic). 300 external sets under no difference and 300 under delta = 0.2 (AUC +0.028)."""
    k, n_pos, n_neg, mu, tau = 5, 80, 120, 1.64, 0.5
    n_sets = 300
    rng = np.random.default_rng(77)
    shift_a, shift_b = fold_model_shifts(rng, n_sets, k, mu, delta, 0.3, 0.15)
    truth = mean_auc(mu + delta, 0.3**2 + 0.15**2, tau) - mean_auc(mu, 0.3**2 + 0.15**2, tau)
    labels = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(int)
    covered, rejected = [], []
    for s in range(n_sets):
        latent = rng.standard_normal(len(labels))
        a = shift_a[s][:, None] * labels + latent + tau * rng.standard_normal((k, len(labels)))
        b = shift_b[s][:, None] * labels + latent + tau * rng.standard_normal((k, len(labels)))
        res = compare_external(labels, a, b, 1 / (k - 1), n_resamples=200, seed=s)
        covered.append(res.test.ci_low <= truth <= res.test.ci_high)
        rejected.append(res.test.p < 0.05)
    assert 0.92 <= np.mean(covered) <= 0.98
    if delta == 0:
        assert np.mean(rejected) <= 0.07
