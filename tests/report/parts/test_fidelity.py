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


def test_the_table_keeps_its_columns_when_every_arm_was_faithful():
    """fp32: 1.000 in every row is the finding, shown in columns rather than in the caption."""
    from medbench.report import document as d
    from medbench.report.part import Writer

    fid = pd.DataFrame(
        [
            {
                "model": "smallcnn",
                "optimizer": opt,
                "n_runs": 5,
                "n_epochs": 60,
                "fidelity_min": 1.0,
                "fidelity_median": 1.0,
                "fidelity_mean": 1.0,
                "n_below_threshold": 0,
                "threshold": 0.9,
                "norm_ratio_min": 1.0,
                "norm_ratio_max": 1.0,
            }
            for opt in ("sam", "gcsam")
        ]
    )
    doc = d.Document("t")
    fidelity.sections(fid, Writer(None, {}, {}, doc))
    [table] = [b for b in doc.blocks if isinstance(b, d.Table)]
    assert list(table.frame.columns) == [
        "Model",
        "Optimizer",
        "Runs",
        "Epochs measured",
        "Fidelity median",
        "Fidelity min",
        "Epochs below 0.9",
        "Norm ratio range",
    ]
    assert table.frame.iloc[1].tolist() == [
        "smallcnn",
        "gcsam",
        5,
        60,
        "1.000",
        "1.000",
        0,
        "1.000–1.000",
    ]
    assert "Same in every row" not in table.caption
