import math

import pandas as pd

from medbench.report.parts.cost import unit_costs


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
    cost = unit_costs(curves, units, logged).iloc[0]
    assert cost["best_epoch"] == 2 and cost["time_to_best_epoch_s"] == 6.0  # epochs 0, 1 and 2
    assert cost["gradient_evals"] == 40
    assert cost["train_time_s"] == 8.0 and cost["epochs"] == 4  # no train_time_s: sum of epochs
    unknown = unit_costs(curves, units, pd.DataFrame({"run_id": ["r"]})).iloc[0]
    assert math.isnan(unknown["time_to_best_epoch_s"])  # no best_epoch logged: not guessed
