"""A small experiment record generated in memory (no MLflow): two models, two optimizers, one
failed fold and one single-class test fold, for the tests of the analysis and the summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from medbench.tracking import FLATNESS_FILE, ExperimentRecord

# model "m" under adam and sam on folds 1-3 (sam fold 3 failed); model "n" under adam on fold 1;
# adam fold 2 of "m" has only malignant test images, so it has no ROC curve
UNITS = [("m", "adam", 1), ("m", "adam", 2), ("m", "adam", 3), ("m", "sam", 1), ("m", "sam", 2)]
UNITS += [("n", "adam", 1)]
FAILED = ("m", "sam", 3)
N_IMAGES = 24


def _predictions(model, opt, fold, rng):
    labels = np.arange(N_IMAGES) % 2
    if (model, opt, fold) == ("m", "adam", 2):
        labels = np.ones(N_IMAGES, dtype=int)
    probs = np.round(np.clip(0.35 * labels + 0.65 * rng.random(N_IMAGES), 0, 1), 2)  # ties
    reader = np.where(labels == 1, "4a", "3")
    reader[::5] = "2"
    return pd.DataFrame(
        {
            "id": [f"{fold}-{i}" for i in range(N_IMAGES)],
            "site": "GDPH",
            "fold": fold,
            "label": labels,
            "prob_malignant": probs,
            "birads_reader1": reader,
            "birads_reader2": np.where(labels == 1, "5", "2"),
        }
    )


def make_record() -> ExperimentRecord:
    """The record as ``load_experiment`` would return it for these runs."""
    rng = np.random.default_rng(3)
    folds, preds, artifacts = [], [], {}
    for i, (model, opt, fold) in enumerate([*UNITS, FAILED]):
        run_id = f"{model}-{opt}-{fold}"
        done = (model, opt, fold) != FAILED
        folds.append(
            {
                "run_id": run_id,
                "model": model,
                "optimizer": opt,
                "fold": fold,
                "seed": 0,
                "status": "FINISHED" if done else "FAILED",
                "failure": None if done else "diverged",
                "end_time": i,
                "train_time_s": 10.0 + i,
            }
        )
        if done:
            p = _predictions(model, opt, fold, rng).assign(run_id=run_id, model=model)
            preds.append(p.assign(optimizer=opt, seed=0))
            artifacts[run_id] = {FLATNESS_FILE: {"hessian_top_eigenvalue": 1.0 + i}}
    return ExperimentRecord(
        name="generated",
        uri="",
        experiment_id="0",
        parents=pd.DataFrame(),
        folds=pd.DataFrame(folds),
        curves=pd.DataFrame(columns=["run_id", "metric", "step", "value"]),
        predictions=pd.concat(preds, ignore_index=True),
        artifacts=artifacts,
        config={"models": ["m", "n"], "optimizers": ["adam", "sam"]},
        tags={},
    )
