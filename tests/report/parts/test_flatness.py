import numpy as np
import pandas as pd
import pytest

from medbench.report.parts import flatness
from medbench.tracking import FLATNESS_FILE

UNITS = pd.DataFrame(
    [
        {"run_id": r, "model": "m", "optimizer": "adam", "fold": i, "seed": 0}
        for i, r in enumerate("abc")
    ]
)


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
    out = flatness.landscape(artifacts, UNITS)
    assert list(out["alpha"]) == [-1.0, 0.0, 1.0] and set(out["n"]) == {2}
    b_on_grid = np.interp([-1.0, 0.0, 1.0], [-1.0, 1.0], [2.0, 4.0])
    both = np.array([[1.0, 0.5, 3.0], b_on_grid])
    assert out["loss_mean"].to_numpy() == pytest.approx(both.mean(axis=0))
    assert out["loss_std"].to_numpy() == pytest.approx(both.std(axis=0, ddof=1))
