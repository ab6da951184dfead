"""The benchmark grid: jobs (model x optimizer x repeat x fold x seed), their parents, resume,
aggregates.

:func:`run_grid` prepares the dataset once, opens (or finds again) a parent run per (model,
optimizer), hands the jobs that are not finished yet to an executor (:mod:`.executors`: local,
packed or Ray), with ``tune.enabled`` each one's tuning trials first (:mod:`.tuning`), and
recomputes each parent's cross-validation aggregates from the child runs that are there. It
never builds the report: :mod:`medbench.pipeline` joins grid, report and summary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from medbench.config import Config, config_hash, data_settings, dump_yaml
from medbench.data.dataset import Dataset, prepare_dataset, prepare_externals
from medbench.engine.data_tags import dataset_tags, external_overlap
from medbench.engine.executors import Executor, choose_executor, run_works
from medbench.engine.interrupts import sigterm_as_interrupt
from medbench.engine.jobs import Job, make_jobs
from medbench.engine.runner import check_splits
from medbench.engine.tuning import Tuner
from medbench.engine.work import JobOutcome, JobSpec, Status, TrialOutcome, no_follow
from medbench.engine.worker import job_work
from medbench.errors import TrackingError
from medbench.metrics import describe
from medbench.paths import cache_dir, ensure_folder
from medbench.tracking import Tracker, check_store, resolve_tracking_uri
from medbench.tracking import schema as s
from medbench.tracking.lock import ExperimentLock


@dataclass
class GridResult:
    config: Config
    tracking_uri: str
    fingerprint: str
    parent_ids: dict[str, str]  # parent run name -> run id
    outcomes: list[JobOutcome]
    interrupted: bool = False

    @property
    def select(self) -> tuple[str, str]:
        """(config hash, dataset fingerprint): the runs of this grid among an experiment's."""
        return config_hash(self.config), self.fingerprint


@dataclass
class GridPlan:
    """What a grid will do, known before any training: for the command line's plan."""

    config: Config
    tracking_uri: str
    experiment_id: str
    executor: str  # where the jobs run: "local", "packed" or "ray"
    dataset: Dataset
    jobs: list[Job]
    todo: list[Job]  # the jobs not finished yet


def parent_params(config: Config, model: str, optimizer: str) -> dict[str, Any]:
    """The parent run's params (``PARENT_PARAMS``), read from the config."""
    out: dict[str, Any] = {"model": model, "optimizer": optimizer}
    for name, key in s.PARENT_PARAMS.items():
        if key is None:
            continue
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        out[name] = value
    out["seed"] = ",".join(map(str, config.seeds))
    return {name: out[name] for name in s.PARENT_PARAMS}


def _open_parents(
    tracker: Tracker,
    config: Config,
    dataset: Dataset,
    jobs: list[Job],
    chash: str,
    overlap: dict[str, dict[str, int]] | None = None,
) -> dict[str, str]:
    """A parent run per (model, optimizer): found again on resume, else created."""
    parent_ids: dict[str, str] = {}
    tags: dict[str, str] | None = None  # about the data: made once, when a parent is created
    for job in jobs:
        if job.parent_name in parent_ids:
            continue
        ref = tracker.find_parent(job.model, job.optimizer, chash, dataset.fingerprint)
        if ref is None:
            tags = dataset_tags(dataset, overlap) if tags is None else tags
            pid = tracker.start_parent(
                job.model,
                job.optimizer,
                parent_params(config, job.model, job.optimizer),
                chash,
                dataset.fingerprint,
                tags,
            )
            tracker.log_config(pid, dump_yaml(config))
            tracker.log_dataset(
                pid,
                dataset.manifest,
                dataset.root.name,
                str(dataset.root),
                dataset.fingerprint,
                "training",
            )
        else:
            pid = ref.run_id
            if ref.status != "RUNNING":
                tracker.set_status(pid, "RUNNING")
            # seeds and cv.repeats are not hashed: a grid resumed with more of them finds this
            # parent again, whose config.yaml then says what its runs are now
            tracker.log_config(pid, dump_yaml(config))
        parent_ids[job.parent_name] = pid
    return parent_ids


def close_parent(
    tracker: Tracker, parent_id: str, expected: int, interrupted: bool = False
) -> dict[str, float]:
    """Recompute a parent's cross-validation aggregates (over the (repeat, fold) units, seeds
    averaged within a unit) from its child runs, and end it when its last fold run ended (its
    duration in the UI is then its own, not the whole grid's)."""
    children = tracker.child_metrics(parent_id)
    if children.empty:
        children = pd.DataFrame(columns=["status", "end_time", "repeat", "fold", "seed"])
    # one finished run per job: a duplicate (left by an older version's race) counts once
    unit = ["repeat", "fold"]
    finished = (
        children[children["status"] == "FINISHED"]
        .sort_values("end_time")
        .drop_duplicates([*unit, "seed"], keep="last")
    )
    n_failed = int((children["status"] == "FAILED").sum())
    metrics: dict[str, float] = {}
    for name in s.AGGREGATED_METRICS:
        if name in finished:
            # the unit is the (repeat, fold): seeds share its test fold, so they are averaged first
            values = pd.to_numeric(finished[name], errors="coerce")
            per_unit = values.groupby([finished[c] for c in unit])
            summary = describe(per_unit.mean())
            metrics[s.cv_mean(name)], metrics[s.cv_std(name)] = summary.mean, summary.std
    tracker.log_aggregates(parent_id, metrics, len(finished), n_failed)
    ends = pd.to_numeric(children["end_time"], errors="coerce").dropna()
    end_time = int(ends.max()) if len(ends) else None
    if len(finished) >= expected:  # a grid rerun with fewer seeds or repeats finds more
        tracker.finish(parent_id, "FINISHED", end_time=end_time)
    elif interrupted:
        tracker.finish(parent_id, "KILLED")
    elif n_failed:
        tracker.finish(
            parent_id, "FAILED", f"{n_failed} of {expected} folds failed", end_time=end_time
        )
    return metrics


def run_grid(
    config: Config,
    executor: str | None = None,
    ray_address: str | None = None,
    progress: bool = True,
    on_plan: Callable[[GridPlan], None] | None = None,
) -> GridResult:
    """Run (or resume) every job of ``config`` and record it in MLflow.

    ``on_plan`` sees what will run (after the dataset is prepared, before any training)."""
    uri = resolve_tracking_uri(config.tracking.uri)
    check_store(uri)  # before any data or training work
    # checkpoints live in the cache: a file in its place fails here, not mid-job
    ensure_folder(cache_dir())
    executor_for = choose_executor(config, uri, executor, ray_address)
    tracker = Tracker(uri, config.name)
    # one grid at a time per experiment: a second run stops here with one line (the holder)
    lock = ExperimentLock(uri, config.name)
    try:
        with lock:
            data = data_settings(config.data)
            repeats = config.cv.repeats
            dataset = prepare_dataset(data, min(config.seeds), progress=progress, repeats=repeats)
            for repeat in range(2, repeats + 1):  # drawn here: a fold that cannot be, says so now
                dataset.partition(repeat)
            externals = prepare_externals(data, progress)
            result = _run(config, tracker, dataset, externals, executor_for, progress, on_plan)
    except KeyboardInterrupt:
        if lock.lost:  # the lock's heartbeat interrupted the grid: another run holds it now
            raise TrackingError(lock.lost) from None
        raise
    if lock.lost:  # its jobs were stopped (KILLED, checkpoints kept): say why, not "interrupted"
        raise TrackingError(lock.lost)
    return result


def _run(
    config: Config,
    tracker: Tracker,
    dataset: Dataset,
    externals: dict[str, Dataset],
    executor_for: Callable[[int], Executor],
    progress: bool,
    on_plan: Callable[[GridPlan], None] | None,
) -> GridResult:
    """The grid under its experiment's lock: parents, resume, the executor, aggregates."""
    uri, chash = tracker.uri, config_hash(config)
    jobs = make_jobs(
        config.models, config.optimizers, dataset.folds, config.seeds, config.cv.repeats
    )
    check_splits(dataset, config, jobs)  # a fold that cannot train stops here, not mid-grid
    overlap = external_overlap(dataset, externals)  # external data that is training data: refused
    parent_ids = _open_parents(tracker, config, dataset, jobs, chash, overlap)
    external = {name: d.fingerprint for name, d in externals.items()}
    tested_on = s.external_fingerprints(external)  # runs tested on other external data rerun
    finished = {
        job
        for job in jobs
        if any(
            r.status == "FINISHED" and r.external == tested_on
            for r in tracker.find_child(job.key, chash, dataset.fingerprint)
        )
    }
    todo = [job for job in jobs if job not in finished]
    specs = [
        JobSpec(
            job,
            config,
            uri,
            parent_ids[job.parent_name],
            chash,
            dataset.fingerprint,
            external=external,
        )
        for job in todo
    ]
    outcomes = [JobOutcome(job, Status.SKIPPED) for job in jobs if job in finished]
    works, follow, tuner = [job_work(spec) for spec in specs], no_follow, None
    if config.tune.enabled:  # each job's trials first, then the job with the chosen setting
        tuner = Tuner(specs, tracker)
        works, follow = tuner.start(), tuner.follow
    executor = executor_for(len(works))
    if on_plan is not None:
        plan = GridPlan(config, uri, tracker.experiment_id, executor.name, dataset, jobs, todo)
        on_plan(plan)
    expected = config.cv.repeats * len(dataset.folds) * len(config.seeds)  # per parent
    try:
        with sigterm_as_interrupt():
            done, interrupted = run_works(executor, works, follow, progress)
    except Exception:  # a full disk, a lost store: close what can be closed, then say why
        with contextlib.suppress(Exception):
            for pid in parent_ids.values():
                close_parent(tracker, pid, expected, True)
        raise
    outcomes += [o for o in done if not isinstance(o, TrialOutcome)]
    outcomes += tuner.failed if tuner is not None else []
    for pid in parent_ids.values():
        close_parent(tracker, pid, expected, interrupted)
    return GridResult(config, uri, dataset.fingerprint, parent_ids, outcomes, interrupted)
