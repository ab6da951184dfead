"""Train one job: set up, fit epoch by epoch, test the selected checkpoint once.

The loop reads as a short sequence of named steps; everything around it is a handler
(:mod:`medbench.engine.handlers`), as in MONAI's engines: selection and early stopping,
checkpointing, per-epoch logging, progress, and at the end the test-fold evaluation, external
validation, flatness and the run's results. The loop knows nothing of MLflow: tracking is a
handler too. A handler sees the :class:`Fit` (model, optimizer, loaders, state) at these events:
``started`` (before the first epoch, a resumed job included), ``epoch_completed`` (after each
epoch's training and validation), ``fit_completed`` (after the last epoch), ``completed`` (after
the test, with the :class:`FoldResult` being filled) and ``exception_raised`` (an exception left
the epochs: a divergence, a crash; not an interrupt).

Selection never looks at the test fold: early stopping and the best checkpoint use the
validation split carved from the training folds. Every epoch reseeds the global RNG from
(job, epoch), so a job resumed from its last checkpoint continues exactly as if it had never
stopped, and batches come from :class:`BatchLoader` in an order fixed by (fold, seed, epoch).
A NaN or infinite training loss, or non-finite outputs on the validation split (weights gone
to NaN in the epoch's last steps), raise :class:`Diverged`; Ctrl-C raises ``KeyboardInterrupt``
after the last completed epoch was checkpointed; the job runner (:mod:`medbench.engine.runner`)
turns both into the run's status.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from medbench.config import Config
from medbench.data.folds import FoldSplit
from medbench.data.pixels.loader import BatchLoader, place_images
from medbench.engine.budget import Limits, limits
from medbench.engine.device import Precision, set_tf32, tf32_kernels
from medbench.engine.jobs import Job, data_seed, derive_seed, init_seed
from medbench.metrics import binary_metrics
from medbench.models import build_model
from medbench.optim import build_optimizer, disable_running_stats, enable_running_stats
from medbench.optim.fidelity import TF32, cast_parameters, perturbation_fidelity
from medbench.optim.registry import passes_per_step
from medbench.tracking.schema import SITE_METRICS


class Diverged(RuntimeError):
    """The training loss, or the network's outputs on the validation split, became NaN or
    infinite: the job stops and its run is marked FAILED (a tuning trial counts as tried)."""


@dataclass
class FoldData:
    """What one job trains on: the whole dataset's preprocessed images and this fold's split."""

    images: torch.Tensor  # uint8 (N, 3, S, S)
    labels: torch.Tensor  # int64 (N,)
    manifest: pd.DataFrame  # id, site, fold, label, birads_reader1/2 (row order = images)
    split: FoldSplit


@dataclass
class ExternalResult:
    """The selected checkpoint tested on one external dataset."""

    metrics: dict[str, float]  # every metric of METRIC_NAMES
    predictions: pd.DataFrame  # PREDICTION_COLUMNS; ``fold`` is the job's (the checkpoint's)
    loss: float


@dataclass
class FoldResult:
    """A finished job: what the test fold and the handlers found."""

    test: dict[str, float]  # every metric of METRIC_NAMES on the test fold
    sites: dict[str, dict[str, float]]  # site -> SITE_METRICS on its test images
    predictions: pd.DataFrame  # one row per test image (PREDICTION_COLUMNS)
    test_loss: float
    best_epoch: int
    train_time_s: float
    gradient_evals: int  # forward-backward passes on training batches, all epochs
    history: list[dict[str, float]]
    flatness: dict[str, Any] | None = None
    external: dict[str, ExternalResult] = field(default_factory=dict)  # by dataset name


def new_state() -> dict[str, Any]:
    """The loop's state: plain values, so that a checkpoint loads with ``weights_only=True``."""
    return {
        "epoch": 0,  # epochs completed
        "best": None,  # best value of the monitored metric
        "best_epoch": 0,
        "bad_epochs": 0,  # epochs since the last improvement
        "history": [],  # per-epoch metrics
        "train_time_s": 0.0,
        "gradient_evals": 0,  # forward-backward passes on training batches
    }


@dataclass
class Fit:
    """One job being trained: everything the steps and the handlers share."""

    job: Job
    config: Config
    data: FoldData
    device: torch.device
    precision: Precision
    model: nn.Module  # the module (its state_dict is what is saved)
    net: nn.Module  # what runs forward: ``model`` or its ``torch.compile`` wrapper
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train: BatchLoader
    val: BatchLoader
    test: BatchLoader
    limits: Limits  # when training ends: train.budget for this job (engine.budget)
    state: dict[str, Any] = field(default_factory=new_state)
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)
    stop: bool = False


class Handler(Protocol):
    """Reacts to the loop's events; every method is optional in practice (see :class:`Base`)."""

    def started(self, fit: Fit) -> None: ...

    def epoch_completed(self, fit: Fit, metrics: dict[str, float]) -> None: ...

    def fit_completed(self, fit: Fit) -> None: ...

    def completed(self, fit: Fit, result: FoldResult) -> None: ...

    def exception_raised(self, fit: Fit, err: Exception) -> None: ...


class Base:
    """A handler that does nothing; subclasses override the events they need."""

    def started(self, fit: Fit) -> None:
        pass

    def epoch_completed(self, fit: Fit, metrics: dict[str, float]) -> None:
        pass

    def fit_completed(self, fit: Fit) -> None:
        pass

    def completed(self, fit: Fit, result: FoldResult) -> None:
        pass

    def exception_raised(self, fit: Fit, err: Exception) -> None:
        pass


# -- steps ----------------------------------------------------------------------------------------


def _as_computed(
    model: nn.Module, precision: Precision, tf32: tuple[bool, bool]
) -> tuple[set[int], torch.dtype | str | None]:
    """The parameters the kernels read in a lower precision, and that precision: bf16 under
    autocast, else TF32 for the kernels whose TF32 flag is on (``tf32``: convolutions, matmuls;
    :func:`~medbench.engine.device.tf32_kernels`)."""
    if precision.autocast:
        return cast_parameters(model), precision.dtype
    if any(tf32):
        return cast_parameters(model, conv=tf32[0], matmul=tf32[1]), TF32
    return set(), None


def setup(job: Job, config: Config, data: FoldData, device: torch.device) -> Fit:
    """Model (seeded by (model, fold, seed): the same for every optimizer), optimizer, loaders."""
    tc = config.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    precision = Precision.for_device(device, tc.amp, tc.channels_last)
    set_tf32(device, tc.tf32)
    torch.manual_seed(init_seed(job))
    model = build_model(job.model, num_classes=2, image_size=config.data.image_size).to(device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    settings = {k: getattr(config.optimizer, k) for k in config.optimizer.__dataclass_fields__}
    optimizer = build_optimizer(job.optimizer, model.parameters(), **settings)
    budget = limits(tc, -(-len(data.split.train) // tc.batch_size), passes_per_step(optimizer))
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=budget.epochs or tc.epochs)
        if tc.scheduler == "cosine"
        else None
    )
    net = torch.compile(model) if tc.compile and device.type == "cuda" else model
    common = dict(
        images=place_images(data.images, device),  # on the GPU when it fits: no copy per batch
        labels=data.labels,
        device=device,
        channels_last=precision.channels_last,
    )
    eval_batch = max(tc.batch_size, 64)
    return Fit(
        job=job,
        config=config,
        data=data,
        device=device,
        precision=precision,
        model=model,
        net=net,
        optimizer=optimizer,
        scheduler=scheduler,
        train=BatchLoader(
            index=data.split.train,
            batch_size=tc.batch_size,
            shuffle=True,
            seed=data_seed(job),
            augment=config.data.augment,
            **common,
        ),
        val=BatchLoader(index=data.split.val, batch_size=eval_batch, **common),
        test=BatchLoader(index=data.split.test, batch_size=eval_batch, **common),
        limits=budget,
        best_weights=copy.deepcopy(unwrap(model).state_dict()),
    )


@dataclass
class EpochStats:
    """What one pass over the training split did."""

    loss: float  # mean training loss
    data_time_s: float  # seconds spent waiting for batches
    gradient_evals: int  # forward-backward passes (two per SAM step)
    fidelity: float | None = None  # SAM family, first step: see medbench.optim.fidelity
    norm_ratio: float | None = None


def train_epoch(
    net: nn.Module,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: BatchLoader,
    epoch: int,
    device: torch.device,
    precision: Precision,
    freeze_bn_second_pass: bool = False,
    max_evals: int | None = None,
    deadline: float | None = None,
    tf32: tuple[bool, bool] = (False, False),
) -> EpochStats:
    """One pass over the training split, or its first steps when a budget ends it.

    ``net`` is what runs forward (possibly ``torch.compile``d), ``model`` the module it wraps.
    SAM-family optimizers take two forward-backward passes per batch; on the epoch's first step
    the fidelity of their perturbation in the compute dtype is measured (bf16 under autocast,
    TF32 for the kernels ``tf32`` names). The loss is accumulated
    on the device: one host sync per epoch, not per step. The epoch stops before a step that
    would take more than ``max_evals`` passes or start after ``deadline`` (``time.perf_counter``;
    the first step always runs, so an epoch the loop starts is never empty).
    """
    step_cost = passes_per_step(optimizer)
    two_step = step_cost == 2
    model.train()
    data_time = 0.0
    total = torch.zeros((), device=device, dtype=torch.float64)
    seen = evals = 0
    fidelity = norm_ratio = None
    batches = loader.epoch(epoch)
    while True:
        if max_evals is not None and evals + step_cost > max_evals:
            break
        if deadline is not None and evals and time.perf_counter() >= deadline:
            break
        t_data = time.perf_counter()
        try:
            x, y = next(batches)
        except StopIteration:
            break
        data_time += time.perf_counter() - t_data
        with precision.context(device):
            loss = F.cross_entropy(net(x).float(), y)
        loss.backward()
        evals += 1
        if two_step:
            measure = fidelity is None
            if measure:
                before = {id(p): p.detach().clone() for p in model.parameters()}
            optimizer.first_step(zero_grad=True)
            if measure:
                fidelity, norm_ratio = perturbation_fidelity(
                    before, optimizer.perturbation, *_as_computed(model, precision, tf32)
                )
                del before
            evals += 1
            if freeze_bn_second_pass:
                disable_running_stats(model)
            with precision.context(device):
                F.cross_entropy(net(x).float(), y).backward()
            optimizer.second_step(zero_grad=True)
            if freeze_bn_second_pass:
                enable_running_stats(model)
        else:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        total += loss.detach().double() * len(y)
        seen += len(y)
    return EpochStats(float(total.item()) / max(seen, 1), data_time, evals, fidelity, norm_ratio)


def evaluate(
    model: nn.Module, loader: BatchLoader, device: torch.device, precision: Precision
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean cross-entropy, P(malignant) and labels over one split, in loader order."""
    model.eval()
    total = torch.zeros((), device=device, dtype=torch.float64)
    probs, labels = [], []
    with torch.no_grad():
        for x, y in loader.epoch(0):
            with precision.context(device):
                logits = model(x)
            logits = logits.float()
            total += F.cross_entropy(logits, y, reduction="sum").double()
            probs.append(torch.softmax(logits, dim=1)[:, 1])
            labels.append(y)
    n = len(loader.index)
    if n == 0:
        return math.nan, np.array([]), np.array([])
    return (
        float(total.item()) / n,
        torch.cat(probs).cpu().numpy().astype(np.float64),
        torch.cat(labels).cpu().numpy(),
    )


def fit_epoch(fit: Fit) -> dict[str, float]:
    """Train one epoch, step the schedule, validate: the epoch's metrics (``EPOCH_METRICS``)."""
    epoch, tc = fit.state["epoch"], fit.config.train
    # dropout etc. draw from a generator reseeded per epoch: a resumed job continues exactly
    torch.manual_seed(derive_seed("epoch", init_seed(fit.job), epoch))
    start = time.perf_counter()
    seconds_left = fit.limits.seconds_left(fit.state)
    stats = train_epoch(
        fit.net,
        fit.model,
        fit.optimizer,
        fit.train,
        epoch,
        fit.device,
        fit.precision,
        tc.freeze_bn_second_pass,
        max_evals=fit.limits.evals_left(fit.state),
        deadline=None if seconds_left is None else start + seconds_left,
        tf32=tf32_kernels(fit.device, tc.tf32),
    )
    if not math.isfinite(stats.loss):
        raise Diverged(f"training loss became {stats.loss} in epoch {epoch}")
    fit.state["gradient_evals"] = fit.state.get("gradient_evals", 0) + stats.gradient_evals
    if fit.scheduler is not None:
        fit.scheduler.step()
    val_loss, val_probs, val_labels = evaluate(fit.net, fit.val, fit.device, fit.precision)
    if not np.isfinite(val_probs).all():  # the last steps' weights: NaN outputs, finite loss
        raise Diverged(f"validation outputs became non-finite after epoch {epoch}")
    vm = binary_metrics(val_labels, val_probs, tc.threshold)
    metrics = {
        "train_loss": stats.loss,
        "val_loss": val_loss,
        "val_auc": vm["auc"],
        "val_accuracy": vm["accuracy"],
        "epoch_time_s": time.perf_counter() - start,
        "data_time_s": stats.data_time_s,
        "lr": fit.optimizer.param_groups[0]["lr"],
        "epoch_gradient_evals": stats.gradient_evals,
    }
    if stats.fidelity is not None:
        metrics["perturbation_fidelity"] = stats.fidelity
        metrics["perturbation_norm_ratio"] = stats.norm_ratio
    return metrics


def prediction_frame(
    rows: pd.DataFrame,
    labels: np.ndarray,
    probs: np.ndarray,
    fold: object = None,
    repeat: int | None = None,
) -> pd.DataFrame:
    """One row per tested image (``PREDICTION_COLUMNS``) from its manifest ``rows``; ``fold``
    replaces their folds (an external dataset's images carry the fold of the checkpoint);
    ``repeat`` (with ``cv.repeats`` > 1) fills the optional ``repeat`` column."""
    frame = pd.DataFrame(
        {
            "id": rows["id"].astype(str).to_numpy(),
            "site": rows["site"].astype("string").fillna("").to_numpy(),
            "fold": rows["fold"].to_numpy() if fold is None else np.full(len(rows), fold, object),
            "label": labels.astype(int),
            "prob_malignant": probs,
            "birads_reader1": rows["birads_reader1"].astype("string").fillna("").to_numpy(),
            "birads_reader2": rows["birads_reader2"].astype("string").fillna("").to_numpy(),
        }
    )
    if repeat is not None:
        frame["repeat"] = int(repeat)
    return frame


def logged_repeat(fit: Fit) -> int | None:
    """The repeat a fold run's predictions carry: its job's with ``cv.repeats`` > 1, else none
    (predictions.csv as a grid without repeats writes it)."""
    return fit.job.repeat if fit.config.cv.repeats > 1 else None


def test_selected(fit: Fit) -> FoldResult:
    """Load the selected weights and evaluate them once on the held-out fold."""
    threshold = fit.config.train.threshold
    unwrap(fit.model).load_state_dict(fit.best_weights)
    test_loss, probs, labels = evaluate(fit.net, fit.test, fit.device, fit.precision)
    rows = fit.data.manifest.iloc[fit.data.split.test]
    predictions = prediction_frame(rows, labels, probs, repeat=logged_repeat(fit))
    sites = {}
    for site, part in predictions.groupby("site"):
        if site:
            m = binary_metrics(
                part["label"].to_numpy(), part["prob_malignant"].to_numpy(), threshold
            )
            sites[site] = {k: m[k] for k in SITE_METRICS}
    return FoldResult(
        test=binary_metrics(labels, probs, threshold),
        sites=sites,
        predictions=predictions,
        test_loss=test_loss,
        best_epoch=fit.state["best_epoch"],
        train_time_s=fit.state["train_time_s"],
        gradient_evals=fit.state.get("gradient_evals", 0),
        history=fit.state["history"],
    )


def fit_job(
    job: Job,
    config: Config,
    data: FoldData,
    device: torch.device,
    handlers: Sequence[Handler] = (),
) -> Fit:
    """Set up ``job`` and train it until its budget or early stopping ends it (no test).

    ``handlers`` run in order at each event; :func:`~medbench.engine.handlers.default_handlers`
    gives the engine's. Raises :class:`Diverged` on a NaN/infinite loss (after the handlers'
    ``exception_raised``) and lets ``KeyboardInterrupt`` through.
    """
    fit = setup(job, config, data, device)
    try:
        for h in handlers:
            h.started(fit)
        while not fit.limits.reached(fit.state) and not fit.stop:
            metrics = fit_epoch(fit)
            fit.state["history"].append({"epoch": fit.state["epoch"], **metrics})
            fit.state["train_time_s"] += metrics["epoch_time_s"]
            fit.state["epoch"] += 1
            for h in handlers:
                h.epoch_completed(fit, metrics)
    except Exception as err:
        for h in handlers:
            h.exception_raised(fit, err)
        raise
    for h in handlers:
        h.fit_completed(fit)
    return fit


def train_job(
    job: Job,
    config: Config,
    data: FoldData,
    device: torch.device,
    handlers: Sequence[Handler] = (),
) -> FoldResult:
    """Train ``job`` (:func:`fit_job`) and test its selected checkpoint on the held-out fold."""
    fit = fit_job(job, config, data, device, handlers)
    result = test_selected(fit)
    for h in handlers:
        h.completed(fit, result)
    return result


def unwrap(model: nn.Module) -> nn.Module:
    """The module itself when ``model`` is its ``torch.compile`` wrapper (what is saved)."""
    return getattr(model, "_orig_mod", model)
