"""The protocol part of the report: trials read apart from folds, chosen settings and cost with
tuning, checked against the store's own values, and the protocol as the report states it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from medbench.report.analysis import analyse
from medbench.report.build import read_experiment
from medbench.report.parts.protocol import tuning_cost_warning
from tests.report.mlflow_store import EXPERIMENT, FAILED, FOLDS, OPTIMIZERS, TARGET


@pytest.fixture(scope="module")
def record(built):
    store, _ = built
    return read_experiment(EXPERIMENT, store.uri)


@pytest.fixture(scope="module")
def protocol(record):
    return analyse(record).result("protocol")


def test_trials_are_read_apart_from_folds(built, record):
    store, _ = built
    assert len(record.folds) == len(OPTIMIZERS) * len(FOLDS)  # a trial is never a fold
    assert len(record.trials) == 2 * len(record.folds)
    assert set(record.trials["parent_run_id"]) == set(record.folds["run_id"])
    assert not record.trials["run_id"].isin(record.folds["run_id"]).any()
    for (opt, fold), run_id in store.child_ids.items():
        mine = record.trials[record.trials["parent_run_id"] == run_id]
        assert list(mine["trial"]) == [0, 1]
        assert set(mine["optimizer"]) == {opt} and set(mine["fold"]) == {fold}
        assert list(mine["val_auc"]) == [t["val_auc"] for t in store.trials[(opt, fold)]]
        assert not [c for c in mine.columns if str(c).startswith("test_")]
    # per-epoch curves and predictions are the fold runs' only
    assert set(record.curves["run_id"]) <= set(record.folds["run_id"])


def test_chosen_setting_is_the_best_trials(built, protocol):
    store, _ = built
    chosen = protocol.chosen.set_index(["optimizer", "fold"])
    finished = [(o, f) for o in OPTIMIZERS for f in FOLDS if (o, f) != FAILED]
    assert sorted(chosen.index) == sorted(finished)
    for key in finished:
        trials = store.trials[key]
        best = max(trials, key=lambda t: t["val_auc"])
        row = chosen.loc[key]
        assert row["lr"] == best["lr"] and row["val_auc"] == best["val_auc"]
        assert row["n_trials"] == 2 and row["n_finished"] == 2
        if key[0] == "sam":
            assert row["rho"] == best["rho"]
        else:
            assert np.isnan(row["rho"])
    # every trial of a usable unit, with its own run id and its fold run's
    assert len(protocol.trials) == 2 * len(finished)
    assert protocol.trials["trial_run_id"].nunique() == len(protocol.trials)


def test_total_cost_includes_tuning(protocol):
    units = protocol.cost_per_unit
    assert (units["tuning_time_s"] == 3.0).all() and (units["tuning_gradient_evals"] == 36.0).all()
    assert np.allclose(units["total_time_s"], units["train_time_s"] + 3.0)
    assert np.allclose(units["total_gradient_evals"], units["gradient_evals"] + 36.0)
    adam = protocol.cost.set_index("optimizer").loc["adam"]
    assert adam["total_gradient_evals_mean"] == pytest.approx(60.0 + 36.0)
    assert protocol.equal_compute.empty  # the budget is in epochs


def test_report_states_the_protocol(built):
    _, out = built
    md = (out / "report.md").read_text()
    assert "### Tuning and compute" in md and "2 trials of 2 epochs each" in md
    assert "sampler `random`" in md and "lr log-uniform in [0.0001, 0.01]" in md
    assert "## Compute and time to target" in md and f"validation AUC ≥ {TARGET:g}" in md
    assert "Budget in epochs" in md and "Tuning time" in md
    chosen = pd.read_csv(out / "table_tuning_chosen.csv")
    assert len(chosen) == 7 and set(chosen["n_trials"]) == {2}


def test_best_validation_score_by_trials_used(built, protocol):
    """Schmidt et al. (2021): the best trial so far after 1 and after 2 trials, per optimizer."""
    store, out = built
    table = protocol.by_trials.set_index(["optimizer", "n_trials"])
    for opt in OPTIMIZERS:
        finished = [f for f in FOLDS if (opt, f) != FAILED]
        first = [store.trials[(opt, f)][0]["val_auc"] for f in finished]
        best = [max(t["val_auc"] for t in store.trials[(opt, f)]) for f in finished]
        assert table.at[(opt, 1), "best_mean"] == pytest.approx(np.mean(first))
        assert table.at[(opt, 2), "best_mean"] == pytest.approx(np.mean(best))
        assert table.at[(opt, 2), "n_units"] == len(finished)
    assert (out / "table_tuning_by_trials.csv").is_file()
    assert (out / "fig_tuning_by_trials.png").is_file()


def test_tuning_at_equal_epochs_warns_that_sam_trials_cost_twice(built, protocol):
    _, out = built
    # this store logs the same tuning passes (36) for both: no warning
    assert "Tuning at equal epochs is not" not in (out / "report.md").read_text()
    doubled = protocol.cost.assign(
        tuning_gradient_evals_median=np.where(protocol.cost["optimizer"] == "sam", 72.0, 36.0)
    )
    text = tuning_cost_warning(dataclasses.replace(protocol, cost=doubled))
    assert text.startswith("**Tuning at equal epochs is not tuning at equal compute.**")
    assert "their tuning spent sam 2.0× the passes of adam's" in text
    gradient = dataclasses.replace(protocol.budget, kind="gradient_evals")
    assert tuning_cost_warning(dataclasses.replace(protocol, cost=doubled, budget=gradient)) == ""
