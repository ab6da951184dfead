import math

import numpy as np
import pytest
from scipy import stats as sps

from medbench.report import stats
from medbench.report.parts import comparisons
from tests.report.parts.seeded_units import seeded_units


def test_seeds_are_averaged_within_a_fold_before_the_tests():
    units = seeded_units()
    diffs = comparisons.fold_differences(units, ["m"], ["adam", "sam"])
    tests = comparisons.paired(units, diffs, ["m"], ["adam", "sam"], rope=0.01)
    auc = tests[tests["metric"] == "auc"].iloc[0]
    wide = units.pivot_table(index=["fold", "seed"], columns="optimizer", values="auc")
    per_unit = sps.ttest_rel(wide["sam"], wide["adam"])  # 15 "pairs": seeds as if independent
    per_fold = wide.groupby(level="fold").mean()
    d = (per_fold["sam"] - per_fold["adam"]).to_numpy()
    fold_level = sps.ttest_rel(per_fold["sam"], per_fold["adam"])
    assert per_unit.pvalue < 0.01 < 0.05 < fold_level.pvalue  # what pairing seeds would claim
    assert auc["n_folds"] == 5 and auc["n_pairs"] == 15
    assert auc["t_p"] == pytest.approx(fold_level.pvalue)
    assert auc["mean_diff"] == pytest.approx(d.mean())
    ratio = 120 / 384
    nb = stats.corrected_resampled_ttest(d, ratio)
    assert auc["test_train_ratio"] == pytest.approx(ratio)
    assert auc["corrected_t_p"] == pytest.approx(nb.p) and auc["corrected_t_p"] > fold_level.pvalue
    assert (auc["corrected_ci_low"], auc["corrected_ci_high"]) == pytest.approx(
        (nb.ci_low, nb.ci_high)
    )
    assert list(diffs.query("metric == 'auc'")["diff"]) == pytest.approx(list(d))
    assert set(diffs["n_seeds"]) == {3}


def test_holm_family_is_every_comparison_of_one_metric_across_models():
    units = seeded_units(models=("m", "n"), optimizers=("adam", "sam", "gcsam"))
    opts = ["adam", "sam", "gcsam"]
    diffs = comparisons.fold_differences(units, ["m", "n"], opts)
    tests = comparisons.paired(units, diffs, ["m", "n"], opts, rope=0.01)
    for metric in ("auc", "accuracy"):
        family = tests[tests["metric"] == metric]
        assert len(family) == 6 and set(family["family_size"]) == {6}
        assert family["p_holm"].to_numpy() == pytest.approx(
            stats.holm(family["corrected_t_p"].to_numpy())
        )
    assert (tests["p_holm"] >= tests["corrected_t_p"]).all()


def test_without_logged_n_train_the_images_outside_the_test_fold_stand_in():
    units = seeded_units().assign(n_train=math.nan)
    diffs = comparisons.fold_differences(units, ["m"], ["adam", "sam"])
    # 5 folds of 120 images: 480 outside each test fold
    assert diffs["test_train_ratio"].to_numpy() == pytest.approx(np.full(len(diffs), 120 / 480))
