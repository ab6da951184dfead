"""Run a grid's jobs one after another in this process (the default executor)."""

from __future__ import annotations

from medbench.engine.worker import JobOutcome, JobSpec, Status, run_job


def run_local(specs: list[JobSpec], progress: bool = True) -> tuple[list[JobOutcome], bool]:
    """Run every job; returns the outcomes and whether the user interrupted the grid."""
    outcomes: list[JobOutcome] = []
    bar = None
    if progress and specs:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), desc="grid", unit="job")
    try:
        for spec in specs:
            outcome = run_job(spec, progress=progress)
            outcomes.append(outcome)
            if bar is not None:
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
