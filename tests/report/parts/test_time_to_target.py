"""The time-to-target part of the report: time to target and compute curves from the curves,
checked against the store's own values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medbench.report.analysis import analyse
from medbench.report.build import read_experiment
from tests.report.mlflow_store import EXPERIMENT, OPTIMIZERS, TARGET


@pytest.fixture(scope="module")
def protocol(built):
    store, _ = built
    return analyse(read_experiment(EXPERIMENT, store.uri)).result("time_to_target")


def test_time_to_target_from_the_curves(built, protocol):
    store, _ = built
    per_unit = protocol.target_per_unit.set_index(["optimizer", "fold"])
    for key, history in store.curves.items():
        hit = next((i for i, r in enumerate(history) if r["val_auc"] >= TARGET), None)
        row = per_unit.loc[key]
        assert row["reached"] == (hit is not None)
        if hit is not None:
            expected = sum(r["epoch_time_s"] for r in history[: hit + 1])
            assert row["time_to_target_s"] == pytest.approx(expected)
            assert row["gradient_evals_to_target"] == (hit + 1) * history[0]["epoch_gradient_evals"]
        else:
            assert np.isnan(row["time_to_target_s"])
    summary = protocol.to_target.set_index("optimizer")
    for opt in OPTIMIZERS:
        mine = protocol.target_per_unit[protocol.target_per_unit["optimizer"] == opt]
        assert summary.at[opt, "n_units"] == len(mine)
        assert summary.at[opt, "n_reached"] == int(mine["reached"].sum())
        reached = mine.loc[mine["reached"], "time_to_target_s"]
        assert summary.at[opt, "time_to_target_s_median"] == pytest.approx(reached.median())


def test_compute_curves_are_cumulative_means(built, protocol):
    store, _ = built
    sam = protocol.compute_curves[protocol.compute_curves["optimizer"] == "sam"]
    finished = [h for (o, f), h in store.curves.items() if o == "sam"]
    assert list(sam["evals"]) == [20.0 * (k + 1) for k in range(len(sam))]
    times = pd.DataFrame([np.cumsum([r["epoch_time_s"] for r in h]) for h in finished])
    assert np.allclose(sam["time_s"], times.mean(axis=0))
    aucs = pd.DataFrame([[r["val_auc"] for r in h] for h in finished])
    assert np.allclose(sam["val_auc_mean"], aucs.mean(axis=0))
