"""Optimizers compared by the suite: Adam, SAM (and ASAM) and GCSAM, behind one registry.

``sam`` holds the SAM family (:class:`SAM`, :class:`GCSAM`) and the BatchNorm switches of its
second pass; ``centralization`` holds Gradient Centralization; ``registry`` builds any of them by
name from one set of settings (:func:`build_optimizer`, :func:`list_optimizers`).
"""

from medbench.optim.centralization import centralize_gradients
from medbench.optim.registry import OPTIMIZER_SETTINGS, build_optimizer, list_optimizers
from medbench.optim.sam import GCSAM, SAM, disable_running_stats, enable_running_stats

__all__ = [
    "GCSAM",
    "OPTIMIZER_SETTINGS",
    "SAM",
    "build_optimizer",
    "centralize_gradients",
    "disable_running_stats",
    "enable_running_stats",
    "list_optimizers",
]
