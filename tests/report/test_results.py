import numpy as np
import pandas as pd

from medbench.report import results, training


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
    perfect = (np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    mean, std = results.mean_roc([perfect, perfect], grid)
    assert mean[0] == 0 and np.all(mean[1:] == 1) and np.all(std == 0)


def test_reliability_bins_match_the_ece_binning():
    from medbench.metrics import expected_calibration_error

    y = np.array([0, 1, 1, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.55, 0.58, 0.95, 1.0])
    bins = results.reliability(y, p)
    used = bins[bins["n"] > 0]
    ece = (used["n"] * (used["observed_rate"] - used["mean_predicted"]).abs()).sum() / len(y)
    assert ece == expected_calibration_error(y, p)
    assert bins.loc[9, "n"] == 2  # p = 1.0 falls in the last bin


def test_time_to_best_validation_auc_sums_epochs_up_to_the_best():
    units = pd.DataFrame([{"run_id": "r", "model": "m", "optimizer": "adam", "fold": 1, "seed": 0}])
    curves = pd.DataFrame(
        [
            *({"run_id": "r", "metric": "epoch_time_s", "step": s, "value": 2.0} for s in range(4)),
            *(
                {"run_id": "r", "metric": "val_auc", "step": s, "value": v}
                for s, v in enumerate([0.6, 0.8, 0.7, 0.75])
            ),
            *({"run_id": "r", "metric": "train_loss", "step": s, "value": 1.0} for s in range(4)),
        ]
    )
    cost = training.unit_costs(curves, units, pd.DataFrame({"run_id": ["r"]})).iloc[0]
    assert cost["time_to_best_val_auc_s"] == 4.0  # epochs 0 and 1
    assert cost["train_time_s"] == 8.0 and cost["epochs"] == 4  # no train_time_s: sum of epochs
