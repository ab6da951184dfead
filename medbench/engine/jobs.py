"""Jobs: one (model, optimizer, fold, seed) each, a plain value that can run anywhere; with
repeated cross-validation (``cv.repeats``) a job also names its repeat, whose folds are a
re-partition of the same images.

Every seed of a job derives from (model, fold, seed) and, from repeat 2 on, its repeat: repeat 1
keeps the seeds (and names) a grid without repeats has."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from medbench.optim.registry import tunable_settings
from medbench.tracking import schema


@dataclass(frozen=True, order=True)
class Job:
    model: str
    optimizer: str
    fold: int | str  # a site name when a site is left out
    seed: int
    repeat: int = 1  # of a repeated cross-validation: 1 is the dataset's own folds

    @property
    def parent_name(self) -> str:
        return schema.parent_run_name(self.model, self.optimizer)

    @property
    def run_name(self) -> str:
        return schema.child_run_name(self.model, self.optimizer, self.fold, self.repeat)

    @property
    def key(self) -> str:
        """Identity of the job across runs of the same config (the resume key)."""
        return schema.job_key(self.model, self.optimizer, self.fold, self.seed, self.repeat)


def derive_seed(*parts: int | str) -> int:
    """A 31-bit seed from parts; the same parts give the same seed on every machine."""
    words: list[int] = []
    for p in parts:
        if isinstance(p, int):
            words += [p % (2**32), p // (2**32) % (2**32)]
        else:
            digest = hashlib.sha256(str(p).encode()).digest()
            words += [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return int(np.random.SeedSequence(words).generate_state(1)[0] % (2**31 - 1))


def _repeat(job: Job) -> tuple[int | str, ...]:
    """The repeat's part of a job's seeds: none for repeat 1, whose seeds stay those of a grid
    without repeats."""
    return () if job.repeat == 1 else ("repeat", job.repeat)


def init_seed(job: Job) -> int:
    """Seed of the initial weights: the same for every optimizer of (model, repeat, fold, seed)."""
    return derive_seed("init", job.model, job.fold, job.seed, *_repeat(job))


def data_seed(job: Job) -> int:
    """Seed of batch order and augmentation: the same for every optimizer and model of (repeat,
    fold, seed)."""
    return derive_seed("data", job.fold, job.seed, *_repeat(job))


def val_seed(job: Job) -> int:
    """Seed of the validation split carved out of the training folds: the same for every model
    and optimizer of (repeat, seed)."""
    return derive_seed("val", job.seed, *_repeat(job))


def study_seed(job: Job) -> int:
    """Seed of a tuning study: one per (model, repeat, fold, seed), the same for every optimizer."""
    return derive_seed("tune", job.model, job.fold, job.seed, *_repeat(job))


def hyperparameters(optimizer: str, lr: float, rho: float) -> dict[str, float]:
    """The settings tuning searches for ``optimizer`` (and its fold run logs): ``lr``, and
    ``rho`` for the SAM family."""
    values = {"lr": lr, "rho": rho}
    return {name: values[name] for name in tunable_settings(optimizer)}


def make_jobs(
    models: list[str],
    optimizers: list[str],
    folds: list[int],
    seeds: list[int],
    repeats: int = 1,
) -> list[Job]:
    """The grid, ordered so that a fold's optimizers run one after another (paired results land
    together), and a repeat's folds before the next repeat's."""
    return [
        Job(m, o, f, s, r)
        for s in seeds
        for m in models
        for r in range(1, repeats + 1)
        for f in folds
        for o in optimizers
    ]
