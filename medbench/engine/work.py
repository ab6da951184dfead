"""What an executor runs: a unit of work (one job's training, or one tuning trial), and the
work that follows from its outcome.

A :class:`Work` is plain values plus two module-level functions (so Ray pickles it by
reference): ``run(spec)`` does the work in whatever process the executor picks, ``close(spec,
status, reason)`` closes its runs from outside when the process is lost or interrupted. Both
executors run a list of works and, after each outcome, whatever ``follow`` returns: a tuning
study hands out its next trial that way, and its job once the trials are done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medbench.engine.worker import JobOutcome, JobSpec, Status, close_runs, run_job


@dataclass(frozen=True)
class Work:
    spec: Any  # JobSpec, TrialSpec: plain values
    run: Callable[..., JobOutcome]  # run(spec, progress=False, bar=None)
    close: Callable[[Any, Status, str], JobOutcome]  # close(spec, status, reason)

    @property
    def name(self) -> str:
        return getattr(self.spec, "name", None) or self.spec.job.run_name


#: After one work's outcome, the works it unlocks (none by default).
Follow = Callable[[Work, JobOutcome], list[Work]]


def job_work(spec: JobSpec) -> Work:
    """A job's training and test, as the grid runs it."""
    return Work(spec, run_job, close_runs)


def no_follow(work: Work, outcome: JobOutcome) -> list[Work]:
    return []
