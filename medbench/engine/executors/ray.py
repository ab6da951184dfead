"""Run a grid's works as Ray tasks: on a laptop, a Kubernetes or a SLURM cluster alike.

The driver creates the parent runs; each task runs one :class:`~medbench.engine.work.Work` (a
job, :func:`~medbench.engine.worker.run_job`, which creates or resumes its own child run, or a
tuning trial), so resume works exactly as with the local executor; what follows from an outcome
(a study's next trial) is submitted as soon as it is known. Workers must reach the tracking
store: a SQLite file is accepted only for a local Ray instance. A work whose job failed
retryably (anything but a divergence) is submitted again ``executor.max_retries`` times by the
grid's loop; Ray itself retries a task whose worker was lost, as often; then its run is closed
as FAILED.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from medbench.config import AUTO_JOBS, ExecutorConfig
from medbench.engine.executors.base import Handle, stopped, stopped_by
from medbench.engine.executors.display import Display
from medbench.engine.work import JobOutcome, Status, Work
from medbench.errors import TrackingError
from medbench.optional import lazy_import, require
from medbench.paths import cache_dir
from medbench.tracking import is_local_uri

ray = lazy_import("ray", extra="ray")

LOCAL_ADDRESSES = (None, "", "local")


def check_ray_store(uri: str, address: str | None) -> None:
    """Refuse a store that remote workers cannot reach before anything starts (and a missing
    Ray, with the line that says what to install)."""
    require("ray", extra="ray")
    if address not in LOCAL_ADDRESSES and is_local_uri(uri):
        raise TrackingError(
            f"executor ray at {address}: tracking store {uri} is a file on this machine that "
            "workers on other machines cannot reach; start an MLflow tracking server (see "
            "README, 'Running on a cluster') and set tracking.uri or MLFLOW_TRACKING_URI to "
            "http://HOST:PORT"
        )


def _task(work: Work) -> JobOutcome:
    return work.run(work.spec)


def _lost(work: Work, err: BaseException) -> JobOutcome:
    """The task failed for good (after Ray's retries): its run must not stay RUNNING."""
    cause = getattr(err, "cause", None) or err
    reason = f"{type(cause).__name__}: {cause}".splitlines()[0][:500]
    outcome = work.close(work.spec, Status.FAILED, f"worker lost: {reason}")
    outcome.reason = reason
    return outcome


def task_resources(executor: ExecutorConfig) -> dict[str, float]:
    """A task's share of a node: ``jobs_per_device`` tasks share one job's GPUs and CPUs
    (fractional GPUs: 4 jobs per device at ``gpus_per_job: 1`` ask for 0.25 GPU each; ``auto``:
    a whole job's share, Ray placing tasks by what they ask for)."""
    share = 1 if executor.jobs_per_device == AUTO_JOBS else executor.jobs_per_device
    return {"num_cpus": executor.cpus_per_job / share, "num_gpus": executor.gpus_per_job / share}


class RayExecutor:
    """Every work a Ray task with the config's resources, submitted as soon as it is known
    (Ray queues what the cluster cannot run yet)."""

    name = "ray"
    label = "grid (ray)"
    capacity = sys.maxsize
    slots = 0

    def __init__(self, executor: ExecutorConfig, address: str | None) -> None:
        self.config, self.address = executor, address
        self.retries = executor.max_retries
        self.pending: dict[Handle, Work] = {}
        self.started = self.stopped = False
        self.done = 0

    def start(self, display: Display) -> None:
        if not ray.is_initialized():
            env: dict[str, Any] = {"env_vars": {"MEDBENCH_CACHE_DIR": str(cache_dir().resolve())}}
            options: dict[str, Any] = dict(
                runtime_env=env, log_to_driver=False, logging_level="warning"
            )
            if self.address in LOCAL_ADDRESSES:
                ray.init(include_dashboard=False, **options)
            else:
                ray.init(address=self.address, **options)
            self.started = True
        self.task = ray.remote(_task).options(
            **task_resources(self.config),
            max_retries=self.config.max_retries,  # a lost worker; a failed job: the loop's
            retry_exceptions=True,
        )

    def submit(self, work: Work) -> Handle:
        ref = self.task.remote(work)
        self.pending[ref] = work
        return ref

    def wait(
        self, handles: list[Handle], timeout: float | None = None
    ) -> list[tuple[Handle, JobOutcome]]:
        done, _ = ray.wait(handles, num_returns=1, timeout=timeout)
        ended = []
        for ref in done:
            work = self.pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as err:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, ...
                outcome = _lost(work, err)
            ended.append((ref, outcome))
        self.done += len(ended)
        return ended

    def cancel(self, error: str | None = None) -> list[tuple[Handle, JobOutcome]]:
        self.stopped = True
        for ref in self.pending:
            ray.cancel(ref, force=True)
        label = None if error is None else stopped_by(error)
        ended = [(ref, stopped(work, label)) for ref, work in self.pending.items()]
        self.pending.clear()
        return ended

    def close(self) -> None:
        if self.started:
            ray.shutdown()
        if not self.stopped:
            where = os.environ.get("RAY_ADDRESS", self.address or "a local Ray instance")
            print(f"ray: {self.done} tasks done on {where}", file=sys.stderr)
