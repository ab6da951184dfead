"""``medbench report``: read an experiment from MLflow (:func:`read_experiment`), analyse it
(:func:`~medbench.report.analysis.analyse`), write figures, CSV tables, ``report.md`` and a
self-contained ``report.html`` and attach them to the experiment's parent runs
(:func:`write_report`); :func:`build_report` does all three in one call.

Everything lands flat in one folder (``fig_*``, ``table_*``, ``report.*``) so that the relative
links of ``report.md`` also resolve in the ``report/`` artifact folder of each parent run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medbench.paths import atomic_folder, ensure_folder, storage_error
from medbench.report import document as d
from medbench.report import figures, vocab
from medbench.report.analysis import Analysis, analyse
from medbench.report.sections import compose
from medbench.tracking import ExperimentRecord, load_experiment, log_report


def default_out_dir(experiment: str) -> Path:
    """``reports/EXPERIMENT`` in the working folder (the name made safe for a folder)."""
    return Path("reports") / _safe(experiment)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "report"


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
        doc = compose(record, analysis, figs, tables)
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
        log_report(record.uri, list(record.parents["run_id"]), [out / n for n in names])
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


# -- tables ------------------------------------------------------------------------------------

TABLE_FILES = {
    "runs": "table_runs.csv",
    "problems": "table_failed_runs.csv",
    "per_fold": "table_per_fold.csv",
    "performance": "table_performance.csv",
    "pooled": "table_pooled_auc.csv",
    "seed_spread": "table_seed_spread.csv",
    "fold_differences": "table_fold_differences.csv",
    "paired": "table_paired_tests.csv",
    "paired_pooled": "table_paired_pooled_auc.csv",
    "calibration": "table_calibration.csv",
    "confusion": "table_confusion.csv",
    "sites": "table_sites.csv",
    "readers": "table_readers.csv",
    "agreement": "table_reader_agreement.csv",
    "vs_readers": "table_model_vs_readers.csv",
    "curves": "table_learning_curves.csv",
    "fidelity": "table_fidelity.csv",
    "cost_per_fold": "table_cost_per_fold.csv",
    "cost": "table_cost.csv",
    "flatness_per_fold": "table_flatness_per_fold.csv",
    "flatness": "table_flatness.csv",
    "tuning_chosen": "table_tuning_chosen.csv",
    "tuning_trials": "table_tuning_trials.csv",
    "total_cost_per_fold": "table_total_cost_per_fold.csv",
    "total_cost": "table_total_cost.csv",
    "time_to_target_per_fold": "table_time_to_target_per_fold.csv",
    "time_to_target": "table_time_to_target.csv",
    "compute_curves": "table_val_auc_by_compute.csv",
    "equal_compute": "table_equal_compute.csv",
    "external": "table_external.csv",
    "external_per_fold": "table_external_per_fold.csv",
    "external_paired": "table_external_paired_tests.csv",
}


def write_tables(a: Analysis, out: Path) -> dict[str, Path]:
    """Every table as a full-precision CSV (the Markdown shows rounded values)."""
    frames = {
        "runs": a.inventory.status,
        "problems": a.inventory.problems,
        "per_fold": a.per_unit,
        "performance": a.performance,
        "pooled": a.pooled,
        "seed_spread": a.seed_spread,
        "fold_differences": a.fold_differences,
        "paired": a.paired,
        "paired_pooled": a.paired_pooled,
        "calibration": a.calibration,
        "confusion": a.confusion,
        "sites": a.sites,
        "readers": a.readers,
        "agreement": a.agreement,
        "vs_readers": a.vs_readers,
        "curves": a.curves,
        "fidelity": a.fidelity,
        "cost_per_fold": a.cost_per_unit,
        "cost": a.cost,
        "flatness_per_fold": a.flatness_per_unit,
        "flatness": a.flatness,
        "tuning_chosen": a.protocol.chosen,
        "tuning_trials": a.protocol.trials,
        "total_cost_per_fold": a.protocol.cost_per_unit,
        "total_cost": a.protocol.cost,
        "time_to_target_per_fold": a.protocol.target_per_unit,
        "time_to_target": a.protocol.to_target,
        "compute_curves": a.protocol.compute_curves,
        "equal_compute": a.protocol.equal_compute,
    }
    if a.external is not None:
        frames.update(
            external=a.external.summary,
            external_per_fold=a.external.per_unit,
            external_paired=a.external.paired,
        )
    written = {}
    for key, frame in frames.items():
        if frame is None or frame.empty:
            continue
        path = out / TABLE_FILES[key]
        frame.to_csv(path, index=False)
        written[key] = path
    return written


# -- figures -----------------------------------------------------------------------------------


def draw_figures(a: Analysis, out: Path) -> dict[str, figures.FigureFiles]:
    """Draw every figure the data allow; keys name them for :func:`compose`."""
    colours = vocab.optimizer_colours(a.optimizers)
    made: dict[str, figures.FigureFiles] = {}
    if a.external is not None and not a.external.empty:
        made.update(_external_figures(a, colours, out))
    if a.per_unit.empty:
        return made
    models = [m for m in a.models if (a.per_unit["model"] == m).any()]
    opts = [o for o in a.optimizers if (a.per_unit["optimizer"] == o).any()]
    folds = sorted(a.fold_means["fold"].unique())  # the order of the folds' markers

    def keep(key: str, fig, stem: str) -> None:
        made[key] = figures.save(fig, out, stem)

    for model in models:
        keep(
            f"roc/{model}",
            figures.roc(a.roc, a.performance, a.readers_by_model, model, opts, colours),
            f"fig_roc_{_safe(model)}",
        )
        keep(
            f"confusion/{model}",
            figures.confusion(a.confusion_shares, model, opts),
            f"fig_confusion_{_safe(model)}",
        )
        keep(
            f"reliability/{model}",
            figures.reliability(a.reliability, model, opts, colours),
            f"fig_reliability_{_safe(model)}",
        )
        if not a.landscape.empty and (a.landscape["model"] == model).any():
            keep(
                f"flatness/{model}",
                figures.flatness(a.landscape, a.flatness_folds, a.flatness, model, opts, colours),
                f"fig_flatness_{_safe(model)}",
            )
    keep(
        "intervals",
        figures.intervals(a.performance, a.fold_means, models, opts, colours),
        "fig_auc_accuracy_ci",
    )
    keep(
        "paired",
        figures.paired_folds(a.paired_folds, models, opts, colours, folds),
        "fig_paired_folds_auc",
    )
    if not a.paired.empty:
        keep(
            "differences",
            figures.differences(
                a.fold_differences,
                a.paired,
                models,
                list(dict.fromkeys(a.paired["metric"])),
                a.rope,
                folds,
            ),
            "fig_differences",
        )
    if not a.curves.empty:
        keep("learning", figures.learning(a.curves, models, opts, colours), "fig_learning_curves")
    if not a.cost.empty:
        keep("cost", figures.cost(a.cost, models, opts, colours), "fig_training_cost")
        if a.cost["gradient_evals_n"].gt(0).any():
            keep(
                "compute",
                figures.compute(a.performance, a.cost, models, opts, colours),
                "fig_auc_vs_compute",
            )
    p = a.protocol
    if not p.chosen.empty:
        space = p.tune.get("space") or {}
        bounds = {
            name: tuple(space[f"{name}_{end}"] for end in ("low", "high"))
            for name in ("lr", "rho")
            if all(f"{name}_{end}" in space for end in ("low", "high"))
        }
        tuned = [m for m in models if (p.chosen["model"] == m).any()]
        keep("tuning", figures.tuning_choices(p.chosen, bounds, tuned, opts, colours), "fig_tuning")
    if not p.compute_curves.empty:
        keep(
            "compute_curves",
            figures.compute_curves(p.compute_curves, p.target, models, opts, colours),
            "fig_val_auc_by_compute",
        )
    return made


def _external_figures(
    a: Analysis, colours: dict[str, str], out: Path
) -> dict[str, figures.FigureFiles]:
    """The ROC of each model on each external dataset (keys ``external_roc/{dataset}/{model}``)."""
    ext, made = a.external, {}
    for name in ext.datasets:
        tables = [t[t["dataset"] == name] for t in (ext.roc, ext.summary, ext.readers)]
        for model in a.models:
            opts = [
                o
                for o in a.optimizers
                if ((tables[1]["model"] == model) & (tables[1]["optimizer"] == o)).any()
            ]
            if not opts:
                continue
            fig = figures.roc(
                *tables,
                model,
                opts,
                colours,
                title=f"{model} on {name} (external)\nROC, mean ± 1 std over fold checkpoints",
            )
            made[f"external_roc/{name}/{model}"] = figures.save(
                fig, out, f"fig_external_roc_{_safe(name)}_{_safe(model)}"
            )
    return made
