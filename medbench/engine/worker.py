"""One fold job, end to end, in whatever process runs it: the unit every executor runs.

:func:`run_job` trains the job with the engine's handlers inside the job runner
(:func:`~medbench.engine.runner.job_run`: data, fingerprint check, resume, run status), tests
its selected checkpoint, and writes the results through a handler
(:class:`~medbench.engine.handlers.ResultLog`). Safe to call again after any crash: see the
runner's resume rule.
"""

from __future__ import annotations

from typing import Any

from medbench.engine.handlers import ResultLog, default_handlers
from medbench.engine.runner import close_runs, job_run
from medbench.engine.train import train_job
from medbench.engine.work import JobOutcome, JobSpec, Work


def run_job(spec: JobSpec, bar: Any = None) -> JobOutcome:
    """Run one job, tracked in its child run; ``bar``: a tqdm-like bar to advance by epoch (its
    owner closes it)."""
    with job_run(spec) as run:
        if run.outcome is not None:  # finished before, or the data here are not the grid's
            return run.outcome
        config = spec.config
        handlers = default_handlers(
            config,
            run.checkpoint,
            run.log_epoch,
            bar,
            meta={"run_id": run.run_id},
            external=run.externals,
            results=ResultLog(run.tracker, run.run_id, config.report.target_val_auc),
        )
        result = train_job(spec.job, config, run.fold, run.device, handlers)
        run.stats = {
            "test_auc": result.test["auc"],
            "epochs": len(result.history),
            "seconds": result.train_time_s,
        }
    return run.outcome


def job_work(spec: JobSpec) -> Work:
    """A job's training and test, as the grid runs it."""
    return Work(spec, run_job, close_runs)
