"""The time-to-target part of the report: time to target and compute curves from the curves,
checked against the store's own values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medbench.report.analysis import analyse
from medbench.report.build import read_experiment
from medbench.report.parts.time_to_target import target_summary
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
        assert summary.at[opt, "time_to_target_s_median_of_reached"] == pytest.approx(
            reached.median()
        )
        # the median that counts a miss as never (AlgoPerf): infinite unless most runs reached it
        never = mine["time_to_target_s"].where(mine["reached"], np.inf)
        assert summary.at[opt, "time_to_target_s_median"] == pytest.approx(never.median())
        assert summary.at[opt, "share_reached"] == pytest.approx(mine["reached"].mean())


def test_a_run_that_never_reached_the_target_counts_as_never():
    """One optimizer reached the target in 1 of 5 runs (after 10 s), the other in 5 of 5 (after
    23 s): the first must not look faster (issue 22 #6)."""
    rows = [("once", f, 10.0 if f == 1 else np.nan) for f in range(1, 6)]
    rows += [("always", f, 23.0) for f in range(1, 6)]
    per_unit = pd.DataFrame(
        [
            {"model": "m", "optimizer": o, "fold": f, "reached": bool(np.isfinite(t)),
             "time_to_target_s": t, "gradient_evals_to_target": t * 10}
            for o, f, t in rows
        ]
    )  # fmt: skip
    summary = target_summary(per_unit).set_index("optimizer")
    assert summary.at["once", "time_to_target_s_median"] == np.inf
    assert summary.at["always", "time_to_target_s_median"] == 23.0
    assert summary.at["once", "share_reached"] == 0.2
    assert summary.at["once", "time_to_target_s_median_of_reached"] == 10.0  # CSV only


def test_compute_curves_are_cumulative_means(built, protocol):
    store, _ = built
    sam = protocol.compute_curves[protocol.compute_curves["optimizer"] == "sam"]
    finished = [h for (o, f), h in store.curves.items() if o == "sam"]
    assert list(sam["evals"]) == [20.0 * (k + 1) for k in range(len(sam))]
    times = pd.DataFrame([np.cumsum([r["epoch_time_s"] for r in h]) for h in finished])
    assert np.allclose(sam["time_s"], times.mean(axis=0))
    aucs = pd.DataFrame([[r["val_auc"] for r in h] for h in finished])
    assert np.allclose(sam["val_auc_mean"], aucs.mean(axis=0))
