"""Run a grid's work one unit after another in this process (the default executor)."""

from __future__ import annotations

import sys

from medbench.engine.work import Follow, Work, no_follow
from medbench.engine.worker import JobOutcome, Status


def report_line(name: str, outcome: JobOutcome, done: int, total: int) -> None:
    """Without progress bars (logs, CI): one line per finished job or trial on stderr."""
    print(f"[{done:>{len(str(total))}}/{total}] {outcome.line(name)}", file=sys.stderr, flush=True)


def run_local(
    works: list[Work], progress: bool = True, follow: Follow = no_follow
) -> tuple[list[JobOutcome], bool]:
    """Run every work and what follows from it; returns the outcomes and whether the user
    interrupted the grid. Work that follows runs next (depth first): one fold's tuning trials
    and its job finish together before the next fold starts.

    ``progress``: tqdm bars (a terminal) or one line per finished unit (logs). With the config's
    ``executor.jobs_per_device`` above 1, that many units run at once in worker processes
    (:mod:`medbench.engine.packing`)."""
    packed = works[0].spec.config.executor.jobs_per_device if works else 1
    if packed > 1 and len(works) > 1:  # one study's trials run one after another anyway
        from medbench.engine.packing import run_packed

        return run_packed(works, packed, progress=progress, report=report_line, follow=follow)
    outcomes: list[JobOutcome] = []
    queue = list(works)
    bar = None
    if progress and queue:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(queue), desc="grid", unit="run")
    try:
        while queue:
            work = queue.pop(0)
            outcome = work.run(work.spec, progress=progress)
            outcomes.append(outcome)
            if bar is None:
                report_line(work.name, outcome, len(outcomes), len(outcomes) + len(queue))
            else:
                bar.update(1)
                if outcome.status == Status.FAILED:
                    bar.write(f"medbench: warning: {work.name} failed: {outcome.reason}")
            if outcome.status == Status.KILLED:
                return outcomes, True
            more = follow(work, outcome)
            queue[:0] = more
            if bar is not None and more:
                bar.total += len(more)
                bar.refresh()
    except KeyboardInterrupt:
        return outcomes, True
    finally:
        if bar is not None:
            bar.close()
    return outcomes, False
