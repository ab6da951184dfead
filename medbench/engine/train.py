"""Train one job: a plain PyTorch loop with validation-based early stopping, then the test fold.

Selection never looks at the test fold: early stopping and the best checkpoint use the
validation split carved from the training folds. Every epoch reseeds the global RNG from
(job, epoch), so a job resumed from its last checkpoint continues exactly as if it had never
stopped, and batches come from :class:`BatchLoader` in an order fixed by (fold, seed, epoch).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from medbench.config import Config
from medbench.data.folds import FoldSplit
from medbench.data.loader import BatchLoader
from medbench.engine.jobs import Job, data_seed, derive_seed, init_seed
from medbench.metrics import binary_metrics
from medbench.models import build_model
from medbench.paths import atomic_write


class Diverged(RuntimeError):
    """The training loss became NaN or infinite: the job stops and its run is marked FAILED."""


@dataclass
class FoldData:
    """What one job trains on: the whole dataset's preprocessed images and this fold's split."""

    images: torch.Tensor  # uint8 (N, 3, S, S)
    labels: torch.Tensor  # int64 (N,)
    manifest: pd.DataFrame  # id, site, fold, label, birads_reader1/2 (row order = images)
    split: FoldSplit


@dataclass
class JobResult:
    status: str  # FINISHED | FAILED | KILLED
    metrics: dict[str, float] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    flatness: dict[str, Any] | None = None
    reason: str | None = None


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        from medbench.errors import ConfigError

        raise ConfigError(
            f"train.device: {name!r} asked for but no CUDA device is available (use auto or cpu)"
        )
    return device


@dataclass(frozen=True)
class Precision:
    """How tensors are laid out and computed on the device (bf16 autocast, channels_last)."""

    autocast: bool
    channels_last: bool

    @classmethod
    def for_device(
        cls, device: torch.device, amp: str = "auto", channels_last: str = "auto"
    ) -> Precision:
        cuda = device.type == "cuda"
        return cls(
            autocast=(amp == "bf16") or (amp == "auto" and cuda),
            channels_last=(channels_last == "on") or (channels_last == "auto" and cuda),
        )

    def context(self, device: torch.device):
        if not self.autocast:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - an unreadable checkpoint means: start this job afresh
        return None


def _module(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)  # unwrap torch.compile


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


def _improved(value: float, best: float | None, monitor: str, min_delta: float) -> bool:
    if math.isnan(value):
        return best is None
    if best is None or math.isnan(best):
        return True
    return value > best + min_delta if monitor == "val_auc" else value < best - min_delta


def train_epoch(
    net: nn.Module,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: BatchLoader,
    epoch: int,
    device: torch.device,
    precision: Precision,
    freeze_bn_second_pass: bool = False,
) -> tuple[float, float]:
    """One pass over the training split; returns (mean loss, seconds spent waiting for batches).

    ``net`` is what runs forward (possibly ``torch.compile``d), ``model`` the module it wraps.
    SAM-family optimizers take two forward-backward passes per batch. The loss is accumulated on
    the device: one host sync per epoch, not per step.
    """
    from medbench.optim import SAM, disable_running_stats, enable_running_stats

    two_step = isinstance(optimizer, SAM)
    model.train()
    data_time = 0.0
    total = torch.zeros((), device=device, dtype=torch.float64)
    seen = 0
    batches = loader.epoch(epoch)
    while True:
        t_data = time.perf_counter()
        try:
            x, y = next(batches)
        except StopIteration:
            break
        data_time += time.perf_counter() - t_data
        with precision.context(device):
            loss = F.cross_entropy(net(x).float(), y)
        loss.backward()
        if two_step:
            optimizer.first_step(zero_grad=True)
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
    return float(total.item()) / max(seen, 1), data_time


def train_job(
    job: Job,
    config: Config,
    data: FoldData,
    device: torch.device,
    checkpoint: Path | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    progress: Any = None,
    meta: dict[str, Any] | None = None,
) -> JobResult:
    """Train ``job`` and test its best checkpoint on the held-out fold.

    ``checkpoint`` is this job's resumable state file; when it exists, training continues from it.
    ``on_epoch(epoch, metrics)`` is called after each epoch (the tracker logs there).
    ``meta`` is stored in the checkpoint (the run id it belongs to).
    """
    from medbench.optim import build_optimizer

    tc = config.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    precision = Precision.for_device(device, tc.amp, tc.channels_last)
    torch.manual_seed(init_seed(job))
    model = build_model(job.model, num_classes=2, image_size=config.data.image_size).to(device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(job.optimizer, model.parameters(), **asdict(config.optimizer))
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=tc.epochs)
        if tc.scheduler == "cosine"
        else None
    )
    net = torch.compile(model) if tc.compile and device.type == "cuda" else model

    seed = data_seed(job)
    common = dict(
        images=data.images, labels=data.labels, device=device, channels_last=precision.channels_last
    )
    train = BatchLoader(
        index=data.split.train,
        batch_size=tc.batch_size,
        shuffle=True,
        seed=seed,
        augment=config.data.augment,
        **common,
    )
    val = BatchLoader(index=data.split.val, batch_size=max(tc.batch_size, 64), **common)
    test = BatchLoader(index=data.split.test, batch_size=max(tc.batch_size, 64), **common)

    state: dict[str, Any] = {
        "epoch": 0,
        "best": None,
        "best_epoch": 0,
        "bad_epochs": 0,
        "history": [],
        "train_time_s": 0.0,
    }
    best_weights = copy.deepcopy(_module(model).state_dict())
    saved = load_checkpoint(checkpoint) if checkpoint else None
    if saved is not None and saved.get("job") == job.key:
        _module(model).load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler"):
            scheduler.load_state_dict(saved["scheduler"])
        best_weights = saved["best_model"]
        state = saved["state"]

    monitor, patience, min_delta = (
        tc.early_stopping.monitor,
        tc.early_stopping.patience,
        tc.early_stopping.min_delta,
    )
    try:
        for epoch in range(state["epoch"], tc.epochs):
            # dropout etc. draw from a generator reseeded per epoch: a resumed job continues exactly
            torch.manual_seed(derive_seed("epoch", init_seed(job), epoch))
            start = time.perf_counter()
            train_loss, data_time = train_epoch(
                net, model, optimizer, train, epoch, device, precision, tc.freeze_bn_second_pass
            )
            if not math.isfinite(train_loss):
                raise Diverged(f"training loss became {train_loss} in epoch {epoch}")
            if scheduler is not None:
                scheduler.step()
            val_loss, val_probs, val_labels = evaluate(net, val, device, precision)
            vm = binary_metrics(val_labels, val_probs, tc.threshold)
            epoch_time = time.perf_counter() - start
            metrics = {
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_auc": vm["auc"],
                "val_accuracy": vm["accuracy"],
                "epoch_time_s": epoch_time,
                "data_time_s": data_time,
                "lr": optimizer.param_groups[0]["lr"],
            }
            value = metrics[monitor]
            if _improved(value, state["best"], monitor, min_delta):
                state["best"], state["best_epoch"], state["bad_epochs"] = value, epoch, 0
                best_weights = copy.deepcopy(_module(model).state_dict())
            else:
                state["bad_epochs"] += 1
            state["history"].append({"epoch": epoch, **metrics})
            state["train_time_s"] += epoch_time
            state["epoch"] = epoch + 1
            stop = state["bad_epochs"] >= patience
            if checkpoint is not None and (
                stop or epoch + 1 == tc.epochs or (epoch + 1) % tc.checkpoint_every == 0
            ):
                snapshot = {
                    "job": job.key,
                    "meta": meta or {},
                    "model": _module(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "best_model": best_weights,
                    "state": state,
                }
                atomic_write(checkpoint, partial(torch.save, snapshot))
            if on_epoch is not None:
                on_epoch(epoch, metrics)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{train_loss:.3f}", val_auc=f"{vm['auc']:.3f}")
            if stop:
                break
    except Diverged as err:
        return JobResult("FAILED", history=state["history"], reason=f"diverged: {err}")
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (turned into one by the grid): run KILLED
        return JobResult("KILLED", history=state["history"], reason="interrupted by the user")

    _module(model).load_state_dict(best_weights)
    test_loss, probs, labels = evaluate(net, test, device, precision)
    tm = binary_metrics(labels, probs, tc.threshold)
    metrics = {f"test_{k}": v for k, v in tm.items()}
    metrics.update(
        test_loss=test_loss, best_epoch=state["best_epoch"], train_time_s=state["train_time_s"]
    )
    rows = data.manifest.iloc[data.split.test]
    predictions = pd.DataFrame(
        {
            "id": rows["id"].astype(str).to_numpy(),
            "site": rows["site"].astype("string").fillna("").to_numpy(),
            "fold": rows["fold"].to_numpy(),
            "label": labels.astype(int),
            "prob_malignant": probs,
            "birads_reader1": rows["birads_reader1"].astype("string").fillna("").to_numpy(),
            "birads_reader2": rows["birads_reader2"].astype("string").fillna("").to_numpy(),
        }
    )
    for site, part in predictions.groupby("site"):
        if site:
            sm = binary_metrics(
                part["label"].to_numpy(), part["prob_malignant"].to_numpy(), tc.threshold
            )
            metrics[f"test_auc_site_{site}"] = sm["auc"]
            metrics[f"test_accuracy_site_{site}"] = sm["accuracy"]
    flat = None
    if config.flatness.enabled:
        flat = _flatness(model, data, config, device)
        metrics.update({k: v for k, v in flat.items() if isinstance(v, float)})
    return JobResult(
        "FINISHED",
        metrics=metrics,
        predictions=predictions,
        history=state["history"],
        flatness=flat,
    )


def _flatness(
    model: nn.Module, data: FoldData, config: Config, device: torch.device
) -> dict[str, Any]:
    """Flatness of the best checkpoint on a fixed seeded subset of this fold's training data."""
    from medbench.flatness import FlatnessSettings, measure_flatness

    fc = config.flatness
    settings = FlatnessSettings(
        n_samples=fc.n_samples,
        batch_size=fc.batch_size,
        power_iters=fc.power_iters,
        hutchinson_samples=fc.hutchinson_samples,
        landscape_points=fc.landscape_points,
        landscape_radius=fc.landscape_radius,
        rho=config.optimizer.rho,
        seed=0,
    )
    train_rows = torch.as_tensor(np.asarray(data.split.train, dtype=np.int64))
    result = measure_flatness(
        model,
        nn.CrossEntropyLoss(),
        data.images,
        data.labels,
        settings,
        device=device,
        rows=train_rows,
    )
    return {
        **{k: float(v) for k, v in result.metrics().items()},
        "hessian_trace_stderr": float(result.trace_stderr),
        "landscape_alphas": [float(a) for a in result.landscape_alphas],
        "landscape_losses": [float(v) for v in result.landscape_losses],
        "seconds": float(sum(result.seconds.values())),  # measured cost, bounded by the settings
        "seconds_by_measure": result.seconds,
        "n_samples": result.n_samples,
    }
