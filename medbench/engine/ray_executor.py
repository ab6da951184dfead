"""Run the grid's jobs as Ray tasks: on a laptop, a Kubernetes or a SLURM cluster alike.

The driver creates the parent runs; each task runs one :class:`~medbench.engine.work.Work`
(a job, :func:`~medbench.engine.worker.run_job`, which creates or resumes its own child run, or
a tuning trial), so resume works exactly as with the local executor; what follows from an
outcome (a study's next trial) is submitted as soon as it is known. Workers must reach the
tracking store: a SQLite file is accepted only for a local Ray instance. A task whose job
failed retryably (anything but a divergence) is retried ``executor.max_retries`` times, then
its run is closed as FAILED.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from medbench.config import ExecutorConfig
from medbench.engine.local_executor import report_line
from medbench.engine.work import Follow, Work, no_follow
from medbench.engine.worker import JobOutcome, Status
from medbench.errors import ConfigError, TrackingError
from medbench.paths import cache_dir
from medbench.tracking import is_local_uri

LOCAL_ADDRESSES = (None, "", "local")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "executor.kind: 'ray' needs Ray; install it with: pip install 'ray[default]' "
            "(or the project with its extra: pip install '.[ray]')"
        ) from None
    return ray


def check_ray_store(uri: str, address: str | None) -> None:
    """Refuse a store that remote workers cannot reach before anything starts."""
    _import_ray()
    if address not in LOCAL_ADDRESSES and is_local_uri(uri):
        raise TrackingError(
            f"executor ray at {address}: tracking store {uri} is a file on this machine that workers on other "
            "machines cannot reach; start an MLflow tracking server (see README, 'Running on a cluster') and set "
            "tracking.uri or MLFLOW_TRACKING_URI to http://HOST:PORT"
        )


class JobFailed(RuntimeError):
    """Raised inside a task so that Ray retries a job whose failure may not repeat."""


def _task(work: Work) -> JobOutcome:
    outcome = work.run(work.spec)
    if outcome.status == Status.FAILED and outcome.retryable:
        raise JobFailed(outcome.reason)
    return outcome


def _lost(work: Work, err: BaseException) -> JobOutcome:
    """The task failed for good (after its retries): its run must not stay RUNNING."""
    cause = getattr(err, "cause", None) or err
    reason = f"{type(cause).__name__}: {cause}".splitlines()[0][:500]
    outcome = work.close(work.spec, Status.FAILED, f"worker lost: {reason}")
    outcome.reason = reason
    return outcome


def task_resources(executor: ExecutorConfig) -> dict[str, float]:
    """A task's share of a node: ``jobs_per_device`` tasks share one job's GPUs and CPUs
    (fractional GPUs: 4 jobs per device at ``gpus_per_job: 1`` ask for 0.25 GPU each)."""
    share = executor.jobs_per_device
    return {"num_cpus": executor.cpus_per_job / share, "num_gpus": executor.gpus_per_job / share}


def run_on_ray(
    works: list[Work],
    executor: ExecutorConfig,
    address: str | None,
    progress: bool = True,
    follow: Follow = no_follow,
) -> tuple[list[JobOutcome], bool]:
    """Submit every work as a Ray task with the config's resources, and what follows from each
    outcome as it comes; collect the outcomes."""
    ray = _import_ray()
    if not works:
        return [], False
    started = False
    if not ray.is_initialized():
        env: dict[str, Any] = {"env_vars": {"MEDBENCH_CACHE_DIR": str(cache_dir().resolve())}}
        options: dict[str, Any] = dict(
            runtime_env=env, log_to_driver=False, logging_level="warning"
        )
        if address in LOCAL_ADDRESSES:
            ray.init(include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
        started = True
    task = ray.remote(_task).options(
        **task_resources(executor),
        max_retries=executor.max_retries,
        retry_exceptions=True,
    )
    pending = {task.remote(work): work for work in works}
    outcomes: list[JobOutcome] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(works), desc="grid (ray)", unit="run")
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            work = pending.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except Exception as err:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, ...
                outcome = _lost(work, err)
            outcomes.append(outcome)
            if bar is None:
                report_line(work.name, outcome, len(outcomes), len(outcomes) + len(pending))
            else:
                bar.update(1)
                if outcome.status == Status.FAILED:
                    bar.write(f"medbench: warning: {work.name} failed: {outcome.reason}")
            for more in follow(work, outcome):
                pending[task.remote(more)] = more
                if bar is not None:
                    bar.total += 1
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        for work in pending.values():
            outcomes.append(work.close(work.spec, Status.KILLED, "interrupted by the user"))
        return outcomes, True
    finally:
        if bar is not None:
            bar.close()
        if started:
            ray.shutdown()
    where = os.environ.get("RAY_ADDRESS", address or "a local Ray instance")
    print(f"ray: {len(outcomes)} tasks done on {where}", file=sys.stderr)
    return outcomes, False
