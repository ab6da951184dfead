import math

import numpy as np
import pandas as pd
import pytest

from medbench.report.parts import training

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
