import pandas as pd
import pytest

from medbench.report.parts import fidelity


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
    fid = fidelity.fidelity(pd.DataFrame(rows), units).set_index("optimizer")
    assert list(fid.index) == ["sam", "gcsam"]  # adam logs none
    assert fid.loc["sam", "fidelity_min"] == 1.0 and fid.loc["sam", "n_below_threshold"] == 0
    assert fid.loc["gcsam", "fidelity_min"] == 0.6
    assert fid.loc["gcsam", "fidelity_mean"] == pytest.approx(0.75)
    assert fid.loc["gcsam", "n_below_threshold"] == 2 and fid.loc["gcsam", "n_epochs"] == 3
    assert (fid.loc["gcsam", "norm_ratio_min"], fid.loc["gcsam", "norm_ratio_max"]) == (1.05, 1.65)
