"""Optimizers compared by the suite: Adam, SAM (and ASAM) and GCSAM, behind one registry.

``sam`` holds the SAM family (:class:`SAM`, :class:`GCSAM`) and the BatchNorm switches of its
second pass; ``centralization`` holds Gradient Centralization; ``registry`` builds any of them by
name from one set of settings (:func:`build_optimizer`, :func:`list_optimizers`); ``defaults``
holds the shared defaults.

The names below load on first use (PEP 562): importing ``medbench.optim.registry`` for a config
check must not import torch through this package.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GCSAM": "medbench.optim.sam",
    "OPTIMIZER_SETTINGS": "medbench.optim.registry",
    "SAM": "medbench.optim.sam",
    "build_optimizer": "medbench.optim.registry",
    "centralize_gradients": "medbench.optim.centralization",
    "disable_running_stats": "medbench.optim.sam",
    "enable_running_stats": "medbench.optim.sam",
    "list_optimizers": "medbench.optim.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'medbench.optim' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
