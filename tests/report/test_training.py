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
