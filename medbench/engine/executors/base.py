"""The executor contract: what the grid's one scheduling loop (:mod:`.loop`) needs from the
places works run (this process, worker processes, Ray tasks)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from medbench.engine.executors.display import Display
from medbench.engine.interrupts import INTERRUPTED, STOPPED
from medbench.engine.work import JobOutcome, Status, Work

#: A submitted work, as its executor knows it again.
Handle = Hashable


class Executor(Protocol):
    """Runs works: :meth:`submit` one, :meth:`wait` for some to end, :meth:`cancel` the rest.

    The loop submits no more than ``capacity`` works at once, resubmits a work whose outcome is
    a retryable failure up to ``retries`` times, and shows a bar per running work for the first
    ``slots`` of them (the executor advances those bars through the display)."""

    name: str  # "local", "packed" or "ray": what the plan says
    label: str  # the title of the grid's progress bar
    capacity: int  # works running at once
    slots: int  # works whose epochs the display shows, a bar each
    retries: int  # further attempts of a work whose failure is retryable

    def start(self, display: Display) -> None:
        """Acquire what the works run on (processes, a Ray instance)."""

    def submit(self, work: Work) -> Handle:
        """Start ``work`` (or queue it to start at the next :meth:`wait`)."""

    def wait(
        self, handles: list[Handle], timeout: float | None = None
    ) -> list[tuple[Handle, JobOutcome]]:
        """The works of ``handles`` that ended (at least one unless ``timeout`` passed first)."""

    def cancel(self, error: str | None = None) -> list[tuple[Handle, JobOutcome]]:
        """Stop every running work (runs KILLED, checkpoints kept); the outcomes of every
        submitted work :meth:`wait` has not returned yet. ``error``: the one-line error that
        stops the grid (None: an interrupt), which labels the works stopped for it."""

    def close(self) -> None:
        """Release what :meth:`start` acquired."""


def stopped(work: Work, error: str | None = None) -> JobOutcome:
    """Close an interrupted work's runs from here: KILLED, its checkpoint kept; labelled by the
    error that stopped the grid, when one did (not the user)."""
    return work.close(work.spec, Status.KILLED, INTERRUPTED if error is None else error)


def stopped_by(error: str) -> str:
    """The label of the works a grid stopped because of ``error``."""
    return f"{STOPPED} ({error})"
