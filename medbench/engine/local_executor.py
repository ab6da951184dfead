"""Run a grid's jobs one after another in this process (the default executor)."""

from __future__ import annotations

import sys

from medbench.engine.worker import JobOutcome, JobSpec, Status, run_job


def report_line(outcome: JobOutcome, done: int, total: int) -> None:
    """Without progress bars (logs, CI): one line per finished job on stderr."""
    print(f"[{done:>{len(str(total))}}/{total}] {outcome.line()}", file=sys.stderr, flush=True)


def run_local(specs: list[JobSpec], progress: bool = True) -> tuple[list[JobOutcome], bool]:
    """Run every job; returns the outcomes and whether the user interrupted the grid.

    ``progress``: tqdm bars (a terminal) or one line per finished job (logs). With the config's
    ``executor.jobs_per_device`` above 1, that many jobs run at once in worker processes
    (:mod:`medbench.engine.packing`)."""
    packed = specs[0].config.executor.jobs_per_device if specs else 1
    if packed > 1 and len(specs) > 1:
        from medbench.engine.packing import run_packed

        return run_packed(specs, packed, progress=progress, report=report_line)
    outcomes: list[JobOutcome] = []
    bar = None
    if progress and specs:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), desc="grid", unit="job")
    try:
        for spec in specs:
            outcome = run_job(spec, progress=progress)
            outcomes.append(outcome)
            if bar is None:
                report_line(outcome, len(outcomes), len(specs))
            else:
                bar.update(1)
                if outcome.status == Status.FAILED:
                    bar.write(f"medbench: warning: {spec.job.run_name} failed: {outcome.reason}")
            if outcome.status == Status.KILLED:
                return outcomes, True
    except KeyboardInterrupt:
        return outcomes, True
    finally:
        if bar is not None:
            bar.close()
    return outcomes, False
