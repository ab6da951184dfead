"""Several works at once on one device (``executor.jobs_per_device``): one worker process each.

One ResNet-18 job at batch 16 keeps a small part of a large GPU busy; several jobs side by side
use the rest. Each work runs in its own process (started with *spawn*, never *fork*: torch's
thread pools and CUDA do not survive a fork), so each has its own CUDA context on a GPU, and on
the CPU the cores are split evenly between them (``torch.set_num_threads(cpus // N)`` unless
``train.threads`` pins it). A worker runs the same function the local executor runs
(:func:`~medbench.engine.worker.run_job`, or a tuning trial), so a job's results do not depend
on its neighbours: the same seeds give the same metrics (on the CPU with the same number of
threads per job).

Interruptions behave as with one job at a time: Ctrl-C (the terminal sends it to every process;
workers leave it to this one) or SIGTERM stops every running job, whose runs end KILLED with
their checkpoints kept; a failed job is recorded and the others go on; a full disk or a lost
store stops the grid with its one-line error, and the other running jobs end KILLED, labelled
by that cause (``interrupts.STOPPED``), not as interrupted by the user. A worker that dies (killed, out of memory) fails
its job (retryable) and is replaced. When this process dies, its workers die with it.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import connection
from typing import Any

import torch

from medbench.engine.executors.base import Handle, stopped, stopped_by
from medbench.engine.executors.display import Display, SlotBar
from medbench.engine.interrupts import sigint_ignored, worker_signals
from medbench.engine.work import JobOutcome, Status, Work
from medbench.paths import held_interrupts

#: Seconds a worker gets to close its run after being told to stop, before it is killed.
STOP_GRACE_S = 60.0


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """CPU threads each of ``jobs`` concurrent jobs gets: the CPUs split evenly, at least 1."""
    return max(1, available_cpus() // max(jobs, 1))


# -- the worker process ---------------------------------------------------------------------------


def _die_with_parent() -> None:
    """A killed parent (SIGKILL, power loss) must not leave its workers training on."""
    parent = mp.parent_process()
    if parent is not None:
        connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGKILL)


def _portable_error(err: BaseException) -> BaseException:
    try:
        pickle.dumps(err)
        return err
    except Exception:  # noqa: BLE001 - an exception that cannot travel is sent as text
        return RuntimeError(f"{type(err).__name__}: {err}")


def _work(conn, threads: int, showwarning: Callable | None) -> None:
    """A worker's main loop: receive a work (a job or a tuning trial), run it, relaying its
    epochs to the display, send its outcome; ``None`` ends it."""
    worker_signals()
    threading.Thread(target=_die_with_parent, daemon=True).start()
    if showwarning is not None:
        warnings.showwarning = showwarning  # the command line's one-line warnings
    torch.set_num_threads(threads)
    while True:
        try:
            work = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if work is None:
            return
        try:
            outcome = work.run(work.spec, bar=SlotBar(conn.send))
        except KeyboardInterrupt:  # stopped outside training: the parent closes the run
            conn.send(("stopped", None, None))
            return
        except BaseException as err:  # noqa: BLE001 - a full disk, a lost store: the grid stops
            conn.send(("error", _portable_error(err), None))
            return
        conn.send(("done", outcome, None))


# -- the parent -------------------------------------------------------------------------------------


@dataclass
class _Slot:
    """One worker process and the work it is running (None when idle)."""

    process: Any
    conn: Any
    work: Work | None = None
    handle: int = 0


def _showwarning() -> Callable | None:
    """The warning printer to use in workers, when it can travel to them (by reference)."""
    try:
        pickle.dumps(warnings.showwarning)
        return warnings.showwarning
    except Exception:  # noqa: BLE001
        return None


class PackedExecutor:
    """``jobs`` worker processes on this machine with ``threads`` CPU threads each."""

    name = "packed"
    retries = 0

    def __init__(self, jobs: int, threads: int) -> None:
        self.capacity = self.slots = jobs
        self.label = f"grid ({jobs} at once)"
        self.threads = threads
        self.display: Display | None = None
        self.workers: list[_Slot] = []
        self.ended: list[tuple[Handle, JobOutcome]] = []  # not yet handed to the loop
        self.stopping = False
        self.stop_label: str | None = None  # the error that stopped the grid (None: the user)
        self.submitted = 0
        self.late_error: BaseException | None = None  # one that came while stopping

    def start(self, display: Display) -> None:
        self.display = display
        self.show = _showwarning()
        self.workers = [self._spawn() for _ in range(self.capacity)]

    def _spawn(self) -> _Slot:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_work,
            args=(child, self.threads, self.show),
            name="medbench-job",
            daemon=True,
        )
        with sigint_ignored():  # inherited through exec: a Ctrl-C while it imports is ours
            process.start()
        child.close()
        return _Slot(process, parent)

    def submit(self, work: Work) -> Handle:
        """Give ``work`` to an idle worker (a dead one is replaced first)."""
        i = next(i for i, slot in enumerate(self.workers) if slot.work is None)
        if not self.workers[i].process.is_alive():
            self.workers[i].conn.close()
            self.workers[i] = self._spawn()
        slot = self.workers[i]
        self.submitted += 1
        slot.work, slot.handle = work, self.submitted
        slot.conn.send(work)
        self.display.started(i, work)
        return slot.handle

    def wait(
        self, handles: list[Handle], timeout: float | None = None
    ) -> list[tuple[Handle, JobOutcome]]:
        busy = {
            s.conn: i
            for i, s in enumerate(self.workers)
            if s.work is not None and s.handle in handles
        }
        for conn in connection.wait(list(busy), timeout=timeout):
            with held_interrupts():  # a Ctrl-C waits until what the worker sent is recorded
                self._receive(busy[conn])
        ended, self.ended = self.ended, []
        return ended

    def _receive(self, i: int) -> None:
        """Handle what worker ``i`` sent, or its death."""
        slot = self.workers[i]
        try:
            kind, value, extra = slot.conn.recv()
        except (EOFError, OSError):
            slot.process.join()
            if self.stopping:  # told to stop, and gone before answering
                self._end(slot, stopped(slot.work, self.stop_label))
                return
            reason = f"worker process died (exit code {slot.process.exitcode})"
            outcome = slot.work.close(slot.work.spec, Status.FAILED, reason)
            outcome.retryable = True
            self._end(slot, outcome)
            return
        if kind in ("epochs", "total"):
            self.display.receive(i, (kind, value, extra))
        elif kind == "done":
            self._end(slot, value)
        elif kind == "stopped":
            self._end(slot, stopped(slot.work, self.stop_label))
        else:  # a full disk, a lost store: the grid stops (the others are stopped first)
            slot.work = None
            if not self.stopping:
                raise value
            self.late_error = value  # raised once every worker has ended

    def _end(self, slot: _Slot, outcome: JobOutcome) -> None:
        self.ended.append((slot.handle, outcome))
        slot.work = None

    def cancel(self, error: str | None = None) -> list[tuple[Handle, JobOutcome]]:
        """Stop the running jobs (SIGTERM: runs KILLED, checkpoints kept; SIGUSR1 when
        ``error`` stops the grid: KILLED, labelled by that cause, not as the user's interrupt);
        a worker that does not answer within ``STOP_GRACE_S`` is killed and its runs closed from
        here."""
        self.stopping = True
        self.stop_label = None if error is None else stopped_by(error)
        sig = signal.SIGTERM if error is None else signal.SIGUSR1
        for slot in self.workers:
            if slot.work is not None and slot.process.is_alive():
                os.kill(slot.process.pid, sig)
        while True:
            busy = {s.conn: i for i, s in enumerate(self.workers) if s.work is not None}
            if not busy:
                break
            ready = connection.wait(list(busy), timeout=STOP_GRACE_S)
            if not ready:
                for i in busy.values():
                    self.workers[i].process.kill()
                    self._end(self.workers[i], stopped(self.workers[i].work, self.stop_label))
                break
            for conn in ready:
                with held_interrupts():
                    self._receive(busy[conn])
        ended, self.ended = self.ended, []
        return ended

    def close(self) -> None:
        """End every worker; then raise an error a worker sent while being stopped."""
        for slot in self.workers:
            if slot.process.is_alive():
                with contextlib.suppress(OSError):  # a broken pipe: it is ending anyway
                    slot.conn.send(None)
        for slot in self.workers:
            slot.process.join(timeout=10)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
        if self.late_error is not None:
            raise self.late_error
