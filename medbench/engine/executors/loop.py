"""The one scheduling loop of a grid, whatever runs its works (:class:`~.base.Executor`).

It keeps the queue: as many works run as the executor takes, and what ``follow`` returns after
an outcome runs next (depth first: a tuning study's next trial, then its job, before the next
study starts). A retryable failure is submitted again up to ``executor.retries`` times (Ray's
``executor.max_retries``); a divergence is not retryable. Every other outcome is recorded and
shown (:class:`~.display.Display`). A run ended KILLED, Ctrl-C or SIGTERM stop the grid: the
executor stops what still runs (KILLED, checkpoints kept) and the loop returns with
``interrupted``; an exception (a full disk, a lost store) stops the rest the same way, their
runs labelled by it rather than as the user's interrupt, and is raised.
"""

from __future__ import annotations

from collections import deque

from medbench.engine.executors.base import Executor, Handle
from medbench.engine.executors.display import Display
from medbench.engine.work import Follow, JobOutcome, Status, Work, no_follow
from medbench.paths import held_interrupts


def run_works(
    executor: Executor, works: list[Work], follow: Follow = no_follow, progress: bool = True
) -> tuple[list[JobOutcome], bool]:
    """Run ``works`` and what follows from them on ``executor``; returns the outcomes (in the
    order they ended) and whether the grid was interrupted.

    ``progress``: tqdm bars (a terminal) or one line per finished work (logs)."""
    if not works:
        return [], False
    display = Display(len(works), executor.label, executor.slots, bars=progress)
    queue = deque(works)
    running: dict[Handle, tuple[Work, int]] = {}  # handle -> (work, attempts before this one)
    outcomes: list[JobOutcome] = []
    interrupted = ended = False
    error: str | None = None  # the one line of an exception on its way (not an interrupt)

    def record(work: Work, outcome: JobOutcome) -> None:
        outcomes.append(outcome)
        display.finished(work.name, outcome)

    try:
        executor.start(display)
        while running or (queue and not interrupted):
            while queue and len(running) < executor.capacity:
                work = queue.popleft()
                running[executor.submit(work)] = (work, 0)
            for handle, outcome in executor.wait(list(running)):
                work, attempt = running.pop(handle)
                with held_interrupts():  # a Ctrl-C waits until the outcome is recorded
                    retry = outcome.status == Status.FAILED and outcome.retryable
                    if retry and attempt < executor.retries:
                        running[executor.submit(work)] = (work, attempt + 1)
                        continue
                    record(work, outcome)
                    if outcome.status == Status.KILLED:
                        interrupted = True
                    elif not interrupted:
                        more = follow(work, outcome)
                        queue.extendleft(reversed(more))
                        display.more(len(more))
            if interrupted:
                break
        ended = not interrupted
    except KeyboardInterrupt:
        interrupted = True
    except Exception as err:
        error = " ".join(str(err).split()) or type(err).__name__
        raise
    finally:
        try:
            if not ended:  # interrupted, or an exception on its way: stop what still runs
                for handle, outcome in executor.cancel(error):
                    record(running.pop(handle)[0], outcome)
        finally:
            display.close()
            executor.close()
    return outcomes, interrupted
