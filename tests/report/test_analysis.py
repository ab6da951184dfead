"""The tables the figures draw, computed by ``analyse`` from a small generated record
(``tests/report/generated.py``) and checked against scikit-learn, NumPy and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, recall_score, roc_curve

from medbench.metrics import expected_calibration_error
from tests.report.generated import N_IMAGES


def _unit_preds(record, model, opt):
    p = record.predictions
    return [g for _, g in p[(p["model"] == model) & (p["optimizer"] == opt)].groupby("run_id")]


def _pooled(record, model, opt):
    p = record.predictions
    return p[(p["model"] == model) & (p["optimizer"] == opt)]


def test_mean_roc_is_the_mean_of_the_interpolated_fold_curves(generated, analysis):
    grid = np.linspace(0, 1, 201)
    for model, opt in (("m", "adam"), ("m", "sam"), ("n", "adam")):
        curves = []
        for g in _unit_preds(generated, model, opt):
            if g["label"].nunique() < 2:
                continue
            fpr, tpr, _ = roc_curve(g["label"], g["prob_malignant"])
            curves.append(np.interp(grid, fpr, tpr))
            curves[-1][0] = 0.0
        curves = np.array(curves)
        got = analysis.result("performance").roc[
            (analysis.result("performance").roc["model"] == model)
            & (analysis.result("performance").roc["optimizer"] == opt)
        ]
        assert np.array_equal(got["fpr"], grid)
        assert got["tpr_mean"].to_numpy() == pytest.approx(curves.mean(axis=0), abs=1e-12)
        assert set(got["n"]) == {len(curves)}
        if len(curves) > 1:
            std = curves.std(axis=0, ddof=1)
            assert got["tpr_std"].to_numpy() == pytest.approx(std, abs=1e-12)
        else:  # one curve: no spread to show
            assert got["tpr_std"].isna().all()
    # adam fold 2 of "m" holds one class: two of its three folds have a curve
    assert set(
        analysis.result("performance").roc.query("model == 'm' and optimizer == 'adam'")["n"]
    ) == {2}


def test_roc_legend_numbers_are_the_performance_table(analysis):
    r = (
        analysis.result("performance")
        .performance.set_index(["model", "optimizer"])
        .loc[("m", "adam")]
    )
    per = analysis.inputs.per_unit.query("model == 'm' and optimizer == 'adam'")["auc"].dropna()
    assert r["auc_n"] == 2 and r["auc_mean"] == pytest.approx(per.mean())


def test_reliability_bins_pool_the_folds_and_give_the_ece(generated, analysis):
    for model, opt in (("m", "adam"), ("m", "sam")):
        pooled = _pooled(generated, model, opt)
        y, p = pooled["label"].to_numpy(), pooled["prob_malignant"].to_numpy()
        bins = analysis.result("calibration").reliability.query(
            "model == @model and optimizer == @opt"
        )
        assert list(bins["bin"]) == list(range(10)) and bins["n"].sum() == len(p)
        idx = np.minimum((p * 10).astype(int), 9)
        for b in range(10):
            row = bins.iloc[b]
            assert row["n"] == (idx == b).sum()
            if row["n"]:
                assert row["mean_predicted"] == pytest.approx(p[idx == b].mean())
                assert row["observed_rate"] == pytest.approx(y[idx == b].mean())
        used = bins[bins["n"] > 0]
        ece = (used["n"] * (used["observed_rate"] - used["mean_predicted"]).abs()).sum() / len(p)
        assert ece == pytest.approx(expected_calibration_error(y, p))


def test_paired_folds_table_is_the_per_fold_auc_wide(analysis):
    wide = analysis.result("comparisons").paired_folds
    m = wide[wide["model"] == "m"].set_index("fold")
    assert list(m.index) == [1, 2, 3] and list(m["label"]) == ["f1", "f2", "f3"]
    per = analysis.inputs.per_unit.set_index(["model", "optimizer", "fold"])["auc"]
    assert m.loc[1, "adam"] == per[("m", "adam", 1)] and m.loc[1, "sam"] == per[("m", "sam", 1)]
    assert math.isnan(m.loc[2, "adam"]) and m.loc[2, "sam"] == per[("m", "sam", 2)]  # one class
    assert m.loc[3, "adam"] == per[("m", "adam", 3)] and math.isnan(m.loc[3, "sam"])  # failed
    n = wide[wide["model"] == "n"]
    assert len(n) == 1 and n["sam"].isna().all()  # "n" never ran sam


def test_confusion_shares_are_sklearn_normalised_per_true_class(generated, analysis):
    for model, opt in (("m", "adam"), ("m", "sam"), ("n", "adam")):
        pooled = _pooled(generated, model, opt)
        calls = (pooled["prob_malignant"] >= analysis.inputs.threshold).astype(int)
        counts = confusion_matrix(pooled["label"], calls, labels=[0, 1])
        shares = confusion_matrix(pooled["label"], calls, labels=[0, 1], normalize="true")
        r = analysis.result("confusion").shares.set_index(["model", "optimizer"]).loc[(model, opt)]
        assert [[r["tn"], r["fp"]], [r["fn"], r["tp"]]] == counts.tolist()
        got = [[r["tn_share"], r["fp_share"]], [r["fn_share"], r["tp_share"]]]
        assert np.array(got) == pytest.approx(shares)


def test_reader_points_per_model_use_that_models_test_images(generated, analysis):
    for model in ("m", "n"):
        images = generated.predictions[generated.predictions["model"] == model].drop_duplicates(
            "id"
        )
        y = images["label"]
        r = (
            analysis.result("performance")
            .readers_by_model.query("model == @model")
            .set_index("reader")
        )
        calls = images["birads_reader1"].isin(["4a"]).astype(int)
        assert r.loc["birads_reader1", "n_used"] == len(images)
        assert r.loc["birads_reader1", "sensitivity"] == pytest.approx(recall_score(y, calls))
        assert r.loc["birads_reader1", "specificity"] == pytest.approx(
            recall_score(1 - y, 1 - calls)
        )
    assert (
        analysis.result("performance").readers_by_model.query("model == 'n'")["n_used"].iloc[0]
        == N_IMAGES
    )


def test_flatness_summary_gives_the_mean_line_of_the_eigenvalues(analysis):
    r = analysis.result("flatness").summary.set_index(["model", "optimizer"]).loc[("m", "sam")]
    values = analysis.result("flatness").per_unit.query("model == 'm' and optimizer == 'sam'")
    assert r["hessian_top_eigenvalue_mean"] == pytest.approx(
        values["hessian_top_eigenvalue"].mean()
    )
