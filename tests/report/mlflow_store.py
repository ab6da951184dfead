"""A small MLflow store written through the engine's own writer (medbench.tracking.Tracker), for
the report tests: 1 model × 2 optimizers × 4 folds, two sites, two readers, flatness, one failed
run, and tuning: two trial runs nested under each fold run, the finished ones tuned. Every name comes from the tracking schema, so a rename there reaches these tests too."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml

from medbench.metrics import binary_metrics
from medbench.tracking import Tracker
from medbench.tracking.schema import (
    SITE_METRICS,
    TAG_DATASET_CARD,
    TAG_DEVICE,
    TAG_PLATFORM,
    TAG_PYTHON,
    TAG_TORCH,
)

EXPERIMENT = "report-test"
MODEL = "tiny"
OPTIMIZERS = ("adam", "sam")
FOLDS = (1, 2, 3, 4)
SEED = 0
THRESHOLD = 0.4  # not 0.5: the report must take the config's threshold
FAILED = ("sam", 3)
FAILURE = "diverged: training loss became nan in epoch 3"
N_PER_FOLD = 30
TARGET = 0.7  # validation AUC of time to target
ALPHAS = [-1.0, -0.5, 0.0, 0.5, 1.0]
CONFIG = {
    "name": EXPERIMENT,
    "models": [MODEL],
    "optimizers": list(OPTIMIZERS),
    "seeds": [SEED],
    "data": {"folds": "sheet", "val_fraction": 0.2, "image_size": 32},
    "optimizer": {"lr": 0.001, "rho": 0.05, "weight_decay": 0.0},
    "train": {
        "epochs": 6,
        "batch_size": 8,
        "threshold": THRESHOLD,
        "early_stopping": {"monitor": "val_auc", "patience": 3},
    },
    "tune": {
        "enabled": True,
        "trials": 2,
        "epochs": 2,
        "sampler": "random",
        "objective": "val_auc",
        "space": {"lr_low": 1e-4, "lr_high": 1e-2, "rho_low": 0.01, "rho_high": 0.5},
    },
    "report": {"target_val_auc": TARGET},
}
ENV = {
    TAG_DEVICE: "cpu: x86_64",
    TAG_PYTHON: "3.11.7",
    TAG_TORCH: "2.5.0",
    TAG_PLATFORM: "Linux-test",
}
# readers call most malignant lesions 4a+ and most benign ones 2-3; a few cells per fold are
# missing, stray (not a category, or BI-RADS 0), upper-case or a plain "4"
POSITIVE_CALLS = ["4a", "4b", "4c", "5", "5", "3"]
NEGATIVE_CALLS = ["2", "3", "3", "2", "4a", "4b"]
READER_OVERRIDES = {
    "birads_reader1": {3: "4", 5: "", 7: "4A"},
    "birads_reader2": {3: "4", 9: "x", 11: "0", 13: ""},
}


@dataclass
class Store:
    uri: str
    experiment: str
    parent_ids: dict[str, str]
    child_ids: dict[tuple[str, int], str]
    predictions: dict[tuple[str, int], pd.DataFrame]
    flatness: dict[tuple[str, int], dict]
    curves: dict[tuple[str, int], list[dict[str, float]]]  # per epoch, finished runs only
    trials: dict[tuple[str, int], list[dict[str, float]]]  # lr, (rho), val_auc and cost per trial


def fold_images(fold: int) -> pd.DataFrame:
    """The test images of one fold: the same for every optimizer (paired design)."""
    rng = np.random.default_rng(100 + fold)
    n = N_PER_FOLD
    ids = [f"img{fold}_{i:03d}" for i in range(n)]
    labels = rng.permutation(np.arange(n) % 2)  # both classes in every fold and site
    frame = pd.DataFrame(
        {
            "id": ids,
            "site": ["GDPH" if i % 3 else "SYSUCC" for i in range(n)],
            "fold": fold,
            "label": labels,
        }
    )
    for reader, overrides in READER_OVERRIDES.items():
        calls = [str(rng.choice(POSITIVE_CALLS if y else NEGATIVE_CALLS)) for y in labels]
        for i, value in overrides.items():
            calls[i] = value
        frame[reader] = calls
    return frame


def fold_predictions(opt: str, fold: int) -> pd.DataFrame:
    images = fold_images(fold)
    rng = np.random.default_rng(7 * fold + len(opt))
    skill = 1.2 if opt == "adam" else 1.6
    score = skill * images["label"].to_numpy() + rng.normal(0, 1, len(images))
    probs = 1 / (1 + np.exp(-score + 0.5))
    probs[0] = probs[1]  # a tie, as real predictions have
    out = images.copy()
    out.insert(4, "prob_malignant", np.round(probs, 6))
    return out


def split_sizes(fold: int) -> dict[str, int]:
    """The params of a fold run's split: the test fold, and the other folds less a validation
    share (``val_fraction``), as the engine logs them."""
    n_rest = N_PER_FOLD * (len(FOLDS) - 1)
    n_val = round(CONFIG["data"]["val_fraction"] * n_rest)
    return {"n_train": n_rest - n_val, "n_val": n_val, "n_test": N_PER_FOLD}


def trial_results(opt: str, fold: int) -> list[dict[str, float]]:
    """Two trials per fold run: the second has the better val_auc on even folds."""
    out = []
    for j in range(2):
        row = {"lr": 10.0 ** -(2 + j + 0.1 * fold)}
        if opt == "sam":
            row["rho"] = 0.05 * (j + 1)
        row.update(
            val_auc=0.6 + 0.1 * ((j + fold) % 2), gradient_evals=12.0 * (j + 1), train_time_s=1.5
        )
        out.append(row)
    return out


def make_store(uri: str) -> Store:
    tr = Tracker(uri, EXPERIMENT)
    parents, children, preds, flats, curves, trials = {}, {}, {}, {}, {}, {}
    for opt in OPTIMIZERS:
        params = {
            "model": MODEL,
            "optimizer": opt,
            "lr": 0.001,
            "rho": 0.05,
            "epochs": 6,
            "batch_size": 8,
            "image_size": 32,
            "seed": SEED,
        }
        pid = tr.start_parent(
            MODEL, opt, params, "hash1", "fp1", tags={TAG_DATASET_CARD: "synthetic_bus"}
        )
        tr.log_config(pid, yaml.safe_dump(CONFIG, sort_keys=False))
        parents[f"{MODEL}/{opt}"] = pid
        for fold in FOLDS:
            cid = tr.start_child(
                pid,
                MODEL,
                opt,
                fold,
                SEED,
                {
                    "fold": fold,
                    "seed": SEED,
                    "model": MODEL,
                    "optimizer": opt,
                    **split_sizes(fold),
                },
                "hash1",
                "fp1",
                tags=ENV,
            )
            children[(opt, fold)] = cid
            trials[(opt, fold)] = trial_results(opt, fold)
            for j, trial in enumerate(trials[(opt, fold)]):
                params = {k: trial[k] for k in ("lr", "rho") if k in trial}
                tid = tr.start_trial(cid, MODEL, opt, fold, SEED, j, params, "hash1", "fp1")
                tr.log_trial_result(tid, {k: trial[k] for k in trial if k not in params})
                tr.finish(tid, "FINISHED")
            rng = np.random.default_rng(fold * 10 + len(opt))
            failed = (opt, fold) == FAILED
            n_epochs = 3 if failed else 6
            history = []
            for epoch in range(n_epochs):
                history.append(
                    {
                        "train_loss": 0.7 * 0.85**epoch + 0.01 * rng.random(),
                        "val_loss": 0.7 * 0.9**epoch,
                        "val_auc": 0.6
                        + 0.05 * epoch
                        - 0.02 * max(0, epoch - 3)
                        + 0.01 * rng.random(),
                        "val_accuracy": 0.6 + 0.03 * epoch,
                        "epoch_time_s": (1.0 if opt == "adam" else 2.0) + 0.1 * rng.random(),
                        "epoch_gradient_evals": 10.0 if opt == "adam" else 20.0,
                    }
                )
                tr.log_epoch(cid, epoch, history[-1])
            if failed:
                tr.finish(cid, "FAILED", FAILURE)
                continue
            best = max(trials[(opt, fold)], key=lambda r: r["val_auc"])
            tr.log_tuning(
                cid,
                {k: best[k] for k in ("lr", "rho") if k in best},
                {"tuning_time_s": 3.0, "tuning_gradient_evals": 36.0},
            )
            tr.log_compute(cid, {"gradient_evals": 10.0 * n_epochs * (1 if opt == "adam" else 2)})
            pred = fold_predictions(opt, fold)
            tr.log_fold_result(
                cid,
                test=binary_metrics(pred["label"], pred["prob_malignant"], THRESHOLD),
                sites={
                    site: {
                        k: v
                        for k, v in binary_metrics(
                            part["label"], part["prob_malignant"], THRESHOLD
                        ).items()
                        if k in SITE_METRICS
                    }
                    for site, part in pred.groupby("site")
                },
                predictions=pred,
                test_loss=0.5,
                best_epoch=3,
                train_time_s=6.5 if opt == "adam" else 12.5,
            )
            flat = {
                "hessian_top_eigenvalue": (20.0 if opt == "adam" else 8.0) + fold,
                "hessian_trace": (200.0 if opt == "adam" else 90.0) + 3 * fold,
                "sam_sharpness": (0.05 if opt == "adam" else 0.02) + 0.001 * fold,
                "landscape_alphas": ALPHAS,
                "landscape_losses": [
                    0.3 + (2.0 if opt == "adam" else 0.8) * a * a + 0.01 * fold for a in ALPHAS
                ],
                "seconds": 1.5,
                "n_samples": 64,
            }
            tr.log_flatness(cid, flat)
            tr.finish(cid, "FINISHED")
            preds[(opt, fold)] = pred
            flats[(opt, fold)] = flat
            curves[(opt, fold)] = history
        if opt == FAILED[0]:
            tr.finish(pid, "FAILED", f"1 of {len(FOLDS)} folds failed")
        else:
            tr.finish(pid, "FINISHED")
    return Store(uri, EXPERIMENT, parents, children, preds, flats, curves, trials)


CARD = """---
name: Synthetic BUS
images: 120
sites: [GDPH, SYSUCC]
classes: {benign: 0, malignant: 1}
---
# Synthetic BUS

A test card.
"""
