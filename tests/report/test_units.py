"""The units of the report: which runs count, the mean ROC over folds, and the summary of
positive quantities."""

import numpy as np
import pandas as pd
import pytest

from medbench.report import units


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
    inv = units.inventory(folds, _preds(["a1", "a2", "a3", "s1"]), ["m"], ["adam", "sam"])
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
    inv = units.inventory(folds, pd.DataFrame(), ["m"], ["adam"])
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
    roc = units.mean_roc(preds, grid)
    # two folds: the two seeds of fold 2 are averaged first
    assert np.array_equal(roc["fpr"], grid) and set(roc["n"]) == {2}
    assert roc["tpr_mean"].iloc[0] == 0 and np.all(roc["tpr_mean"].iloc[1:] == 1)
    assert np.all(roc["tpr_std"] == 0) and np.all(roc["tpr_q25"] == roc["tpr_q75"])


def test_cost_summary_is_median_and_quartiles_over_folds_with_seeds_averaged():
    per_unit = pd.DataFrame(
        {
            "model": "m",
            "optimizer": "adam",
            "fold": [1, 1, 2, 3, 4],
            "seed": [0, 1, 0, 0, 0],
            "train_time_s": [10.0, 30.0, 1.0, 2.0, 100.0],
        }
    )
    r = units.positive_summary(per_unit, ["train_time_s"]).iloc[0]
    folds = np.array([20.0, 1.0, 2.0, 100.0])  # fold 1: mean of its two seeds
    assert r["n_units"] == 5 and r["n_folds"] == 4 and r["train_time_s_n"] == 4
    q25, median, q75 = np.quantile(folds, [0.25, 0.5, 0.75])
    assert (r["train_time_s_median"], r["train_time_s_q25"], r["train_time_s_q75"]) == (
        pytest.approx((median, q25, q75))
    )
    assert r["train_time_s_mean"] == pytest.approx(folds.mean())
    assert r["train_time_s_q25"] > 0  # mean - std would be far below zero here
    assert r["train_time_s_mean"] - r["train_time_s_std"] < 0
