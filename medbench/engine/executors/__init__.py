"""Where a grid's works run: one contract (:class:`~.base.Executor`: submit, wait, cancel),
three implementations (:mod:`.local`: one after another in this process; :mod:`.packed`:
``executor.jobs_per_device`` worker processes; :mod:`.ray`: Ray tasks), one scheduling loop
(:func:`~.loop.run_works`: queue, retries, tuning studies, progress, interrupts), and one place
that chooses between them (:func:`choose_executor`), with how many jobs share a device
(:func:`packing`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from medbench.config import AUTO_JOBS, Config
from medbench.engine.device import resolve_device
from medbench.engine.executors.base import Executor
from medbench.engine.executors.local import LocalExecutor
from medbench.engine.executors.loop import run_works
from medbench.engine.executors.packed import PackedExecutor, available_cpus, threads_per_job
from medbench.engine.executors.ray import RayExecutor, check_ray_store

__all__ = ["Executor", "Packing", "choose_executor", "packing", "run_works"]


@dataclass(frozen=True)
class Packing:
    """How a grid shares one device: ``jobs`` at once, each on ``threads`` CPU threads (0: the
    running process's own count, torch's default unless ``train.threads`` pins it)."""

    jobs: int
    threads: int

    @property
    def worker_threads(self) -> int:
        """A packed worker's threads: its own count, else an even share of the CPUs."""
        return self.threads or threads_per_job(self.jobs)


def packing(config: Config, device: torch.device) -> Packing:
    """``executor.jobs_per_device`` and ``train.threads`` on ``device``, ``auto`` resolved.

    ``auto`` on the CPU, with ``train.threads`` unset, runs one job at a time on every thread:
    measured here (``medbench bench packing``, README "Speed"), one 2-thread job beats two
    1-thread jobs packed for the demo's model on 2 cores (0.46x: each packed worker's start-up,
    spawn and imports, costs about 7 CPU-seconds). With ``train.threads`` pinned (the demo pins
    1, so that its metrics are the same on any machine), ``auto`` runs one job per that many
    cores, the only way to use the other cores without changing a job's thread count, hence its
    metrics. The choice is a rule, not a timing taken at run time, so that it is the same from
    run to run. On CUDA, where packing changes no result, ``auto`` is one job: what packing
    gains there depends on the model and the GPU (``medbench bench paper --jobs``), so set a
    number to pack.
    """
    jobs, threads = config.executor.jobs_per_device, config.train.threads
    if jobs != AUTO_JOBS:
        return Packing(jobs, threads)
    if device.type != "cpu" or not threads:
        return Packing(1, threads)
    return Packing(max(1, available_cpus() // threads), threads)


def choose_executor(
    config: Config, tracking_uri: str, kind: str | None = None, address: str | None = None
) -> Callable[[int], Executor]:
    """Choose where ``config``'s works run, from ``config.executor`` (``kind`` and ``address``:
    the command line's overrides), and check now, before any data work, that they can run
    there: Ray needs a store its workers reach, this machine the configured device.

    Returns the executor for a number of works: Ray tasks when ``kind`` is ``ray``; else, with
    ``jobs_per_device`` (:func:`packing`) above 1 and more than one work, that many worker
    processes (at most one per work; each with its share of the CPUs); else one work after
    another in this process (a single work, such as one tuning study whose trials run in turn,
    gains nothing from a worker process and keeps this process's threads, unless ``auto`` set
    the jobs' thread count).
    """
    executor = config.executor
    if (kind or executor.kind) == "ray":
        address = address or executor.address
        check_ray_store(tracking_uri, address)
        return lambda works: RayExecutor(executor, address)
    # a missing CUDA device fails before any work
    shared = packing(config, resolve_device(config.train.device))

    def on_this_machine(works: int) -> Executor:
        if shared.jobs > 1 and works > 1:
            return PackedExecutor(min(shared.jobs, works), shared.worker_threads)
        return LocalExecutor(shared.threads)

    return on_this_machine
