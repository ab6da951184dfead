"""The job runner: one fold job or one tuning trial, tracked in its MLflow run, in whatever
process runs it.

``with job_run(spec) as run:`` prepares what both need (the dataset and the external datasets,
once per process; the tracker; the device; the job's fold), checks that the data prepared here
is the data the grid prepared (fingerprints), finds the run again or starts it (deleting stale
ones), and yields a :class:`JobRun` whose ``outcome`` is already set when there is nothing to
run. The body trains; the runner maps how it ended to the run's status: :class:`Diverged` ->
FAILED, not retryable (``"diverged: ..."``, the checkpoint deleted: a rerun repeats it);
``KeyboardInterrupt`` (Ctrl-C, or SIGTERM made one) -> KILLED, checkpoint kept; a full disk or
a lost store -> FAILED, then raised (the grid stops); any other exception -> FAILED, retryable,
checkpoint kept, traceback tagged; a normal end -> FINISHED, checkpoint deleted.

Resume rule of a fold job: a job whose child run is FINISHED (same config hash and dataset
fingerprint, tested on the same external data) is skipped; an unfinished one continues from its
checkpoint when the checkpoint belongs to that run, or in the run tuning prepared
(``JobSpec.run_id``, which holds the trial runs), otherwise its run is deleted and the job starts
afresh. A trial's run is nested under its job's fold run (created by the study's first trial): a
FINISHED trial is skipped, any other attempt of it deleted and run again. So rerunning a command
never duplicates a run and never loses a finished one.
"""

from __future__ import annotations

import contextlib
import platform
import traceback
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from medbench.config import Config, data_settings
from medbench.data.dataset import Dataset, prepare_dataset, prepare_externals
from medbench.data.folds import split_fold
from medbench.engine.device import Precision, resolve_device, tf32_kernels
from medbench.engine.handlers import checkpoint_mismatch, load_checkpoint
from medbench.engine.interrupts import stop_reason
from medbench.engine.jobs import Job, data_seed, hyperparameters, init_seed, val_seed
from medbench.engine.train import Diverged, FoldData
from medbench.engine.work import JobOutcome, JobSpec, Status, TrialOutcome, TrialSpec
from medbench.errors import MedbenchWarning, StorageError, TrackingError
from medbench.models import build_model
from medbench.paths import cache_dir
from medbench.tracking import Tracker
from medbench.tracking import schema as s

#: How the reason of a run that diverged starts: a trial that diverged counts as tried.
DIVERGED = "diverged: "


@dataclass
class JobRun:
    """A fold job or a trial under way: what its body needs (from :func:`job_run`)."""

    spec: JobSpec | TrialSpec
    tracker: Tracker
    dataset: Dataset
    externals: dict[str, Dataset]
    device: torch.device | None = None  # None: the data differ from the grid's (outcome set)
    fold: FoldData | None = None  # the job's outer fold (a trial trains on part of it)
    run_id: str | None = None  # the run the body logs to: the fold run, or the trial's
    fold_run_id: str | None = None  # a trial's fold run
    checkpoint: Path | None = None  # a fold job's resumable state
    logged: set[int] = field(default_factory=set)  # epochs the run holds already
    outcome: JobOutcome | None = None  # set before the body when there is nothing to run
    stats: dict[str, Any] = field(default_factory=dict)  # FINISHED: test_auc, epochs, seconds

    @property
    def job_spec(self) -> JobSpec:
        return self.spec.job_spec if isinstance(self.spec, TrialSpec) else self.spec

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Log an epoch's metrics once: a resumed run holds some epochs already."""
        if epoch not in self.logged:
            self.tracker.log_epoch(self.run_id, epoch, metrics)
            self.logged.add(epoch)

    def end(self, status: Status, reason: str | None = None, **details: Any) -> JobOutcome:
        """The outcome of this run ending with ``status``."""
        if isinstance(self.spec, TrialSpec):
            return TrialOutcome(
                self.spec.job,
                status,
                self.run_id,
                reason,
                **details,
                trial=self.spec.trial,
                fold_run_id=self.fold_run_id,
            )
        return JobOutcome(self.spec.job, status, self.run_id, reason, **details)


@contextlib.contextmanager
def job_run(spec: JobSpec | TrialSpec) -> Iterator[JobRun]:
    """Prepare, check and open the run of ``spec``, let the body train, and end the run with
    the status of how the body ended (see the module's docstring); ``run.outcome`` holds the
    outcome afterwards."""
    run = _prepare(spec)
    if run.outcome is None:
        if isinstance(spec, TrialSpec):
            _open_trial(run, spec)
        else:
            _open_job(run, spec)
    if run.outcome is not None:  # finished before, or the data here are not the grid's
        yield run
        return
    tracker, run_id = run.tracker, run.run_id
    try:
        yield run
    except Diverged as err:
        reason = f"{DIVERGED}{err}"
        tracker.finish(run_id, Status.FAILED, reason)
        _drop_checkpoint(run)
        run.outcome = run.end(Status.FAILED, reason)
    except KeyboardInterrupt as err:  # Ctrl-C, SIGTERM, the grid's stop: the checkpoint is kept
        label = stop_reason(err)
        tracker.finish(run_id, Status.KILLED, label)
        if run.fold_run_id is not None:
            reason = f"{label} (tuning, trial {spec.trial})"
            tracker.finish(run.fold_run_id, Status.KILLED, reason)
        run.outcome = run.end(Status.KILLED, label)
    except (StorageError, TrackingError) as err:  # a full disk, a lost store: stop the grid
        with contextlib.suppress(TrackingError):
            tracker.finish(run_id, Status.FAILED, str(err))
        raise
    except Exception as err:  # noqa: BLE001 - one broken job must not stop the grid
        reason = f"{type(err).__name__}: {err}"
        tracker.set_tags(run_id, {s.TAG_TRACEBACK: traceback.format_exc()[-4000:]})
        tracker.finish(run_id, Status.FAILED, reason)
        run.outcome = run.end(Status.FAILED, reason, retryable=True)
    else:
        tracker.finish(run_id, Status.FINISHED)
        _drop_checkpoint(run)
        run.outcome = run.end(Status.FINISHED, **run.stats)


def _drop_checkpoint(run: JobRun) -> None:
    if run.checkpoint is not None:
        run.checkpoint.unlink(missing_ok=True)


def _prepare(spec: JobSpec | TrialSpec) -> JobRun:
    """The data (checked against the grid's), the tracker, the device and the outer fold."""
    job_spec = spec.job_spec if isinstance(spec, TrialSpec) else spec
    config = job_spec.config
    data = data_settings(config.data)
    dataset = prepare_dataset(data, min(config.seeds), repeats=config.cv.repeats)
    externals = prepare_externals(data)
    run = JobRun(spec, Tracker(job_spec.tracking_uri, config.name), dataset, externals)
    mismatch = data_mismatch(job_spec, dataset, externals)
    if mismatch:
        run.outcome = run.end(Status.FAILED, mismatch)
        return run
    run.device = resolve_device(config.train.device)
    run.fold = fold_data(dataset, config, job_spec.job)
    return run


def _open_job(run: JobRun, spec: JobSpec) -> None:
    """Skip a finished job, or continue or start its fold run (the resume rule)."""
    tracker = run.tracker
    refs = tracker.find_child(spec.job.key, spec.config_hash, spec.fingerprint)
    # a finished run tested on other external data is stale: deleted below and run again
    external = s.external_fingerprints(spec.external)
    done = [r for r in refs if r.status == Status.FINISHED and r.external == external]
    if done:
        run.run_id = done[0].run_id
        run.outcome = run.end(Status.SKIPPED)
        return
    ckpt = run.checkpoint = checkpoint_path(spec)
    saved = _fitting_checkpoint(ckpt, spec)
    saved_run = ((saved or {}).get("meta") or {}).get("run_id")
    ids = {r.run_id for r in refs}
    resume = saved_run if saved_run in ids else None
    prepared = spec.run_id if spec.run_id in ids else None
    for ref in refs:
        if ref.run_id not in (resume, prepared):
            tracker.delete(ref.run_id)
    if resume is not None:
        run.run_id = resume
        tracker.set_status(resume, "RUNNING")
        run.logged = tracker.logged_epochs(resume)
        for row in saved["state"]["history"]:  # epochs checkpointed but not yet logged
            run.log_epoch(row["epoch"], {k: v for k, v in row.items() if k != "epoch"})
        return
    ckpt.unlink(missing_ok=True)
    if prepared is None:
        run.run_id = start_fold_run(run)
        return
    # a prepared run holds the epochs of an earlier attempt, which a rerun repeats
    run.run_id = prepared
    tracker.set_status(prepared, "RUNNING")
    tracker.set_tags(prepared, {**environment_tags(run.device, spec.config), **_external_tag(spec)})
    run.logged = tracker.logged_epochs(prepared)


def _fitting_checkpoint(path: Path, spec: JobSpec) -> dict[str, Any] | None:
    """The job's checkpoint when its weights fit the job's model; one that does not (a tensor
    of another shape: it would fail the job on every rerun) is deleted with a warning, and the
    job starts afresh in a new run."""
    saved = load_checkpoint(path)
    if saved is None:
        return None
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = build_model(spec.job.model, num_classes=2, image_size=spec.config.data.image_size)
    problem = checkpoint_mismatch(saved, model)
    if problem is None:
        return saved
    path.unlink(missing_ok=True)
    warnings.warn(
        f"{spec.name}: its checkpoint {path} does not fit the model ({problem}); it was deleted "
        "and the job starts afresh",
        MedbenchWarning,
        stacklevel=2,
    )
    return None


def _open_trial(run: JobRun, spec: TrialSpec) -> None:
    """Find or start the job's fold run, then skip a finished trial or start its run."""
    tracker, job = run.tracker, spec.job
    if spec.job_spec.run_id is not None:
        fold_run_id = spec.job_spec.run_id
    else:  # the study's first trial; retried, it finds the fold run it made
        refs = tracker.find_child(job.key, spec.job_spec.config_hash, spec.job_spec.fingerprint)
        unfinished = [r.run_id for r in refs if r.status != Status.FINISHED]
        fold_run_id = unfinished[0] if unfinished else start_fold_run(run)
    tracker.set_status(fold_run_id, "RUNNING")
    run.fold_run_id = fold_run_id
    earlier = tracker.trials(fold_run_id)
    for row in earlier[earlier["trial"] == spec.trial].itertuples():
        if row.status == Status.FINISHED:
            run.run_id = row.run_id
            run.outcome = run.end(Status.SKIPPED)
            return
        tracker.delete(row.run_id)  # an interrupted or failed attempt: rerun
    run.run_id = tracker.start_trial(
        fold_run_id,
        job.model,
        job.optimizer,
        job.fold,
        job.seed,
        spec.trial,
        spec.params,
        spec.job_spec.config_hash,
        spec.job_spec.fingerprint,
        repeat=job.repeat,
    )
    tracker.set_tags(run.run_id, environment_tags(run.device, spec.job_spec.config))


def start_fold_run(run: JobRun) -> str:
    """Create the job's fold run. Its ``lr`` and ``rho`` are the config's; with tuning, they are
    logged once chosen (:mod:`medbench.engine.tuning`). With ``cv.repeats`` > 1 its repeat is a
    param and a tag; without, neither is logged (names and params as before repeats existed)."""
    spec, tracker, fold = run.job_spec, run.tracker, run.fold
    job, config = spec.job, spec.config
    opt = config.optimizer
    chosen = {} if config.tune.enabled else hyperparameters(job.optimizer, opt.lr, opt.rho)
    repeat = {"repeat": job.repeat} if config.cv.repeats > 1 else {}
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
            **repeat,
        },
        spec.config_hash,
        spec.fingerprint,
        tags={**environment_tags(run.device, spec.config), **_external_tag(spec)},
        repeat=job.repeat,
    )
    dataset = run.dataset
    tracker.log_dataset(
        run_id, dataset.manifest, dataset.root.name, str(dataset.root), spec.fingerprint, "training"
    )
    for name, external in run.externals.items():
        tracker.log_dataset(
            run_id, external.manifest, name, str(external.root), external.fingerprint, "external"
        )
    return run_id


def fold_data(dataset: Dataset, config: Config, job: Job) -> FoldData:
    """The job's train / validation / test rows among its repeat's folds; the validation split
    is seeded by the seed (and the repeat, from repeat 2 on: :func:`~.jobs.val_seed`)."""
    manifest = dataset.partition(job.repeat)
    split = split_fold(
        manifest, job.fold, val_fraction=config.data.val_fraction, seed=val_seed(job)
    )
    return FoldData(images=dataset.images, labels=dataset.labels, manifest=manifest, split=split)


def check_splits(dataset: Dataset, config: Config, jobs: Iterable[Job]) -> None:
    """Split every job's fold before any training: a fold without validation images, or whose
    validation or training part holds one class, stops the grid at its start with one line
    (:func:`~medbench.data.folds.split_fold`'s DataError), not job by job."""
    for job in {(j.repeat, j.fold, j.seed): j for j in jobs}.values():
        fold_data(dataset, config, job)


def checkpoint_path(spec: JobSpec) -> Path:
    """The job's resumable state, in the cache: one folder per (config, dataset)."""
    safe = spec.job.key.replace("/", "__")
    folder = f"{spec.config_hash}-{spec.fingerprint[:12]}"
    return cache_dir() / "checkpoints" / spec.config.name / folder / f"{safe}.pt"


def environment_tags(device: torch.device, config: Config) -> dict[str, str]:
    """Where a fold run ran and in which precision it computed (``ENVIRONMENT_TAGS``)."""
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
        s.TAG_PRECISION: Precision.for_device(
            device, config.train.amp, config.train.channels_last
        ).describe(tf32_kernels(device, config.train.tf32)),
    }


def data_mismatch(spec: JobSpec, dataset: Dataset, externals: dict[str, Dataset]) -> str | None:
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


def close_runs(spec: JobSpec | TrialSpec, status: Status, reason: str) -> JobOutcome:
    """Close a job's or a trial's RUNNING runs from outside its process (a lost worker, an
    interrupt); a trial's fold run too."""
    if isinstance(spec, TrialSpec):
        return _close_trial(spec, status, reason)
    tracker = Tracker(spec.tracking_uri, spec.config.name)
    run_id = None
    for ref in tracker.find_child(spec.job.key, spec.config_hash, spec.fingerprint):
        run_id = ref.run_id
        if ref.status == "RUNNING":
            tracker.finish(ref.run_id, status, reason)
    return JobOutcome(spec.job, status, run_id, reason)


def _close_trial(spec: TrialSpec, status: Status, reason: str) -> TrialOutcome:
    job_spec = spec.job_spec
    tracker = Tracker(job_spec.tracking_uri, job_spec.config.name)
    if job_spec.run_id is not None:
        fold_runs = [job_spec.run_id]
    else:
        refs = tracker.find_child(spec.job.key, job_spec.config_hash, job_spec.fingerprint)
        fold_runs = [r.run_id for r in refs if r.status == "RUNNING"]
    run_id = None
    for fold_run_id in fold_runs:
        trials = tracker.trials(fold_run_id)
        for row in trials[
            (trials["trial"] == spec.trial) & (trials["status"] == "RUNNING")
        ].itertuples():
            run_id = row.run_id
            tracker.finish(row.run_id, status, reason)
        tracker.finish(fold_run_id, status, f"{reason} (tuning, trial {spec.trial})")
    fold_run = fold_runs[0] if fold_runs else None
    return TrialOutcome(spec.job, status, run_id, reason, trial=spec.trial, fold_run_id=fold_run)
