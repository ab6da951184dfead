"""What an executor runs and what it gets back: plain values (picklable, for Ray and for the
packed executor's worker processes).

A :class:`JobSpec` is one fold job (model, optimizer, fold, seed) with where to track it; a
:class:`TrialSpec` is one tuning trial of such a job (it holds the job's spec, plus the trial's
number and setting). A :class:`Work` is a spec plus two module-level functions (so that Ray
pickles it by reference): ``run(spec, bar=None)`` does the work in whatever process the executor
picks, ``close(spec, status, reason)`` closes its runs from outside when that process is lost or
interrupted. A :class:`JobOutcome` says how it ended in a typed way, so that executors decide on
retries from ``retryable``, never from text. After each outcome the executor runs whatever
``follow`` returns: a tuning study hands out its next trial that way, and its job once the
trials are done.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medbench.config import Config
from medbench.engine.jobs import Job
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

    @property
    def name(self) -> str:
        return self.job.run_name


@dataclass
class TrialSpec:
    """One tuning trial of a job: the job's spec (its ``run_id``: the fold run holding the
    study's trials, None before the first trial made it), the trial's number and setting."""

    job_spec: JobSpec
    trial: int
    params: dict[str, float]  # lr, and rho for the SAM family

    @property
    def job(self) -> Job:
        return self.job_spec.job

    @property
    def config(self) -> Config:
        """The grid's config; the trial trains with ``tuning.trial_config(config, params)``."""
        return self.job_spec.config

    @property
    def name(self) -> str:
        job = self.job
        return s.trial_run_name(job.model, job.optimizer, job.fold, self.trial, job.repeat)


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


@dataclass
class TrialOutcome(JobOutcome):
    trial: int = 0
    fold_run_id: str | None = None


@dataclass(frozen=True)
class Work:
    spec: Any  # JobSpec, TrialSpec: plain values
    run: Callable[..., JobOutcome]  # run(spec, bar=None): bar, a tqdm-like bar of its epochs
    close: Callable[[Any, Status, str], JobOutcome]  # close(spec, status, reason)

    @property
    def name(self) -> str:
        return self.spec.name


#: After one work's outcome, the works it unlocks (none by default).
Follow = Callable[[Work, JobOutcome], list[Work]]


def no_follow(work: Work, outcome: JobOutcome) -> list[Work]:
    return []
