"""One work after another, in this process: the default executor."""

from __future__ import annotations

import torch

from medbench.engine.executors.base import Handle, stopped, stopped_by
from medbench.engine.executors.display import Display
from medbench.engine.work import JobOutcome, Status, Work
from medbench.errors import TrackingError


def _failed(work: Work, error: str) -> JobOutcome:
    """The runs of the work that raised ``error`` end FAILED with it, when the store still takes
    a write (a lost store does not: the error on its way says so)."""
    try:
        return work.close(work.spec, Status.FAILED, error)
    except TrackingError:
        return JobOutcome(work.spec.job, Status.FAILED, reason=error)


class LocalExecutor:
    """Runs each work in this process when the loop waits for it; a Ctrl-C reaches the work
    itself (the job runner ends its run KILLED). ``threads`` (0: leave the process's count)
    is the CPU thread count of each work, this process's own restored after it."""

    name = "local"
    label = "grid"
    capacity = 1
    slots = 1
    retries = 0

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads
        self.display: Display | None = None
        self.queued: dict[int, Work] = {}
        self.running: tuple[int, Work] | None = None
        self.submitted = 0

    def start(self, display: Display) -> None:
        self.display = display

    def submit(self, work: Work) -> Handle:
        self.submitted += 1
        self.queued[self.submitted] = work
        return self.submitted

    def wait(
        self, handles: list[Handle], timeout: float | None = None
    ) -> list[tuple[Handle, JobOutcome]]:
        """Run the first of ``handles`` to its end (``timeout`` cannot cut a work short here)."""
        handle = handles[0]
        work = self.queued.pop(handle)
        self.running = (handle, work)
        self.display.started(0, work)
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            outcome = work.run(work.spec, bar=self.display.bar(0))
        finally:
            torch.set_num_threads(before)
        self.running = None
        return [(handle, outcome)]

    def cancel(self, error: str | None = None) -> list[tuple[Handle, JobOutcome]]:
        """A work interrupted outside its training (its runner had not caught it): its runs are
        closed from here. With ``error``, the running work is the one that raised it: its runs
        end FAILED with it (not "interrupted by the user")."""
        label = None if error is None else stopped_by(error)
        ended = [(handle, stopped(work, label)) for handle, work in self.queued.items()]
        self.queued.clear()
        if self.running is not None:
            handle, work = self.running
            self.running = None
            closed = stopped(work) if error is None else _failed(work, error)
            ended.append((handle, closed))
        return ended

    def close(self) -> None:
        pass
