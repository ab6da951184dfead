"""Planning repeats from a pilot: an in-memory record of 2 repeats x 4 folds whose per-unit AUCs
are known by construction."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from medbench.errors import ConfigError
from medbench.report.plan import plan_repeats, render_plan
from medbench.report.power import repeated_mdd, repeats_needed
from medbench.tracking import ExperimentRecord

K, REPEATS, N_TEST, N_TRAIN = 4, 2, 20, 50
SECONDS = {"adam": 10.0, "sam": 20.0}


def _record() -> ExperimentRecord:
    """Model m under adam and sam, 2 repeats of 4 folds, one seed; sam's scores are adam's with
    noise of its own, so the differences vary from unit to unit."""
    rng = np.random.default_rng(5)
    labels = np.arange(N_TEST) % 2
    folds, preds = [], []
    for repeat in range(1, REPEATS + 1):
        for fold in range(K):
            base = labels + rng.normal(0, 0.9, N_TEST)
            for opt in SECONDS:
                run_id = f"{opt}-{repeat}-{fold}"
                score = base + (rng.normal(0, 0.6, N_TEST) if opt == "sam" else 0)
                folds.append(
                    {
                        "run_id": run_id,
                        "model": "m",
                        "optimizer": opt,
                        "repeat": repeat,
                        "fold": fold,
                        "seed": 0,
                        "status": "FINISHED",
                        "end_time": len(folds),
                        "param.n_train": str(N_TRAIN),
                        "train_time_s": SECONDS[opt],
                        "tuning_time_s": math.nan,
                    }
                )
                preds.append(
                    pd.DataFrame(
                        {
                            "run_id": run_id,
                            "label": labels,
                            "prob_malignant": 1 / (1 + np.exp(-score)),
                        }
                    )
                )
    return ExperimentRecord(
        name="pilot",
        uri="",
        experiment_id="0",
        parents=pd.DataFrame(),
        folds=pd.DataFrame(folds),
        curves=pd.DataFrame(columns=["run_id", "metric", "step", "value"]),
        predictions=pd.concat(preds, ignore_index=True),
        artifacts={},
        config={"models": ["m"], "optimizers": ["adam", "sam"]},
        tags={},
    )


def _differences(record: ExperimentRecord) -> np.ndarray:
    auc = {
        r: roc_auc_score(p["label"], p["prob_malignant"])
        for r, p in record.predictions.groupby("run_id")
    }
    return np.array(
        [
            auc[f"sam-{r}-{f}"] - auc[f"adam-{r}-{f}"]
            for r in range(1, REPEATS + 1)
            for f in range(K)
        ]
    )


def test_the_plan_follows_the_pilots_variance_and_the_corrected_test():
    record = _record()
    d = _differences(record)
    var_d, ratio = d.var(ddof=1), N_TEST / N_TRAIN
    plan = plan_repeats(record, delta=0.15, power=0.8)
    row = plan.comparisons.iloc[0]
    assert plan.pilot_repeats == REPEATS and plan.k == K and row["comparison"] == "m sam − adam"
    assert row["n_units"] == REPEATS * K and row["mean_diff"] == pytest.approx(d.mean())
    assert row["sd_diff"] == pytest.approx(math.sqrt(var_d))
    assert row["test_train_ratio"] == pytest.approx(ratio)
    assert row["mdd_pilot"] == pytest.approx(repeated_mdd(var_d, K, ratio, REPEATS))
    expected = repeats_needed(var_d, K, ratio, 0.15)
    assert row["repeats_needed"] == expected.repeats and row["floor"] == pytest.approx(
        expected.floor
    )
    # the minimum detectable difference shrinks as repeats are added, towards the floor
    mdd = plan.mdd.set_index("repeats")["mdd"]
    assert list(mdd.index) == [1, 2, 3, 5, 10, 20, math.inf]
    assert (np.diff(mdd.to_numpy()) < 0).all() and mdd[math.inf] == pytest.approx(row["floor"])
    # compute: 1 model x 4 folds x 1 seed per repeat, at the pilot's measured seconds per run
    assert plan.repeats == expected.repeats and 2 < plan.repeats <= 5
    cost = plan.compute(5).set_index("optimizer")
    assert cost.loc["adam", "runs"] == 20 and cost.loc["sam", "seconds"] == 20 * 20.0
    assert cost.loc["total", "more_runs"] == 2 * 3 * K and cost.loc["total", "seconds"] == 600.0
    text = render_plan(plan)
    assert "pilot: pilot (2 repeat(s) x 4 folds, 1 seed(s))" in text
    assert f"compute of {plan.repeats} repeats (cv.repeats: {plan.repeats})" in text


def test_a_delta_below_the_floor_is_never_reached_and_said_so():
    plan = plan_repeats(_record(), delta=1e-4)
    assert plan.repeats is None and pd.isna(plan.comparisons["repeats_needed"].iloc[0])
    text = render_plan(plan)
    assert "No number of repeats of 4-fold cross-validation detects 0.0001" in text
    assert "more data sets (medbench compare)" in text
    assert "what one more repeat costs (cv.repeats: 3)" in text


def test_bad_goals_are_one_line():
    with pytest.raises(ConfigError, match=r"--delta must be > 0"):
        plan_repeats(_record(), delta=0)
    with pytest.raises(ConfigError, match=r"--power in \(0, 1\)"):
        plan_repeats(_record(), power=1.5)
