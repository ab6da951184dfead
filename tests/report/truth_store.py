"""MLflow stores whose truth is known by construction, written through the engine's writer
(Tracker): the report must recompute every number from their ``predictions.csv`` and never say
more than the construction allows (issue 22).

- ``worse``: sam is worse than adam on every fold (the same image noise, less separation), and
  its run of fold 4, adam's hard fold, failed: on its own folds sam's mean is the higher.
- ``calibrated``: sam's scores are adam's logits times a factor of each fold (0.3 to 3): every
  fold is ranked, and every call at 0.5 made, exactly alike, while pooling the folds ranks the
  fold models' scores against each other differently.
- ``repeated``: two repeats × 3 folds (the repeat a param and a tag of each fold run, as the
  engine writes them with ``cv.repeats``), sam a little better than adam with noise.
- ``running``: the ``worse`` grid caught while it runs: adam's 5 folds finished, sam's fold 1
  finished and fold 2 RUNNING, folds 3 to 5 not started, the parent runs still RUNNING.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import yaml

from medbench.metrics import binary_metrics
from medbench.tracking import Tracker
from medbench.tracking.schema import TAG_DATASET_CARD

MODEL = "tiny"
N_PER_FOLD = 100
#: adam's separation of malignant from benign scores per fold: fold 4 is the hard one
ADAM_SEPARATION = {1: 2.4, 2: 2.2, 3: 2.6, 4: 0.6, 5: 2.3}
#: how much less sam separates them, per fold: worse on every fold, by different amounts
SAM_LOSS = {1: 0.7, 2: 0.55, 3: 0.65, 4: 0.4, 5: 0.45}
#: fold-specific factor of sam's logits in the ``calibrated`` store
LOGIT_FACTOR = {1: 0.3, 2: 3.0, 3: 1.0, 4: 2.2, 5: 0.5}
REPEAT_TAG = "medbench.repeat"  # the engine's tag of a fold run's repeat (cv.repeats)


def _config(name: str, optimizers, folds, seeds=(0,)) -> dict:
    return {
        "name": name,
        "models": [MODEL],
        "optimizers": list(optimizers),
        "seeds": list(seeds),
        "data": {"folds": "sheet", "val_fraction": 0.2, "image_size": 32},
        "train": {"epochs": 3, "batch_size": 8, "threshold": 0.5},
        "report": {"rope": 0.01},
    }


def _images(key: int, n: int = N_PER_FOLD) -> tuple[np.ndarray, np.ndarray]:
    """Labels (balanced) and a standard normal noise per image, fixed by ``key``."""
    rng = np.random.default_rng(key)
    return rng.permutation(np.arange(n) % 2), rng.standard_normal(n)


def _frame(fold: int, labels: np.ndarray, probs: np.ndarray, prefix: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"{prefix}f{fold}_{i:03d}" for i in range(len(labels))],
            "site": "GDPH",
            "fold": fold,
            "label": labels,
            "prob_malignant": probs,
        }
    )


def worse_predictions(opt: str, fold: int) -> pd.DataFrame:
    labels, noise = _images(fold)
    sep = ADAM_SEPARATION[fold] - (SAM_LOSS[fold] if opt == "sam" else 0.0)
    return _frame(fold, labels, 1 / (1 + np.exp(-(sep * labels + noise - sep / 2))))


def calibrated_predictions(opt: str, fold: int) -> pd.DataFrame:
    labels, noise = _images(100 + fold)
    logit = 2.0 * labels + noise - 1.0
    factor = LOGIT_FACTOR[fold] if opt == "sam" else 1.0
    return _frame(fold, labels, 1 / (1 + np.exp(-factor * logit)))


def repeated_predictions(opt: str, repeat: int, fold: int) -> pd.DataFrame:
    """The same 150 images in every repeat, dealt into 3 folds differently per repeat."""
    labels, noise = _images(7, 150)
    order = np.random.default_rng(repeat).permutation(150)
    mine = order[(fold - 1) * 50 : fold * 50]
    own = np.random.default_rng([repeat, fold, len(opt)]).normal(0, 0.4, 50)
    sep = 1.5 + (0.25 if opt == "sam" else 0.0)
    score = sep * labels[mine] + noise[mine] + own
    frame = _frame(fold, labels[mine], 1 / (1 + np.exp(-(score - sep / 2))))
    frame["id"] = [f"img{i:03d}" for i in mine]
    return frame


def write_store(
    uri: str,
    name: str,
    optimizers,
    units,
    predictions: Callable[..., pd.DataFrame],
    sizes: dict[str, int],
    failed=(),
    running=(),
    skipped=(),
) -> dict[tuple, pd.DataFrame]:
    """Write one experiment: a parent per optimizer, a fold run per unit (``(fold,)`` or
    ``(repeat, fold)``), the failed units FAILED without predictions, the ``running`` ones left
    RUNNING (and their parents too), the ``skipped`` ones never started. Returns the predictions
    written, by (optimizer, *unit)."""
    tr = Tracker(uri, name)
    folds = sorted({u[-1] for u in units})
    written = {}
    for opt in optimizers:
        pid = tr.start_parent(
            MODEL,
            opt,
            {"model": MODEL, "optimizer": opt, "seed": "0"},
            "hash",
            "fp",
            tags={TAG_DATASET_CARD: "synthetic_bus"},
        )
        tr.log_config(pid, yaml.safe_dump(_config(name, optimizers, folds), sort_keys=False))
        for unit in units:
            if (opt, *unit) in skipped:
                continue
            fold = unit[-1]
            params = {"fold": fold, "seed": 0, "model": MODEL, "optimizer": opt, **sizes}
            cid = tr.start_child(pid, MODEL, opt, fold, 0, params, "hash", "fp")
            if len(unit) == 2:  # as the engine records cv.repeats: a param and a tag
                tr.client.log_param(cid, "repeat", unit[0])
                tr.client.set_tag(cid, REPEAT_TAG, str(unit[0]))
            for epoch in range(3):
                tr.log_epoch(cid, epoch, {"val_auc": 0.7 + 0.05 * epoch, "epoch_time_s": 1.0})
            if (opt, *unit) in failed:
                tr.finish(cid, "FAILED", "diverged: training loss became nan in epoch 2")
                continue
            if (opt, *unit) in running:
                continue
            pred = predictions(opt, *unit)
            tr.log_fold_result(
                cid,
                test=binary_metrics(pred["label"], pred["prob_malignant"]),
                sites={},
                predictions=pred,
                test_loss=0.5,
                best_epoch=2,
                train_time_s=3.0,
            )
            tr.log_compute(cid, {"gradient_evals": 30.0 * (2 if opt != "adam" else 1)})
            tr.finish(cid, "FINISHED")
            written[(opt, *unit)] = pred
        if not running:
            tr.finish(pid, "FAILED" if any(f[0] == opt for f in failed) else "FINISHED")
    return written


def make_worse(uri: str) -> dict:
    units = [(f,) for f in ADAM_SEPARATION]
    sizes = {"n_train": 320, "n_val": 80, "n_test": N_PER_FOLD}
    return write_store(
        uri, "worse", ("adam", "sam"), units, worse_predictions, sizes, failed={("sam", 4)}
    )


def make_calibrated(uri: str) -> dict:
    units = [(f,) for f in LOGIT_FACTOR]
    sizes = {"n_train": 320, "n_val": 80, "n_test": N_PER_FOLD}
    return write_store(uri, "calibrated", ("adam", "sam"), units, calibrated_predictions, sizes)


def make_repeated(uri: str) -> dict:
    units = [(r, f) for r in (1, 2) for f in (1, 2, 3)]
    sizes = {"n_train": 100, "n_val": 0, "n_test": 50}  # n_test / n_train = 1 / (k − 1)
    return write_store(uri, "repeated", ("adam", "sam"), units, repeated_predictions, sizes)


def make_running(uri: str) -> dict:
    units = [(f,) for f in ADAM_SEPARATION]
    sizes = {"n_train": 320, "n_val": 80, "n_test": N_PER_FOLD}
    later = {("sam", f) for f in (3, 4, 5)}
    return write_store(
        uri, "running", ("adam", "sam"), units, worse_predictions, sizes,
        running={("sam", 2)}, skipped=later,
    )  # fmt: skip
