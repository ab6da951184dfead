"""How the MLflow UI shows medbench's runs: its saved view of an experiment, and run colours.

MLflow 3's runs page opens a *saved view* when its address names one (``viewStateShareKey``): an
experiment tag ``mlflow.sharedViewState.{key}`` holding the table's columns, their order and
widths, the sort and the charts' filter; the UI's "Views" menu lists it too. Every experiment
medbench writes carries :data:`RUNS_VIEW` under :data:`~medbench.tracking.schema.VIEW_KEY`, and
the address ``medbench ui`` prints names it, so the runs open on the comparison: one row per
(model, optimizer) parent with its cross-validated test AUC and accuracy, the optimizers of a
model on adjacent rows, each parent's fold runs (``+``) with their test AUC and accuracy.

Each run is given its optimizer's colour (MLflow's ``mlflow.runColor`` tag, which the UI's table
and charts use), from the report's colour table, so a colour means the same everywhere.

Written for MLflow 3.17's UI: the keys of :data:`RUNS_VIEW` are its runs page's search facets
and ``ExperimentPageUIState``; it fills in its defaults for any key left out. Pure functions: no
MLflow import.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from medbench.tracking import schema as s
from medbench.tracking.colours import OPTIMIZER_COLOURS

#: The view's name in the UI's "Views" menu.
VIEW_NAME = "medbench: optimizers side by side"

_RUN_NAME = "attributes.`Run Name`"


def _column(kind: str, name: str) -> str:
    """A column of the UI's runs table: ``params.`fold```, ``metrics.`test_auc```."""
    return f"{kind}.`{name}`"


#: The columns shown besides the run name: what tells the runs apart, then parents' means, then
#: fold runs' values (a parent has only the ``cv_`` ones, a fold run only the ``test_`` ones).
COLUMNS = (
    _column("params", "optimizer"),
    _column("params", "fold"),
    _column("metrics", s.cv_mean(s.test_metric("auc"))),
    _column("metrics", s.cv_mean(s.test_metric("accuracy"))),
    _column("metrics", s.test_metric("auc")),
    _column("metrics", s.test_metric("accuracy")),
)
#: Widths in pixels: a fold run's name, indented under its parent, is whole at 280 px up to
#: about 30 characters ("efficientnet_b0/gcsam/fold10"); metric headers are whole.
WIDTHS = dict(zip((_RUN_NAME, *COLUMNS), (280, 95, 60, 150, 180, 90, 115), strict=True))

RUNS_VIEW: dict[str, object] = {
    # oldest first: parents are created in the config's order (models, then optimizers), so a
    # model's Adam, SAM and GCSAM are adjacent rows; fold runs follow in the order they started
    "orderByKey": "attributes.start_time",
    "orderByAsc": True,
    "selectedColumns": list(COLUMNS),
    "columnOrder": [_RUN_NAME, *COLUMNS],
    "columnWidths": WIDTHS,
    # the charts show every run, not MLflow's default first ten rows
    "runsHiddenMode": "SHOW_ALL",
    # the chart view opens on the test AUC: parents' mean and std, each fold run's, per site
    "chartsSearchFilter": s.test_metric("auc"),
}


def view_tag(now_ms: int | None = None) -> str:
    """The value of :data:`~medbench.tracking.schema.TAG_VIEW`: MLflow's saved-view envelope
    (name, creation and update times in ms, the state as JSON text) around :data:`RUNS_VIEW`."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    envelope = {"name": VIEW_NAME, "createdAt": now_ms, "updatedAt": now_ms}
    return json.dumps({**envelope, "state": json.dumps(RUNS_VIEW)})


def _replace_view(value: str | None) -> bool:
    """Whether the saved view in an experiment's tag is to be (re)written: missing, unreadable,
    or another medbench version's that nobody saved over in the UI (its update time is then its
    creation time); a view a user saved over is theirs and stays."""
    if value is None:
        return True
    try:
        envelope = json.loads(value)
        if envelope["updatedAt"] != envelope["createdAt"]:
            return False
        return json.loads(envelope["state"]) != RUNS_VIEW
    except (ValueError, TypeError, KeyError):
        return True


def experiment_tags(existing: Mapping[str, str] | None = None) -> dict[str, str]:
    """The experiment tags to write: the model-training kind (the UI's experiment list then opens
    the runs, not GenAI traces) and medbench's view; for an existing experiment (``existing``, its
    tags) only those missing or outdated."""
    existing = existing or {}
    tags = {}
    if s.TAG_EXPERIMENT_KIND not in existing:
        tags[s.TAG_EXPERIMENT_KIND] = s.EXPERIMENT_KIND
    if _replace_view(existing.get(s.TAG_VIEW)):
        tags[s.TAG_VIEW] = view_tag()
    return tags


def run_tags(optimizer: str) -> dict[str, str]:
    """A run's colour tag: its optimizer's colour in the report. Every optimizer of the registry
    has a fixed one; another (the report colours it by its place among the experiment's) is left
    to MLflow."""
    colour = OPTIMIZER_COLOURS.get(optimizer)
    return {s.TAG_RUN_COLOUR: colour} if colour else {}
