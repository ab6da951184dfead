"""Optimizers compared by the suite: Adam, SAM (and ASAM) and GCSAM, behind one registry."""

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
