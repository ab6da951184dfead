"""The engine's handlers: everything around the training loop (:mod:`medbench.engine.train`).

Each reacts to the loop's events (``started``, ``epoch_completed``, ``fit_completed``,
``completed``, ``exception_raised``): selection and early stopping, checkpointing, per-epoch
logging, progress, the fidelity warning, external validation, flatness, and the fold run's
results written through the tracking layer (:class:`ResultLog`), as tracking is a handler in
MONAI's engines. :func:`default_handlers` puts them in the order they must run.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medbench.config import Config
from medbench.data.dataset import Dataset
from medbench.data.pixels.loader import BatchLoader
from medbench.engine.budget import to_target
from medbench.engine.device import tf32_kernels
from medbench.engine.train import (
    Base,
    ExternalResult,
    Fit,
    FoldResult,
    Handler,
    evaluate,
    logged_repeat,
    prediction_frame,
    unwrap,
)
from medbench.errors import MedbenchWarning
from medbench.flatness import measure_flatness
from medbench.metrics import binary_metrics
from medbench.optim.fidelity import FIDELITY_THRESHOLD
from medbench.paths import atomic_write
from medbench.tracking import Tracker


def _improved(value: float, best: float | None, monitor: str, min_delta: float) -> bool:
    if math.isnan(value):
        return best is None
    if best is None or math.isnan(best):
        return True
    return value > best + min_delta if monitor == "val_auc" else value < best - min_delta


class Selection(Base):
    """Keeps the weights of the best validation epoch and stops after ``patience`` bad epochs."""

    def started(self, fit: Fit) -> None:
        patience = fit.config.train.early_stopping.patience
        fit.stop = fit.limits.early_stopping and fit.state["bad_epochs"] >= patience

    def epoch_completed(self, fit: Fit, metrics: dict[str, float]) -> None:
        es, state = fit.config.train.early_stopping, fit.state
        value = metrics[es.monitor]
        if _improved(value, state["best"], es.monitor, es.min_delta):
            state["best"], state["best_epoch"], state["bad_epochs"] = value, state["epoch"] - 1, 0
            fit.best_weights = copy.deepcopy(unwrap(fit.model).state_dict())
        else:
            state["bad_epochs"] += 1
        # under a compute budget every optimizer spends all of it: the budget ends training
        fit.stop = fit.limits.early_stopping and state["bad_epochs"] >= es.patience


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """A job's saved state, or None when there is none or it cannot be read."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - an unreadable checkpoint means: start this job afresh
        return None


def checkpoint_mismatch(saved: Mapping[str, Any], model: nn.Module) -> str | None:
    """Why ``saved`` cannot resume a job training ``model`` (a tensor of another shape, one
    missing or unknown: written by another version of the model, or by something else), or
    None when its weights fit. ``model`` may live on the ``meta`` device: only shapes count."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for what in ("model", "best_model"):
        weights = saved.get(what)
        if not isinstance(weights, Mapping):
            return f"it holds no {what.replace('_', ' ')} weights"
        found = {k: tuple(getattr(v, "shape", ())) for k, v in weights.items()}
        for name in sorted(expected.keys() ^ found.keys()):
            return f"tensor {name!r} is {'missing' if name in expected else 'unknown'}"
        for name, shape in expected.items():
            if found[name] != shape:
                return f"tensor {name!r} has shape {list(found[name])}, the model's {list(shape)}"
    return None


class Checkpointer(Base):
    """Resumes from ``path`` when it holds this job, and saves it atomically as epochs end."""

    def __init__(self, path: Path, meta: dict[str, Any] | None = None) -> None:
        self.path, self.meta = path, meta or {}

    def started(self, fit: Fit) -> None:
        saved = load_checkpoint(self.path)
        if saved is None or saved.get("job") != fit.job.key:
            return
        unwrap(fit.model).load_state_dict(saved["model"])
        fit.optimizer.load_state_dict(saved["optimizer"])
        if fit.scheduler is not None and saved.get("scheduler"):
            fit.scheduler.load_state_dict(saved["scheduler"])
        fit.best_weights = saved["best_model"]
        fit.state = saved["state"]

    def epoch_completed(self, fit: Fit, metrics: dict[str, float]) -> None:
        done, tc = fit.state["epoch"], fit.config.train
        if not (fit.stop or fit.limits.reached(fit.state) or done % tc.checkpoint_every == 0):
            return
        snapshot = {
            "job": fit.job.key,
            "meta": self.meta,
            "model": unwrap(fit.model).state_dict(),
            "optimizer": fit.optimizer.state_dict(),
            "scheduler": fit.scheduler.state_dict() if fit.scheduler is not None else None,
            "best_model": fit.best_weights,
            "state": fit.state,
        }
        atomic_write(self.path, partial(torch.save, snapshot))


class EpochLog(Base):
    """Hands each epoch's metrics to ``log(epoch, metrics)`` (the tracker's writer)."""

    def __init__(self, log: Callable[[int, dict[str, float]], None]) -> None:
        self.log = log

    def epoch_completed(self, fit: Fit, metrics: dict[str, float]) -> None:
        self.log(fit.state["epoch"] - 1, metrics)


class Progress(Base):
    """Advances a tqdm-like bar by one per epoch, showing the loss and validation AUC."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def started(self, fit: Fit) -> None:
        if fit.limits.epochs:
            self.bar.total = fit.limits.epochs
        self.bar.update(fit.state["epoch"])

    def epoch_completed(self, fit: Fit, metrics: dict[str, float]) -> None:
        self.bar.update(1)
        self.bar.set_postfix(
            loss=f"{metrics['train_loss']:.3f}", val_auc=f"{metrics['val_auc']:.3f}"
        )


class FidelityWarning(Base):
    """Warns once per job when the compute dtype erases SAM's perturbation."""

    def __init__(self) -> None:
        self.warned = False

    def epoch_completed(self, fit: Fit, metrics: dict[str, float]) -> None:
        value = metrics.get("perturbation_fidelity")
        if self.warned or value is None or not value < FIDELITY_THRESHOLD:
            return
        self.warned = True
        warnings.warn(
            f"{fit.job.run_name}: under {fit.precision.describe(tf32_kernels(fit.device, fit.config.train.tf32))} the weight perturbation the "
            f"network sees has cosine {value:.2f} with the one {fit.job.optimizer} intends "
            f"(below {FIDELITY_THRESHOLD}): this arm is partly its base optimizer plus noise; "
            "train in fp32 without TF32 (train.amp: off, train.tf32: off) for a faithful "
            "comparison",
            MedbenchWarning,
            stacklevel=2,
        )


class ExternalTest(Base):
    """Tests the selected checkpoint on every external dataset, after the test fold, with the
    batches, precision and threshold of the test fold (the images were preprocessed alike)."""

    def __init__(self, datasets: Mapping[str, Dataset]) -> None:
        self.datasets = datasets

    def completed(self, fit: Fit, result: FoldResult) -> None:
        tc = fit.config.train
        for name, data in self.datasets.items():
            loader = BatchLoader(
                images=data.images,
                labels=data.labels,
                index=np.arange(len(data.labels)),
                batch_size=fit.test.batch_size,
                device=fit.device,
                channels_last=fit.precision.channels_last,
            )
            loss, probs, labels = evaluate(fit.net, loader, fit.device, fit.precision)
            result.external[name] = ExternalResult(
                metrics=binary_metrics(labels, probs, tc.threshold),
                predictions=prediction_frame(
                    data.manifest, labels, probs, fold=fit.job.fold, repeat=logged_repeat(fit)
                ),
                loss=loss,
            )


class Flatness(Base):
    """Flatness of the selected checkpoint on a seeded subset of this fold's training data."""

    def completed(self, fit: Fit, result: FoldResult) -> None:
        train_rows = torch.as_tensor(np.asarray(fit.data.split.train, dtype=np.int64))
        measured = measure_flatness(
            fit.model,
            nn.CrossEntropyLoss(),
            fit.data.images,
            fit.data.labels,
            fit.config.flatness,
            device=fit.device,
            rows=train_rows,
            seed=0,
        )
        result.flatness = {
            **{k: float(v) for k, v in measured.metrics().items()},
            "hessian_trace_stderr": float(measured.trace_stderr),
            "hessian_top_eigenvalue_residual": float(measured.top_eigenvalue_residual),
            "landscape_alphas": [float(a) for a in measured.landscape_alphas],
            "landscape_losses": [float(v) for v in measured.landscape_losses],
            "seconds": float(sum(measured.seconds.values())),  # cost, bounded by the settings
            "seconds_by_measure": measured.seconds,
            "flatness_hvps": measured.hvps,  # Hessian-vector products: the dominant cost
            "hvps_by_measure": measured.hvps_by_measure,
            "method": measured.method,
            "rho": measured.rho,  # of the SAM sharpness: flatness.rho, the same for every run
            "n_samples": measured.n_samples,
        }


class ResultLog(Base):
    """Writes a fold job's results to its run once the others have run: test metrics, per-site
    metrics and predictions, external validation, compute and time to target, flatness."""

    def __init__(self, tracker: Tracker, run_id: str, target_val_auc: float) -> None:
        self.tracker, self.run_id, self.target = tracker, run_id, target_val_auc

    def completed(self, fit: Fit, result: FoldResult) -> None:
        tracker, run_id = self.tracker, self.run_id
        tracker.log_fold_result(
            run_id,
            test=result.test,
            sites=result.sites,
            predictions=result.predictions,
            test_loss=result.test_loss,
            best_epoch=result.best_epoch,
            train_time_s=result.train_time_s,
        )
        for name, external in result.external.items():
            tracker.log_external(
                run_id, name, {**external.metrics, "loss": external.loss}, external.predictions
            )
        target = to_target(result.history, self.target)
        tracker.log_compute(run_id, {"gradient_evals": result.gradient_evals, **target})
        if result.flatness is not None:
            tracker.log_flatness(run_id, result.flatness)


def default_handlers(
    config: Config,
    checkpoint: Path | None = None,
    log: Callable[[int, dict[str, float]], None] | None = None,
    bar: Any = None,
    meta: dict[str, Any] | None = None,
    external: Mapping[str, Dataset] | None = None,
    results: ResultLog | None = None,
) -> list[Handler]:
    """The engine's handlers, in the order they must run (selection before checkpointing,
    external validation on the selected weights before flatness perturbs them, the results'
    writer last: it logs what the others found)."""
    handlers: list[Handler] = [Selection(), FidelityWarning()]
    if checkpoint is not None:
        handlers.append(Checkpointer(checkpoint, meta))
    if log is not None:
        handlers.append(EpochLog(log))
    if bar is not None:
        handlers.append(Progress(bar))
    if external:
        handlers.append(ExternalTest(external))
    if config.flatness.enabled:
        handlers.append(Flatness())
    if results is not None:
        handlers.append(results)
    return handlers
