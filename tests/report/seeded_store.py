"""An MLflow store with several seeds, written through the engine's writer (Tracker): 1 model ×
3 optimizers × 5 folds × 3 seeds, for the statistics of the report.

The config lists the optimizers as ``sam, adam, gcsam`` (neither alphabetical nor medbench's
usual order), so every table must follow it and the baseline (adam) is B of one comparison.
sam's advantage over adam depends on the fold (a fold-specific effect) and barely on the seed:
counting the 15 (fold, seed) pairs as independent gives a tiny p, the 5 folds a larger one.
gcsam logs a low perturbation fidelity, as under bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml

from medbench.metrics import binary_metrics
from medbench.tracking import Tracker
from medbench.tracking.schema import TAG_DATASET_CARD

EXPERIMENT = "seeded"
MODEL = "tiny"
OPTIMIZERS = ("sam", "adam", "gcsam")
FOLDS = (1, 2, 3, 4, 5)
SEEDS = (0, 1, 2)
N_PER_FOLD = 60
VAL_FRACTION = 0.2
EPOCHS = 4
#: Added to the malignant images' score per fold: sam gains in most folds, not all.
SKILL = {
    "adam": (0.0, 0.0, 0.0, 0.0, 0.0),
    "sam": (0.45, -0.05, 0.35, 0.6, 0.1),
    "gcsam": (0.1, 0.2, -0.1, 0.15, 0.0),
}
FIDELITY = {"sam": 1.0, "gcsam": 0.62}
CONFIG = {
    "name": EXPERIMENT,
    "models": [MODEL],
    "optimizers": list(OPTIMIZERS),
    "seeds": list(SEEDS),
    "data": {"folds": "sheet", "val_fraction": VAL_FRACTION, "image_size": 32},
    "optimizer": {"lr": 0.001, "rho": 0.05, "weight_decay": 0.0},
    "train": {"epochs": EPOCHS, "batch_size": 8, "threshold": 0.5, "amp": "bf16"},
    "report": {"rope": 0.02},
}


@dataclass
class SeededStore:
    uri: str
    predictions: dict[tuple[str, int, int], pd.DataFrame]  # (optimizer, fold, seed)
    sizes: dict[int, dict[str, int]]  # per fold: n_train, n_val, n_test


def split_sizes(fold: int) -> dict[str, int]:
    n_rest = N_PER_FOLD * (len(FOLDS) - 1)
    n_val = round(VAL_FRACTION * n_rest)
    return {"n_train": n_rest - n_val, "n_val": n_val, "n_test": N_PER_FOLD}


def predictions(opt: str, fold: int, seed: int) -> pd.DataFrame:
    """Test predictions: a fold's images and noise are shared by every optimizer and seed; the
    seed adds a little noise of its own, the optimizer its fold-specific skill."""
    rng = np.random.default_rng(fold)
    labels = rng.permutation(np.arange(N_PER_FOLD) % 2)
    shared = rng.normal(0, 1, N_PER_FOLD)
    seed_noise = np.random.default_rng(100 * fold + seed).normal(0, 0.08, N_PER_FOLD)
    own = np.random.default_rng([fold, seed, len(opt)]).normal(0, 0.03, N_PER_FOLD)
    score = labels * (1.2 + SKILL[opt][fold - 1]) + shared + seed_noise + own
    return pd.DataFrame(
        {
            "id": [f"f{fold}_{i:03d}" for i in range(N_PER_FOLD)],
            "site": np.where(np.arange(N_PER_FOLD) % 3, "GDPH", "SYSUCC"),
            "fold": fold,
            "label": labels,
            "prob_malignant": np.round(1 / (1 + np.exp(-(score - 0.6))), 6),
        }
    )


def make_seeded_store(uri: str) -> SeededStore:
    tr = Tracker(uri, EXPERIMENT)
    preds = {}
    for opt in OPTIMIZERS:
        params = {"model": MODEL, "optimizer": opt, "seed": ",".join(map(str, SEEDS))}
        pid = tr.start_parent(
            MODEL, opt, params, "hash", "fp", tags={TAG_DATASET_CARD: "synthetic_bus"}
        )
        tr.log_config(pid, yaml.safe_dump(CONFIG, sort_keys=False))
        for fold in FOLDS:
            for seed in SEEDS:
                child = {"fold": fold, "seed": seed, "model": MODEL, "optimizer": opt}
                cid = tr.start_child(
                    pid, MODEL, opt, fold, seed, {**child, **split_sizes(fold)}, "hash", "fp"
                )
                for epoch in range(EPOCHS):
                    metrics = {
                        "train_loss": 0.7 * 0.8**epoch,
                        "val_loss": 0.6 * 0.9**epoch,
                        "val_auc": 0.7 + 0.05 * epoch,
                        "epoch_time_s": 1.0 if opt == "adam" else 2.0,
                    }
                    if opt in FIDELITY:
                        metrics["perturbation_fidelity"] = FIDELITY[opt]
                        metrics["perturbation_norm_ratio"] = 1.0 if opt == "sam" else 1.6
                    tr.log_epoch(cid, epoch, metrics)
                pred = predictions(opt, fold, seed)
                tr.log_fold_result(
                    cid,
                    test=binary_metrics(pred["label"], pred["prob_malignant"]),
                    sites={},
                    predictions=pred,
                    test_loss=0.5,
                    best_epoch=2,
                    train_time_s=4.0 if opt == "adam" else 8.0,
                )
                evals = EPOCHS * 30 * (1 if opt == "adam" else 2)
                tr.log_compute(cid, {"gradient_evals": evals})
                tr.finish(cid, "FINISHED")
                preds[(opt, fold, seed)] = pred
        tr.finish(pid, "FINISHED")
    return SeededStore(uri, preds, {f: split_sizes(f) for f in FOLDS})
