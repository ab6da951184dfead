"""Interrupts: Ctrl-C and SIGTERM end a grid the same way.

Both become ``KeyboardInterrupt`` in the process that trains (:func:`sigterm_as_interrupt`, used
by the command line and by the grid): the job runner ends the run KILLED with its checkpoint
kept (:mod:`medbench.engine.runner`), and the executors stop their other running works the same
way (``Executor.cancel``). A packed executor's worker processes leave Ctrl-C to the grid (the
terminal sends it to every process) and take SIGTERM as the grid's way to stop their job
(:func:`worker_signals`). An interrupt that arrives during a checkpoint or an MLflow write takes
effect when the write ends: :func:`medbench.paths.held_interrupts`, which lives below the engine
since the tracking layer holds interrupts too.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: The reason of a run ended by Ctrl-C or SIGTERM (tag ``medbench.failure``).
INTERRUPTED = "interrupted by the user"
#: The reason of a run stopped because another work's error (a full disk, a lost store) stopped
#: the grid: the user interrupted nothing.
STOPPED = "stopped: another job's error stopped the grid"


class GridStopped(KeyboardInterrupt):
    """Stops a packed worker's job because the grid stopped on an error (SIGUSR1 from the grid):
    its run ends KILLED with its checkpoint kept, like an interrupt, but labelled :data:`STOPPED`."""

    reason = STOPPED


def stop_reason(err: BaseException) -> str:
    """The label of a run ended by ``err``, a ``KeyboardInterrupt``: the user's, or the grid's."""
    return getattr(err, "reason", INTERRUPTED)


def raise_interrupt(signum: int, frame: object) -> None:
    """A signal handler: the signal ends what runs like Ctrl-C does."""
    raise KeyboardInterrupt


def raise_stopped(signum: int, frame: object) -> None:
    """A packed worker's SIGUSR1 handler: the grid stopped on another work's error."""
    raise GridStopped


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM inside the block raises ``KeyboardInterrupt``, as Ctrl-C does: the current job
    ends KILLED with its checkpoint kept, and the command exits 130."""
    try:
        previous = signal.signal(signal.SIGTERM, raise_interrupt)
    except ValueError:  # not the main thread (e.g. inside a Ray worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ctrl-C is ignored inside the block (a packed worker starting: it inherits the setting
    through exec, so that a Ctrl-C while it imports reaches the grid only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def worker_signals() -> None:
    """In a packed worker process: Ctrl-C reaches every process of the terminal, and the grid
    decides (ignored here); SIGTERM is the grid's way to stop this worker's job (run KILLED),
    SIGUSR1 its way when another work's error stopped it (run KILLED, labelled so)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGUSR1, raise_stopped)
