"""The tracking layer: the only part of medbench that imports MLflow.

- :mod:`~medbench.tracking.schema`: every MLflow name (runs, params, metrics, tags, artifacts);
- :mod:`~medbench.tracking.store`: which store, whether it is usable;
- :mod:`~medbench.tracking.writer`: :class:`Tracker`, used by the engine and the test fixtures;
- :mod:`~medbench.tracking.reader`: :func:`load_experiment`, used by the report;
- :mod:`~medbench.tracking.view` and :mod:`~medbench.tracking.colours`: how the MLflow UI shows
  the runs (saved view, one colour per optimizer, the report's);
- :mod:`~medbench.tracking.ui`: ``medbench ui``, MLflow's UI server and the addresses it prints.
"""

from __future__ import annotations

import importlib
from typing import Any

# loaded on first use (PEP 562): `medbench report` and `ui` check the store (store.py) and fail
# in a second, before the reader's pandas/scipy and MLflow load
_EXPORTS = {
    "CONFIG_FILE": "schema",
    "FLATNESS_FILE": "schema",
    "PREDICTIONS_FILE": "schema",
    "ExperimentRecord": "reader",
    "RunRef": "writer",
    "Tracker": "writer",
    "check_store": "store",
    "is_local_uri": "store",
    "load_experiment": "reader",
    "log_report": "writer",
    "resolve_tracking_uri": "store",
    "runs_url": "ui",
    "serve_ui": "ui",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'medbench.tracking' has no attribute {name!r}")
    return getattr(importlib.import_module(f"medbench.tracking.{_EXPORTS[name]}"), name)
