"""One job, end to end, in whatever process runs it: the unit every executor calls.

A :class:`JobSpec` holds plain values only (picklable, for Ray); :func:`run_job` prepares the
dataset (once per process), finds or creates the job's child run, trains with the engine's
handlers, and writes the result through the tracking layer. Its :class:`JobOutcome` says how the
job ended in a typed way, so executors decide on retries from ``retryable``, never from text.

Resume rule: a job whose child run is FINISHED (same config hash and dataset fingerprint) is
skipped; an unfinished one continues from its checkpoint when the checkpoint belongs to that
run, or in the run tuning prepared (``JobSpec.run_id``, which holds the trial runs), otherwise
its run is deleted and the job starts afresh. So rerunning a command never duplicates a run and
never loses a finished one.
"""

from __future__ import annotations

import contextlib
import enum
import platform
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from medbench.config import Config, data_settings
from medbench.data.dataset import Dataset, prepare_dataset, prepare_externals
from medbench.data.folds import split_fold
from medbench.engine.budget import to_target
from medbench.engine.device import resolve_device
from medbench.engine.jobs import Job, data_seed, derive_seed, hyperparameters, init_seed
from medbench.engine.train import Diverged, FoldData, default_handlers, load_checkpoint, train_job
from medbench.errors import StorageError, TrackingError
from medbench.paths import cache_dir
from medbench.tracking import Tracker
from medbench.tracking import schema as s


class Status(str, enum.Enum):
    """How a job ended; the values are MLflow's run statuses (and SKIPPED: already done)."""

    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    SKIPPED = "SKIPPED"


@dataclass
class JobSpec:
    """Everything a worker needs to run one job: plain values only."""

    job: Job
    config: Config
    tracking_uri: str
    parent_id: str
    config_hash: str
    fingerprint: str  # of the dataset the grid prepared: a worker's data must match it
    run_id: str | None = None  # the fold run tuning prepared (its trials nested in it)
    external: dict[str, str] = field(default_factory=dict)  # external dataset -> fingerprint


@dataclass
class JobOutcome:
    job: Job
    status: Status
    run_id: str | None = None
    reason: str | None = None  # why it FAILED or was KILLED, one line
    retryable: bool = False  # a failure another attempt may not repeat (not a divergence)
    test_auc: float | None = None  # FINISHED: for the one-line progress report
    epochs: int | None = None
    seconds: float | None = None

    def line(self, name: str | None = None) -> str:
        """One line for logs: the run's name, its status and, when a job finished, its test
        AUC and cost."""
        text = f"{name or self.job.run_name:<28} {self.status.value}"
        if self.status == Status.FINISHED and self.epochs is not None:
            auc = (
                "n/a"
                if self.test_auc is None or self.test_auc != self.test_auc
                else f"{self.test_auc:.3f}"
            )
            text += f"  test AUC {auc}  {self.epochs} epochs  {self.seconds:.1f} s"
        elif self.reason:
            text += f": {self.reason}"
        return text


def fold_data(dataset: Dataset, config: Config, job: Job) -> FoldData:
    """The job's train / validation / test rows; the validation split is seeded by the seed."""
    split = split_fold(
        dataset.manifest,
        job.fold,
        val_fraction=config.data.val_fraction,
        seed=derive_seed("val", job.seed),
    )
    return FoldData(
        images=dataset.images, labels=dataset.labels, manifest=dataset.manifest, split=split
    )


def checkpoint_path(spec: JobSpec) -> Path:
    """The job's resumable state, in the cache: one folder per (config, dataset)."""
    safe = spec.job.key.replace("/", "__")
    folder = f"{spec.config_hash}-{spec.fingerprint[:12]}"
    return cache_dir() / "checkpoints" / spec.config.name / folder / f"{safe}.pt"


def environment_tags(device: torch.device) -> dict[str, str]:
    """Where a fold run ran (``ENVIRONMENT_TAGS``)."""
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, "
        f"{torch.backends.cpu.get_cpu_capability()} kernels"  # see medbench.cpu_paths
    )
    return {
        s.TAG_DEVICE: f"{device.type}: {name}",
        s.TAG_PYTHON: platform.python_version(),
        s.TAG_TORCH: torch.__version__,
        s.TAG_PLATFORM: platform.platform(),
    }


def _progress_bar(spec: JobSpec):
    from tqdm.auto import tqdm

    return tqdm(total=spec.config.train.epochs, desc=spec.job.run_name, unit="epoch", leave=False)


def run_job(spec: JobSpec, progress: bool = False, bar: Any = None) -> JobOutcome:
    """Run one job end to end, tracked in its child run; safe to call again after any crash.

    ``progress``: a tqdm bar per epoch; ``bar``: a bar-like object to advance instead (the
    packed executor's relay to its display)."""
    job, config = spec.job, spec.config
    data = data_settings(config.data)
    dataset = prepare_dataset(data, min(config.seeds))
    externals = prepare_externals(data)
    tracker = Tracker(spec.tracking_uri, config.name)
    mismatch = _data_mismatch(spec, dataset, externals)
    if mismatch:
        return JobOutcome(job, Status.FAILED, None, mismatch)
    refs = tracker.find_child(job.key, spec.config_hash, spec.fingerprint)
    # a finished run tested on other external data is stale: deleted below and run again
    external = s.external_fingerprints(spec.external)
    done = [r for r in refs if r.status == Status.FINISHED and r.external == external]
    if done:
        return JobOutcome(job, Status.SKIPPED, done[0].run_id)
    ckpt = checkpoint_path(spec)
    saved_run = ((load_checkpoint(ckpt) or {}).get("meta") or {}).get("run_id")
    ids = {r.run_id for r in refs}
    resume = saved_run if saved_run in ids else None
    prepared = spec.run_id if spec.run_id in ids else None
    for ref in refs:
        if ref.run_id not in (resume, prepared):
            tracker.delete(ref.run_id)
    device = resolve_device(config.train.device)
    fold = fold_data(dataset, config, job)
    if resume is None:
        ckpt.unlink(missing_ok=True)
        if prepared is None:
            run_id = start_fold_run(tracker, spec, dataset, fold, device, externals)
        else:
            run_id = prepared
            tracker.set_status(run_id, "RUNNING")
            tracker.set_tags(run_id, {**environment_tags(device), **_external_tag(spec)})
        # a prepared run holds the epochs of an earlier attempt, which a rerun repeats
        logged: set[int] = set() if prepared is None else tracker.logged_epochs(run_id)
    else:
        run_id = resume
        tracker.set_status(run_id, "RUNNING")
        logged = tracker.logged_epochs(run_id)

    def log(epoch: int, metrics: dict[str, float]) -> None:
        if epoch not in logged:
            tracker.log_epoch(run_id, epoch, metrics)
            logged.add(epoch)

    if resume is not None:  # epochs checkpointed but not yet logged
        for row in load_checkpoint(ckpt)["state"]["history"]:
            log(row["epoch"], {k: v for k, v in row.items() if k != "epoch"})
    if bar is None and progress:
        bar = _progress_bar(spec)
    handlers = default_handlers(config, ckpt, log, bar, meta={"run_id": run_id}, external=externals)
    try:
        result = train_job(job, config, fold, device, handlers)
    except Diverged as err:
        reason = f"diverged: {err}"
        tracker.finish(run_id, Status.FAILED, reason)
        ckpt.unlink(missing_ok=True)
        return JobOutcome(job, Status.FAILED, run_id, reason)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into one by the grid: checkpoint kept
        tracker.finish(run_id, Status.KILLED, "interrupted by the user")
        return JobOutcome(job, Status.KILLED, run_id, "interrupted by the user")
    except (StorageError, TrackingError) as err:  # a full disk, a lost store: stop the grid
        with contextlib.suppress(TrackingError):
            tracker.finish(run_id, Status.FAILED, str(err))
        raise
    except Exception as err:  # noqa: BLE001 - one broken job must not stop the grid
        reason = f"{type(err).__name__}: {err}"
        tracker.set_tags(run_id, {s.TAG_TRACEBACK: traceback.format_exc()[-4000:]})
        tracker.finish(run_id, Status.FAILED, reason)
        return JobOutcome(job, Status.FAILED, run_id, reason, retryable=True)
    finally:
        if bar is not None:
            bar.close()
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
    target = to_target(result.history, config.report.target_val_auc)
    tracker.log_compute(run_id, {"gradient_evals": result.gradient_evals, **target})
    if result.flatness is not None:
        tracker.log_flatness(run_id, result.flatness)
    tracker.finish(run_id, Status.FINISHED)
    ckpt.unlink(missing_ok=True)
    return JobOutcome(
        job,
        Status.FINISHED,
        run_id,
        test_auc=result.test["auc"],
        epochs=len(result.history),
        seconds=result.train_time_s,
    )


def _data_mismatch(spec: JobSpec, dataset: Dataset, externals: dict[str, Dataset]) -> str | None:
    """Why the data prepared here is not what the grid prepared (fingerprints), or None."""
    here = {
        "the dataset": dataset,
        **{f"the external dataset {n!r}": d for n, d in externals.items()},
    }
    grid = {
        "the dataset": spec.fingerprint,
        **{f"the external dataset {n!r}": fp for n, fp in spec.external.items()},
    }
    for what in sorted(here.keys() | grid.keys()):
        mine, theirs = here.get(what), grid.get(what)
        if mine is None or theirs is None or mine.fingerprint != theirs:
            found = f"at {mine.root} (fingerprint {mine.fingerprint[:12]})" if mine else "absent"
            return f"{what} differs here: {found}; the grid's: {(theirs or 'absent')[:12]}"
    return None


def _external_tag(spec: JobSpec) -> dict[str, str]:
    return {s.TAG_EXTERNAL: s.external_fingerprints(spec.external)} if spec.external else {}


def start_fold_run(
    tracker: Tracker,
    spec: JobSpec,
    dataset: Dataset,
    fold: FoldData,
    device: torch.device,
    externals: dict[str, Dataset] | None = None,
) -> str:
    """Create the job's fold run. Its ``lr`` and ``rho`` are the config's; with tuning, they are
    logged once chosen (:mod:`medbench.engine.tuning`)."""
    job, config = spec.job, spec.config
    opt = config.optimizer
    chosen = {} if config.tune.enabled else hyperparameters(job.optimizer, opt.lr, opt.rho)
    run_id = tracker.start_child(
        spec.parent_id,
        job.model,
        job.optimizer,
        job.fold,
        job.seed,
        {
            "fold": job.fold,
            "seed": job.seed,
            "model": job.model,
            "optimizer": job.optimizer,
            "init_seed": init_seed(job),
            "data_seed": data_seed(job),
            "n_train": len(fold.split.train),
            "n_val": len(fold.split.val),
            "n_test": len(fold.split.test),
            **chosen,
        },
        spec.config_hash,
        spec.fingerprint,
        tags={**environment_tags(device), **_external_tag(spec)},
    )
    tracker.log_dataset(
        run_id, dataset.manifest, dataset.root.name, str(dataset.root), spec.fingerprint, "training"
    )
    for name, external in (externals or {}).items():
        tracker.log_dataset(
            run_id, external.manifest, name, str(external.root), external.fingerprint, "external"
        )
    return run_id


def close_runs(spec: JobSpec, status: Status, reason: str) -> JobOutcome:
    """Close a job's RUNNING runs from outside its process (a lost worker, an interrupt)."""
    tracker = Tracker(spec.tracking_uri, spec.config.name)
    run_id = None
    for ref in tracker.find_child(spec.job.key, spec.config_hash, spec.fingerprint):
        run_id = ref.run_id
        if ref.status == "RUNNING":
            tracker.finish(ref.run_id, status, reason)
    return JobOutcome(spec.job, status, run_id, reason)
