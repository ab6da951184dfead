"""Where a grid's works run: one contract (:class:`~.base.Executor`: submit, wait, cancel),
three implementations (:mod:`.local`: one after another in this process; :mod:`.packed`:
``executor.jobs_per_device`` worker processes; :mod:`.ray`: Ray tasks), one scheduling loop
(:func:`~.loop.run_works`: queue, retries, tuning studies, progress, interrupts), and one place
that chooses between them (:func:`choose_executor`).
"""

from __future__ import annotations

from collections.abc import Callable

from medbench.config import Config
from medbench.engine.device import resolve_device
from medbench.engine.executors.base import Executor
from medbench.engine.executors.local import LocalExecutor
from medbench.engine.executors.loop import run_works
from medbench.engine.executors.packed import PackedExecutor, threads_per_job
from medbench.engine.executors.ray import RayExecutor, check_ray_store

__all__ = ["Executor", "choose_executor", "run_works"]


def choose_executor(
    config: Config, tracking_uri: str, kind: str | None = None, address: str | None = None
) -> Callable[[int], Executor]:
    """Choose where ``config``'s works run, from ``config.executor`` (``kind`` and ``address``:
    the command line's overrides), and check now, before any data work, that they can run
    there: Ray needs a store its workers reach, this machine the configured device.

    Returns the executor for a number of works: Ray tasks when ``kind`` is ``ray``; else, with
    ``jobs_per_device`` above 1 and more than one work, that many worker processes (at most one
    per work; each with its share of the CPUs); else one work after another in this process (a
    single work, such as one tuning study whose trials run in turn, gains nothing from a worker
    process and keeps this process's threads).
    """
    executor = config.executor
    if (kind or executor.kind) == "ray":
        address = address or executor.address
        check_ray_store(tracking_uri, address)
        return lambda works: RayExecutor(executor, address)
    resolve_device(config.train.device)  # a missing CUDA device fails before any work
    jobs = executor.jobs_per_device

    def on_this_machine(works: int) -> Executor:
        if jobs > 1 and works > 1:
            return PackedExecutor(min(jobs, works), threads_per_job(jobs))
        return LocalExecutor()

    return on_this_machine
