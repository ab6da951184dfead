import numpy as np
import pandas as pd

from medbench.report import results


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
    preds = pd.concat([perfect.assign(model="m", optimizer="adam", run_id=r) for r in ("r1", "r2")])
    roc = results.mean_roc(preds, grid)
    assert np.array_equal(roc["fpr"], grid) and set(roc["n"]) == {2}
    assert roc["tpr_mean"].iloc[0] == 0 and np.all(roc["tpr_mean"].iloc[1:] == 1)
    assert np.all(roc["tpr_std"] == 0)


def test_reliability_bins_match_the_ece_binning():
    from medbench.metrics import expected_calibration_error

    y = np.array([0, 1, 1, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.55, 0.58, 0.95, 1.0])
    bins = results.reliability(y, p)
    used = bins[bins["n"] > 0]
    ece = (used["n"] * (used["observed_rate"] - used["mean_predicted"]).abs()).sum() / len(y)
    assert ece == expected_calibration_error(y, p)
    assert bins.loc[9, "n"] == 2  # p = 1.0 falls in the last bin
