"""The tracking layer: the only part of medbench that imports MLflow.

- :mod:`~medbench.tracking.schema`: every MLflow name (runs, params, metrics, tags, artifacts);
- :mod:`~medbench.tracking.store`: which store, whether it is usable;
- :mod:`~medbench.tracking.writer`: :class:`Tracker`, used by the engine and the test fixtures;
- :mod:`~medbench.tracking.reader`: :func:`load_experiment`, used by the report;
- :mod:`~medbench.tracking.view` and :mod:`~medbench.tracking.colours`: how the MLflow UI shows
  the runs (saved view, one colour per optimizer, the report's);
- :mod:`~medbench.tracking.ui`: ``medbench ui``, MLflow's UI server and the addresses it prints.
"""

from medbench.tracking.reader import ExperimentRecord, load_experiment
from medbench.tracking.schema import CONFIG_FILE, FLATNESS_FILE, PREDICTIONS_FILE
from medbench.tracking.store import check_store, is_local_uri, resolve_tracking_uri
from medbench.tracking.ui import runs_url, serve_ui
from medbench.tracking.writer import RunRef, Tracker, log_report

__all__ = [
    "CONFIG_FILE",
    "FLATNESS_FILE",
    "PREDICTIONS_FILE",
    "ExperimentRecord",
    "RunRef",
    "Tracker",
    "check_store",
    "is_local_uri",
    "load_experiment",
    "log_report",
    "resolve_tracking_uri",
    "runs_url",
    "serve_ui",
]
