"""Jobs: one (model, optimizer, fold, seed) each, a plain value that can run anywhere."""

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

    @property
    def parent_name(self) -> str:
        return schema.parent_run_name(self.model, self.optimizer)

    @property
    def run_name(self) -> str:
        return schema.child_run_name(self.model, self.optimizer, self.fold)

    @property
    def key(self) -> str:
        """Identity of the job across runs of the same config (the resume key)."""
        return schema.job_key(self.model, self.optimizer, self.fold, self.seed)


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


def init_seed(job: Job) -> int:
    """Seed of the initial weights: the same for every optimizer of (model, fold, seed)."""
    return derive_seed("init", job.model, job.fold, job.seed)


def data_seed(job: Job) -> int:
    """Seed of batch order and augmentation: the same for every optimizer and model of (fold, seed)."""
    return derive_seed("data", job.fold, job.seed)


def hyperparameters(optimizer: str, lr: float, rho: float) -> dict[str, float]:
    """The settings tuning searches for ``optimizer`` (and its fold run logs): ``lr``, and
    ``rho`` for the SAM family."""
    values = {"lr": lr, "rho": rho}
    return {name: values[name] for name in tunable_settings(optimizer)}


def make_jobs(
    models: list[str], optimizers: list[str], folds: list[int], seeds: list[int]
) -> list[Job]:
    """The grid, ordered so that a fold's optimizers run one after another (paired results land together)."""
    return [Job(m, o, f, s) for s in seeds for m in models for f in folds for o in optimizers]
