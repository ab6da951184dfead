"""Run the grid's jobs as Ray tasks: on a laptop, a Kubernetes or a SLURM cluster alike.

The driver creates the parent runs; each task runs :func:`medbench.engine.run.run_job`, which
creates (or resumes) its own child run, so resume works exactly as with the local executor.
Workers must reach the tracking store: a SQLite file is accepted only for a local Ray instance.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from medbench.config import Config
from medbench.engine.run import JobOutcome, JobSpec, run_job
from medbench.errors import ConfigError, TrackingError
from medbench.paths import cache_dir

LOCAL_ADDRESSES = (None, "", "local")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "executor.kind: 'ray' needs Ray; install it with: pip install 'medbench[ray]'"
        ) from None
    return ray


def check_ray_store(uri: str, address: str | None) -> None:
    """Refuse a store that remote workers cannot reach before anything starts."""
    from medbench.tracking import is_local_uri

    _import_ray()
    if address not in LOCAL_ADDRESSES and is_local_uri(uri):
        raise TrackingError(
            f"executor ray at {address}: tracking store {uri} is a file on this machine that workers on other "
            "machines cannot reach; start an MLflow tracking server (see README, 'Running on a cluster') and set "
            "tracking.uri or MLFLOW_TRACKING_URI to http://HOST:PORT"
        )


class JobFailed(RuntimeError):
    """Raised inside a task so that Ray retries a job that failed for a reason other than divergence."""


def _task(spec: JobSpec) -> JobOutcome:
    outcome = run_job(spec)
    if outcome.status == "FAILED" and not (outcome.reason or "").startswith("diverged"):
        raise JobFailed(outcome.reason)
    return outcome


def _failed(spec: JobSpec, err: BaseException) -> JobOutcome:
    """The task failed for good (after its retries): make sure its run does not stay RUNNING."""
    from medbench.config import config_hash
    from medbench.engine.run import prepare_dataset
    from medbench.tracking import Tracker

    cause = getattr(err, "cause", None) or err
    reason = f"{type(cause).__name__}: {cause}".splitlines()[0][:500]
    tracker = Tracker(spec.tracking_uri, spec.config.name)
    fingerprint = prepare_dataset(spec.config).fingerprint
    run_id = None
    for ref in tracker.find_child(spec.job.key, config_hash(spec.config), fingerprint):
        run_id = ref.run_id
        if ref.status == "RUNNING":
            tracker.finish(ref.run_id, "FAILED", f"worker lost: {reason}")
    return JobOutcome(spec.job, "FAILED", run_id, reason)


def _mark_killed(specs: list[JobSpec]) -> None:
    from medbench.config import config_hash
    from medbench.engine.run import prepare_dataset
    from medbench.tracking import Tracker

    for spec in specs:
        tracker = Tracker(spec.tracking_uri, spec.config.name)
        fingerprint = prepare_dataset(spec.config).fingerprint
        for ref in tracker.find_child(spec.job.key, config_hash(spec.config), fingerprint):
            if ref.status == "RUNNING":
                tracker.finish(ref.run_id, "KILLED", "interrupted by the user")


def run_on_ray(
    specs: list[JobSpec], config: Config, address: str | None, progress: bool = True
) -> list[JobOutcome]:
    """Submit every job as a Ray task with the config's resources; collect the outcomes."""
    ray = _import_ray()
    ex = config.executor
    if not specs:
        return []
    started = False
    if not ray.is_initialized():
        env: dict[str, Any] = {"env_vars": {"MEDBENCH_CACHE_DIR": str(cache_dir().resolve())}}
        if address in LOCAL_ADDRESSES:
            ray.init(
                include_dashboard=False,
                runtime_env=env,
                log_to_driver=False,
                logging_level="warning",
            )
        else:
            ray.init(address=address, runtime_env=env, log_to_driver=False, logging_level="warning")
        started = True
    task = ray.remote(_task).options(
        num_cpus=ex.cpus_per_job,
        num_gpus=ex.gpus_per_job,
        max_retries=ex.max_retries,
        retry_exceptions=True,
    )
    pending = {task.remote(spec): spec for spec in specs}
    outcomes: list[JobOutcome] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), desc=f"grid (ray, {len(specs)} tasks)", unit="job")
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except Exception as err:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, ...
                outcome = _failed(spec, err)
            outcomes.append(outcome)
            if bar is not None:
                bar.update(1)
                if outcome.status == "FAILED":
                    bar.write(f"medbench: warning: {spec.job.run_name} failed: {outcome.reason}")
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        _mark_killed(list(pending.values()))
        raise
    finally:
        if bar is not None:
            bar.close()
        if started:
            ray.shutdown()
    print(
        f"ray: {len(outcomes)} jobs done on {os.environ.get('RAY_ADDRESS', address or 'a local Ray instance')}",
        file=sys.stderr,
    )
    return outcomes
