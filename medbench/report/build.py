"""``medbench report``: read an experiment from MLflow (:func:`read_experiment`), analyse it
(:func:`~medbench.report.analysis.analyse`), write figures, CSV tables, ``report.md`` and a
self-contained ``report.html`` and attach them to the experiment's parent runs
(:func:`write_report`); :func:`build_report` does all three in one call.

Writing loops over the parts of the analysis, in order: each part's tables
(``table_{name}.csv``), its figures, then its sections of the document (:func:`compose`).

Everything lands flat in one folder (``fig_*``, ``table_*``, ``report.*``) so that the relative
links of ``report.md`` also resolve in the ``report/`` artifact folder of each parent run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medbench.errors import TrackingError
from medbench.paths import atomic_folder, ensure_folder, storage_error
from medbench.report import document as d
from medbench.report.analysis import analyse
from medbench.report.figures import FigureFiles, safe_name
from medbench.report.part import Analysis, Writer
from medbench.tracking import ExperimentRecord, load_experiment, log_report


def default_out_dir(experiment: str) -> Path:
    """``reports/EXPERIMENT`` in the working folder (the name made safe for a folder)."""
    return Path("reports") / safe_name(experiment)


def read_experiment(
    experiment: str, tracking_uri: str | None = None, select: tuple[str, str] | None = None
) -> ExperimentRecord:
    """Read the runs of ``experiment`` that one report covers, without MLflow's progress bars.

    Parameters
    ----------
    experiment : str
        MLflow experiment name (the config's ``name``).
    tracking_uri : str, optional
        Tracking store; by default ``MLFLOW_TRACKING_URI`` or MLflow's default store.
    select : tuple of (str, str), optional
        (config hash, dataset fingerprint) of the runs to read; by default those of the
        experiment's most recently started parent run.

    Returns
    -------
    ExperimentRecord
        Runs, per-epoch curves, predictions and JSON artifacts of the selected runs.

    Raises
    ------
    TrackingError
        The store cannot be reached, the experiment does not exist or has no (selected) runs.
    """
    with _quiet_downloads():
        return load_experiment(experiment, tracking_uri, select=select)


def write_report(
    record: ExperimentRecord,
    analysis: Analysis,
    out_dir: str | Path | None = None,
    log: bool = True,
) -> Path:
    """Write the figures, CSV tables, ``report.md`` and ``report.html`` of an analysed experiment.

    Parameters
    ----------
    record : ExperimentRecord
        The experiment, as returned by :func:`read_experiment`.
    analysis : Analysis
        ``analyse(record)``; pass the one the caller already holds (e.g. for the closing summary)
        rather than computing it twice.
    out_dir : str or Path, optional
        Folder to write into, created if needed; by default ``reports/EXPERIMENT``.
    log : bool, default=True
        Also attach every file to each parent run of the experiment under ``report/``.

    Returns
    -------
    Path
        The folder holding the report.
    """
    out = Path(out_dir) if out_dir else default_out_dir(record.name)
    ensure_folder(out)

    def fill(tmp: Path) -> list[str]:
        tables = write_tables(analysis, tmp)
        figs = draw_figures(analysis, tmp)
        doc = compose(analysis, figs, tables)
        (tmp / "report.md").write_text(d.to_markdown(doc), encoding="utf-8")
        (tmp / "report.html").write_text(d.to_html(doc, tmp), encoding="utf-8")
        return [
            *(p.name for p in tables.values()),
            *(p.name for f in figs.values() for p in (f.png, f.svg)),
            "report.md",
            "report.html",
        ]

    # an interrupted build (Ctrl-C, SIGTERM, a full disk) leaves the previous report as it was,
    # never half of a new one: report.html moves in last, once the rest is there
    try:
        names = atomic_folder(out, fill, last="report.html", stage="building")
    except OSError as err:
        raise storage_error(out, err, "cannot write the report") from err
    if log and not record.parents.empty:
        try:
            log_report(record.uri, list(record.parents["run_id"]), [out / n for n in names])
        except TrackingError as err:  # a full disk under the artifacts, a store gone
            raise TrackingError(
                f"the report was written to {out}, but not attached to the runs: {err}"
            ) from err
    return out


def build_report(
    experiment: str,
    tracking_uri: str | None = None,
    out_dir: str | Path | None = None,
    log: bool = True,
    select: tuple[str, str] | None = None,
) -> Path:
    """Build the report of an MLflow experiment in one call (``medbench report``).

    Reads the experiment (:func:`read_experiment`), analyses it
    (:func:`~medbench.report.analysis.analyse`) and writes it (:func:`write_report`).

    Parameters
    ----------
    experiment : str
        MLflow experiment name (the config's ``name``).
    tracking_uri : str, optional
        Tracking store; by default ``MLFLOW_TRACKING_URI`` or MLflow's default store.
    out_dir : str or Path, optional
        Folder to write into, created if needed; by default ``reports/EXPERIMENT``.
    log : bool, default=True
        Also attach every file to each parent run of the experiment under ``report/``.
    select : tuple of (str, str), optional
        (config hash, dataset fingerprint) of the runs to report; by default those of the
        experiment's most recently started parent run.

    Returns
    -------
    Path
        The folder holding ``report.md``, ``report.html``, ``fig_*`` and ``table_*.csv``.

    Raises
    ------
    TrackingError
        The store cannot be reached, the experiment does not exist or has no (selected) runs.
    """
    record = read_experiment(experiment, tracking_uri, select)
    return write_report(record, analyse(record), out_dir or default_out_dir(experiment), log)


@contextmanager
def _quiet_downloads() -> Iterator[None]:
    """MLflow draws a progress bar per downloaded artifact: hundreds of lines for one report."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if key in os.environ:
        yield
        return
    os.environ[key] = "false"
    try:
        yield
    finally:
        os.environ.pop(key, None)


# -- writing, part by part ------------------------------------------------------------------------


def write_tables(a: Analysis, out: Path) -> dict[str, Path]:
    """Every part's tables as full-precision CSVs, ``table_{name}.csv`` (the Markdown shows
    rounded values); empty tables are not written."""
    written: dict[str, Path] = {}
    for part in a.parts:
        for name, frame in part.tables(a.result(part.name)).items():
            if name in written:
                raise ValueError(f"part {part.name!r}: a table {name!r} was already written")
            if frame is None or frame.empty:
                continue
            path = out / f"table_{name}.csv"
            frame.to_csv(path, index=False)
            written[name] = path
    return written


def draw_figures(a: Analysis, out: Path) -> dict[str, FigureFiles]:
    """Every figure the data allow, by key (the keys the sections show them by)."""
    made: dict[str, FigureFiles] = {}
    for part in a.parts:
        drawn = part.figures(a.result(part.name), a, out)
        again = sorted(set(drawn) & set(made))
        if again:
            raise ValueError(f"part {part.name!r}: figure(s) {', '.join(again)} drawn twice")
        made.update(drawn)
    return made


def compose(a: Analysis, figs: dict[str, FigureFiles], tables: dict[str, Path]) -> d.Document:
    """The whole report: each part's sections in order; ``figs`` and ``tables`` are the files
    written beside it, by key."""
    doc = d.Document(f"medbench report: {a.inputs.record.name}")
    writer = Writer(a, figs, tables, doc)
    for part in a.parts:
        part.sections(a.result(part.name), writer)
    return doc
