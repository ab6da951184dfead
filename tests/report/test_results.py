import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from medbench.metrics import binary_metrics
from medbench.report import results, stats, vocab


def _runs(rows):
    cols = ["run_id", "model", "optimizer", "fold", "seed", "status", "failure", "end_time"]
    return pd.DataFrame(rows, columns=cols)


def _preds(run_ids):
    return pd.DataFrame(
        [
            {"run_id": r, "id": f"{r}-{i}", "label": i % 2, "prob_malignant": 0.5}
            for r in run_ids
            for i in range(2)
        ]
    )


def test_inventory_lists_failures_missing_jobs_and_ignores_superseded_attempts():
    folds = _runs(
        [
            ["a1", "m", "adam", 1, 0, "FINISHED", None, 1],
            ["a2", "m", "adam", 2, 0, "FINISHED", None, 2],
            ["a3", "m", "adam", 3, 0, "FINISHED", None, 3],
            ["s1x", "m", "sam", 1, 0, "FAILED", "CUDA out of memory", 4],
            ["s1", "m", "sam", 1, 0, "FINISHED", None, 5],  # a rerun that finished
            ["s2", "m", "sam", 2, 0, "KILLED", "interrupted by the user", 6],
            # sam fold 3 never ran
        ]
    )
    inv = results.inventory(folds, _preds(["a1", "a2", "a3", "s1"]), ["m"], ["adam", "sam"])
    assert list(inv.units["run_id"]) == ["a1", "a2", "a3", "s1"]
    probs = inv.problems.set_index("fold")
    assert list(probs.index) == [2, 3]
    assert (
        probs.loc[2, "status"] == "KILLED" and probs.loc[2, "reason"] == "interrupted by the user"
    )
    assert probs.loc[3, "status"] == "MISSING"
    st = inv.status.set_index("optimizer")
    assert bool(st.loc["adam", "complete"]) and not st.loc["sam", "complete"]
    assert st.loc["sam", "note"] == "incomplete: 1 of 3 folds"


def test_finished_run_without_predictions_is_a_problem():
    folds = _runs([["a1", "m", "adam", 1, 0, "FINISHED", None, 1]])
    inv = results.inventory(folds, pd.DataFrame(), ["m"], ["adam"])
    assert inv.units.empty
    assert "predictions.csv" in inv.problems.loc[0, "reason"]


def test_mean_roc_interpolates_on_the_grid():
    grid = np.linspace(0, 1, 11)
    perfect = pd.DataFrame({"label": [0, 0, 1, 1], "prob_malignant": [0.1, 0.2, 0.8, 0.9]})
    preds = pd.concat(
        [
            perfect.assign(model="m", optimizer="adam", run_id=r, fold=f)
            for r, f in (("r1", 1), ("r2", 2), ("r3", 2))
        ]
    )
    roc = results.mean_roc(preds, grid)
    # two folds: the two seeds of fold 2 are averaged first
    assert np.array_equal(roc["fpr"], grid) and set(roc["n"]) == {2}
    assert roc["tpr_mean"].iloc[0] == 0 and np.all(roc["tpr_mean"].iloc[1:] == 1)
    assert np.all(roc["tpr_std"] == 0) and np.all(roc["tpr_q25"] == roc["tpr_q75"])


def test_reliability_bins_match_the_ece_binning():
    from medbench.metrics import expected_calibration_error

    y = np.array([0, 1, 1, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.55, 0.58, 0.95, 1.0])
    bins = results.reliability(y, p)
    used = bins[bins["n"] > 0]
    ece = (used["n"] * (used["observed_rate"] - used["mean_predicted"]).abs()).sum() / len(y)
    assert ece == expected_calibration_error(y, p)
    assert bins.loc[9, "n"] == 2  # p = 1.0 falls in the last bin


# -- seeds, folds and the comparisons ---------------------------------------------------------------

#: B − A per fold: a fold-specific effect; the three seeds of a fold agree closely.
FOLD_EFFECT = {1: 0.030, 2: -0.005, 3: 0.025, 4: 0.045, 5: 0.0}


def _seeded_units(models=("m",), optimizers=("adam", "sam")):
    """5 folds × 3 seeds per (model, optimizer): per-unit AUC and accuracy with the fold effect."""
    rng = np.random.default_rng(11)
    rows = []
    for model in models:
        for fold, effect in FOLD_EFFECT.items():
            base = 0.80 + 0.02 * rng.standard_normal()
            for seed in range(3):
                for k, opt in enumerate(optimizers):
                    value = base + k * effect + 0.002 * rng.standard_normal()
                    rows.append(
                        {
                            "run_id": f"{model}-{opt}-{fold}-{seed}",
                            "model": model,
                            "optimizer": opt,
                            "fold": fold,
                            "seed": seed,
                            "n_train": 384,
                            "n_val": 96,
                            "n_test": 120,
                            "auc": value,
                            "accuracy": value - 0.05,
                        }
                    )
    return pd.DataFrame(rows)


def test_seeds_are_averaged_within_a_fold_before_the_tests():
    units = _seeded_units()
    diffs = results.fold_differences(units, ["m"], ["adam", "sam"])
    tests = results.paired(units, diffs, ["m"], ["adam", "sam"], rope=0.01)
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
    units = _seeded_units(models=("m", "n"), optimizers=("adam", "sam", "gcsam"))
    opts = ["adam", "sam", "gcsam"]
    diffs = results.fold_differences(units, ["m", "n"], opts)
    tests = results.paired(units, diffs, ["m", "n"], opts, rope=0.01)
    for metric in ("auc", "accuracy"):
        family = tests[tests["metric"] == metric]
        assert len(family) == 6 and set(family["family_size"]) == {6}
        assert family["p_holm"].to_numpy() == pytest.approx(
            stats.holm(family["corrected_t_p"].to_numpy())
        )
    assert (tests["p_holm"] >= tests["corrected_t_p"]).all()


def test_without_logged_n_train_the_images_outside_the_test_fold_stand_in():
    units = _seeded_units().assign(n_train=math.nan)
    diffs = results.fold_differences(units, ["m"], ["adam", "sam"])
    # 5 folds of 120 images: 480 outside each test fold
    assert diffs["test_train_ratio"].to_numpy() == pytest.approx(np.full(len(diffs), 120 / 480))


def test_verdict_turns_a_comparison_round_when_the_baseline_is_b():
    units = _seeded_units(optimizers=("sam", "adam"))  # adam is B in (sam, adam)
    diffs = results.fold_differences(units, ["m"], ["sam", "adam"])
    tests = results.paired(units, diffs, ["m"], ["sam", "adam"], rope=0.01)
    perf = pd.DataFrame(
        [
            {
                "model": "m",
                "optimizer": o,
                "auc_mean": units.query("optimizer == @o")["auc"].mean(),
                "auc_n": 5,
            }
            for o in ("sam", "adam")
        ]
    )
    verdict = results.against_baseline(perf, tests, ["sam", "adam"]).set_index("optimizer")
    t = tests[tests["metric"] == "auc"].iloc[0]
    assert verdict.loc["sam", "baseline"] == "adam"
    assert verdict.loc["sam", "diff"] == pytest.approx(-t["mean_diff"])
    assert verdict.loc["sam", "ci_low"] == pytest.approx(-t["corrected_ci_high"])
    assert verdict.loc["sam", "p_better"] == pytest.approx(t["p_a_better"])
    assert verdict.loc["sam", "p_worse"] == pytest.approx(t["p_b_better"])
    assert math.isnan(verdict.loc["adam", "diff"])
    assert verdict["best"].sum() == 1


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
    boot = results.resampling(preds, n_resamples=40)
    got = results.resampled_fold_mean(preds, boot, 0.5, ["auc", "accuracy"])
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


def test_in_order_puts_the_configs_optimizers_first_in_every_column():
    frame = pd.DataFrame(
        {
            "model": ["m", "m", "m", "n"],
            "optimizer_a": ["adam", "sam", "adam", "adam"],
            "optimizer_b": ["sam", "gcsam", "gcsam", "sam"],
            "x": [1, 2, 3, 4],
        }
    )
    out = vocab.in_order(frame, ["n", "m"], ["sam", "adam", "gcsam"])
    assert list(out["x"]) == [4, 2, 1, 3]
