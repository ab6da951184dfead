"""Several jobs at once on one device (``executor.jobs_per_device``): one worker process each.

One ResNet-18 job at batch 16 keeps a small part of a large GPU busy; several jobs side by side
use the rest. Each job runs in its own process (started with *spawn*, never *fork*: torch's
thread pools and CUDA do not survive a fork), so each has its own CUDA context on a GPU, and on
the CPU the cores are split evenly between them (``torch.set_num_threads(cpus // N)`` unless
``train.threads`` pins it). A worker runs :func:`~medbench.engine.worker.run_job`, the same
function the sequential executor runs, so a job's results do not depend on its neighbours: the
same seeds give the same metrics (on the CPU with the same number of threads per job).

Interruptions behave as with one job at a time: Ctrl-C (the terminal sends it to every process;
workers leave it to this one) or SIGTERM stops every running job, whose runs end KILLED with
their checkpoints kept; a failed job is recorded and the others go on; a full disk or a lost
store stops the grid with its one-line error. A worker that dies (killed, out of memory) fails
its job and is replaced. When this process dies, its workers die with it.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import signal
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medbench.engine.work import Follow, Work, no_follow
from medbench.engine.worker import JobOutcome, Status
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


class _Relay:
    """A stand-in for a tqdm bar inside a worker: sends each update to the parent's display."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def update(self, n: int = 1) -> None:
        self.conn.send(("epochs", n, None))

    def set_postfix(self, **values: Any) -> None:
        self.conn.send(("epochs", 0, ", ".join(f"{k}={v}" for k, v in values.items())))

    def close(self) -> None:
        pass


def _die_with_parent() -> None:
    """A killed parent (SIGKILL, power loss) must not leave its workers training on."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    parent = mp.parent_process()
    if parent is not None:
        wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGKILL)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


def _portable_error(err: BaseException) -> BaseException:
    try:
        pickle.dumps(err)
        return err
    except Exception:  # noqa: BLE001 - an exception that cannot travel is sent as text
        return RuntimeError(f"{type(err).__name__}: {err}")


def _work(conn, threads: int, relay: bool, showwarning: Callable | None) -> None:
    """A worker's main loop: receive a work (a job or a tuning trial), run it, send its
    outcome; ``None`` ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches every process: the parent decides
    signal.signal(signal.SIGTERM, _stop)  # the parent's way to stop a job (run KILLED)
    threading.Thread(target=_die_with_parent, daemon=True).start()
    if showwarning is not None:
        warnings.showwarning = showwarning  # the command line's one-line warnings
    import torch

    torch.set_num_threads(threads)
    while True:
        try:
            work = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if work is None:
            return
        try:
            outcome = work.run(work.spec, bar=_Relay(conn) if relay else None)
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

    def give(self, work: Work) -> None:
        self.work = work
        self.conn.send(work)


class _Display:
    """A terminal: a grid bar and one bar per running job, side by side. Logs: ``report(name,
    outcome, done, total)`` per finished work (the local executor's one line)."""

    def __init__(
        self,
        total: int,
        slots: int,
        bars: bool,
        report: Callable[[str, JobOutcome, int, int], None] | None = None,
    ) -> None:
        self.total, self.done, self.report = total, 0, report
        self.grid = self.jobs = None
        if bars:
            from tqdm.auto import tqdm

            self.grid = tqdm(total=total, desc=f"grid ({slots} at once)", unit="job", position=0)
            self.jobs = [
                tqdm(total=1, desc="waiting", unit="epoch", position=i + 1, leave=False)
                for i in range(slots)
            ]

    def more(self, n: int) -> None:
        """``n`` works were added (a tuning study's next trial, its job)."""
        self.total += n
        if self.grid is not None:
            self.grid.total = self.total
            self.grid.refresh()

    def started(self, i: int, work: Work) -> None:
        if self.jobs is not None:
            self.jobs[i].reset(total=work.spec.config.train.epochs)
            self.jobs[i].set_description(work.name)

    def epochs(self, i: int, n: int, postfix: str | None) -> None:
        if self.jobs is not None:
            self.jobs[i].update(n)
            if postfix:
                self.jobs[i].set_postfix_str(postfix)

    def finished(self, name: str, outcome: JobOutcome) -> None:
        self.done += 1
        if self.grid is None:
            if self.report is not None:
                self.report(name, outcome, self.done, self.total)
            return
        self.grid.update(1)
        if outcome.status == Status.FAILED:
            self.grid.write(f"medbench: warning: {name} failed: {outcome.reason}")

    def close(self) -> None:
        for bar in [*(self.jobs or []), self.grid]:
            if bar is not None:
                bar.close()


@contextlib.contextmanager
def _sigint_ignored():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _showwarning() -> Callable | None:
    """The warning printer to use in workers, when it can travel to them (by reference)."""
    try:
        pickle.dumps(warnings.showwarning)
        return warnings.showwarning
    except Exception:  # noqa: BLE001
        return None


def run_packed(
    works: list[Work],
    jobs_per_device: int,
    progress: bool = True,
    report: Callable[[str, JobOutcome, int, int], None] | None = None,
    follow: Follow = no_follow,
) -> tuple[list[JobOutcome], bool]:
    """Run the works ``jobs_per_device`` at a time in worker processes; what ``follow`` returns
    after an outcome is run next (a tuning study's next trial, then its job).

    ``progress``: bars side by side; otherwise ``report(name, outcome, done, total)`` per
    finished work.

    Returns the outcomes (in the order the jobs finished) and whether the grid was interrupted,
    as :func:`~medbench.engine.local_executor.run_local` does. A ``StorageError`` or
    ``TrackingError`` in any job stops the others (KILLED) and is raised.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    n = min(jobs_per_device, len(works))
    threads = threads_per_job(jobs_per_device)
    show = _showwarning()

    def start() -> _Slot:
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_work, args=(child, threads, progress, show), name="medbench-job", daemon=True
        )
        with _sigint_ignored():  # inherited through exec: a Ctrl-C while it imports is ours
            process.start()
        child.close()
        return _Slot(process, parent)

    todo = collections.deque(works)
    outcomes: list[JobOutcome] = []
    display = _Display(len(works), n, progress, report)
    slots: list[_Slot] = []
    interrupted = False
    error: BaseException | None = None

    def give_next(i: int) -> None:
        if todo and not interrupted and error is None:
            slots[i].give(todo.popleft())
            display.started(i, slots[i].work)

    def receive(i: int) -> None:
        """Handle what slot ``i`` sent (or its death); a Ctrl-C waits until it is recorded."""
        with held_interrupts():
            _handle(i)

    def _handle(i: int) -> None:
        nonlocal interrupted, error
        slot = slots[i]
        try:
            kind, value, extra = slot.conn.recv()
        except (EOFError, OSError):
            slot.process.join()
            work, slot.work = slot.work, None
            if interrupted or error is not None:  # told to stop, and gone before answering
                finish(work, work.close(work.spec, Status.KILLED, "interrupted by the user"))
                return
            reason = f"worker process died (exit code {slot.process.exitcode})"
            outcome = work.close(work.spec, Status.FAILED, reason)
            outcome.retryable = True
            finish(work, outcome)
            queue_next(work, outcome)
            fill()
            return
        if kind == "epochs":
            display.epochs(i, value, extra)
            return
        work, slot.work = slot.work, None
        if kind == "done":
            finish(work, value)
            interrupted = interrupted or value.status == Status.KILLED
            if not interrupted:
                queue_next(work, value)
            fill()
        elif kind == "stopped":
            finish(work, work.close(work.spec, Status.KILLED, "interrupted by the user"))
            interrupted = True
        else:
            error = value

    def queue_next(work: Work, outcome: JobOutcome) -> None:
        """What follows from ``outcome`` runs next, as with one work at a time."""
        more = follow(work, outcome)
        todo.extendleft(reversed(more))
        display.more(len(more))

    def fill() -> None:
        """Every idle slot takes the next work (a dead worker is replaced first)."""
        for i, slot in enumerate(slots):
            if slot.work is None and todo and not interrupted and error is None:
                if not slot.process.is_alive():
                    slot.conn.close()
                    slots[i] = start()
                give_next(i)

    def finish(work: Work, outcome: JobOutcome) -> None:
        outcomes.append(outcome)
        display.finished(work.name, outcome)

    try:
        slots.extend(start() for _ in range(n))
        fill()
        while error is None and not interrupted and any(s.work for s in slots):
            busy = {s.conn: i for i, s in enumerate(slots) if s.work is not None}
            for conn in wait(list(busy)):
                receive(busy[conn])
    except KeyboardInterrupt:
        interrupted = True
    finally:
        _stop_all(slots, receive, finish)
        display.close()
    if error is not None:
        raise error
    return outcomes, interrupted


def _stop_all(
    slots: list[_Slot],
    receive: Callable[[int], None],
    finish: Callable[[Work, JobOutcome], None],
) -> None:
    """Stop the running jobs (SIGTERM: runs KILLED, checkpoints kept), then end every worker."""
    from multiprocessing.connection import wait

    for s in slots:
        if s.work is not None and s.process.is_alive():
            os.kill(s.process.pid, signal.SIGTERM)
    while True:
        busy = {s.conn: i for i, s in enumerate(slots) if s.work is not None}
        if not busy:
            break
        ready = wait(list(busy), timeout=STOP_GRACE_S)
        if not ready:  # a worker that does not answer: kill it, close its run from here
            for i in busy.values():
                slots[i].process.kill()
                work, slots[i].work = slots[i].work, None
                finish(work, work.close(work.spec, Status.KILLED, "interrupted by the user"))
            break
        for conn in ready:
            receive(busy[conn])
    for s in slots:
        if s.process.is_alive():
            with contextlib.suppress(OSError):  # a broken pipe: it is ending anyway
                s.conn.send(None)
    for s in slots:
        s.process.join(timeout=10)
        if s.process.is_alive():
            s.process.kill()
            s.process.join()
        s.conn.close()
