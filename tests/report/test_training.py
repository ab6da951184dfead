import math

import numpy as np
import pandas as pd
import pytest

from medbench.report import training
from medbench.tracking import FLATNESS_FILE

UNITS = pd.DataFrame(
    [
        {"run_id": r, "model": "m", "optimizer": "adam", "fold": i, "seed": 0}
        for i, r in enumerate("abc")
    ]
)


def test_learning_curves_summarise_each_epoch_over_the_units_that_reached_it():
    curves = pd.DataFrame(
        [
            *(
                {"run_id": "a", "metric": "val_auc", "step": s, "value": v}
                for s, v in enumerate([0.6, 0.7, 0.8])
            ),
            *(
                {"run_id": "b", "metric": "val_auc", "step": s, "value": v}
                for s, v in enumerate([0.5, 0.9])
            ),
            *(
                {"run_id": "c", "metric": "val_auc", "step": s, "value": v}
                for s, v in enumerate([0.7])
            ),
        ]
    )
    out = training.learning_curves(curves, UNITS).set_index("step")
    assert list(out["n"]) == [3, 2, 1]
    assert out.loc[0, "mean"] == pytest.approx(0.6) and out.loc[0, "std"] == pytest.approx(0.1)
    assert out.loc[1, "std"] == pytest.approx(np.std([0.7, 0.9], ddof=1))
    assert out.loc[2, "mean"] == 0.8 and math.isnan(out.loc[2, "std"])  # one unit: no spread


def test_landscape_interpolates_other_grids_onto_the_first():
    artifacts = {
        "a": {
            FLATNESS_FILE: {
                "landscape_alphas": [1.0, -1.0, 0.0],
                "landscape_losses": [3.0, 1.0, 0.5],
            }
        },
        "b": {FLATNESS_FILE: {"landscape_alphas": [-1.0, 1.0], "landscape_losses": [2.0, 4.0]}},
        "c": {FLATNESS_FILE: {"landscape_alphas": [0.0], "landscape_losses": []}},  # malformed
    }
    out = training.landscape(artifacts, UNITS)
    assert list(out["alpha"]) == [-1.0, 0.0, 1.0] and set(out["n"]) == {2}
    b_on_grid = np.interp([-1.0, 0.0, 1.0], [-1.0, 1.0], [2.0, 4.0])
    both = np.array([[1.0, 0.5, 3.0], b_on_grid])
    assert out["loss_mean"].to_numpy() == pytest.approx(both.mean(axis=0))
    assert out["loss_std"].to_numpy() == pytest.approx(both.std(axis=0, ddof=1))


def _timed_run(val_auc):
    return pd.DataFrame(
        [
            *({"run_id": "r", "metric": "epoch_time_s", "step": s, "value": 2.0} for s in range(4)),
            *(
                {"run_id": "r", "metric": "val_auc", "step": s, "value": v}
                for s, v in enumerate(val_auc)
            ),
            *({"run_id": "r", "metric": "train_loss", "step": s, "value": 1.0} for s in range(4)),
        ]
    )


def test_time_to_best_sums_the_epochs_up_to_the_one_the_run_selected():
    units = pd.DataFrame([{"run_id": "r", "model": "m", "optimizer": "adam", "fold": 1, "seed": 0}])
    # the run selected epoch 2 (e.g. on val_loss), although val_auc peaked at epoch 1
    curves = _timed_run([0.6, 0.8, 0.7, 0.75])
    logged = pd.DataFrame({"run_id": ["r"], "best_epoch": [2.0], "gradient_evals": [40.0]})
    cost = training.unit_costs(curves, units, logged).iloc[0]
    assert cost["best_epoch"] == 2 and cost["time_to_best_epoch_s"] == 6.0  # epochs 0, 1 and 2
    assert cost["gradient_evals"] == 40
    assert cost["train_time_s"] == 8.0 and cost["epochs"] == 4  # no train_time_s: sum of epochs
    unknown = training.unit_costs(curves, units, pd.DataFrame({"run_id": ["r"]})).iloc[0]
    assert math.isnan(unknown["time_to_best_epoch_s"])  # no best_epoch logged: not guessed


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
    r = training.summarise(per_unit, ["train_time_s"]).iloc[0]
    folds = np.array([20.0, 1.0, 2.0, 100.0])  # fold 1: mean of its two seeds
    assert r["n_units"] == 5 and r["n_folds"] == 4 and r["train_time_s_n"] == 4
    q25, median, q75 = np.quantile(folds, [0.25, 0.5, 0.75])
    assert (r["train_time_s_median"], r["train_time_s_q25"], r["train_time_s_q75"]) == (
        pytest.approx((median, q25, q75))
    )
    assert r["train_time_s_mean"] == pytest.approx(folds.mean())
    assert r["train_time_s_q25"] > 0  # mean - std would be far below zero here
    assert r["train_time_s_mean"] - r["train_time_s_std"] < 0


def test_fidelity_table_counts_epochs_below_the_threshold():
    units = pd.DataFrame(
        [
            {"run_id": r, "model": "m", "optimizer": opt, "fold": 1, "seed": 0}
            for r, opt in (("a", "adam"), ("s", "sam"), ("g", "gcsam"))
        ]
    )
    rows = [
        *(
            {"run_id": "s", "metric": "perturbation_fidelity", "step": e, "value": 1.0}
            for e in range(3)
        ),
        *(
            {"run_id": "s", "metric": "perturbation_norm_ratio", "step": e, "value": 1.0}
            for e in range(3)
        ),
        *(
            {"run_id": "g", "metric": "perturbation_fidelity", "step": e, "value": v}
            for e, v in enumerate([0.6, 0.7, 0.95])
        ),
        *(
            {"run_id": "g", "metric": "perturbation_norm_ratio", "step": e, "value": v}
            for e, v in enumerate([1.65, 1.4, 1.05])
        ),
        {"run_id": "a", "metric": "train_loss", "step": 0, "value": 1.0},
    ]
    fid = training.fidelity(pd.DataFrame(rows), units).set_index("optimizer")
    assert list(fid.index) == ["sam", "gcsam"]  # adam logs none
    assert fid.loc["sam", "fidelity_min"] == 1.0 and fid.loc["sam", "n_below_threshold"] == 0
    assert fid.loc["gcsam", "fidelity_min"] == 0.6
    assert fid.loc["gcsam", "fidelity_mean"] == pytest.approx(0.75)
    assert fid.loc["gcsam", "n_below_threshold"] == 2 and fid.loc["gcsam", "n_epochs"] == 3
    assert (fid.loc["gcsam", "norm_ratio_min"], fid.loc["gcsam", "norm_ratio_max"]) == (1.05, 1.65)
