"""Reading an experiment back for the report: runs, per-epoch curves, predictions, artifacts.

Only the names of :mod:`medbench.tracking.schema` are read, and ``predictions.csv`` gets the
dtypes the schema gives it, so a report can be rebuilt from any store that holds the runs.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from medbench.errors import TrackingError, closest
from medbench.optional import lazy_import
from medbench.tracking import schema as s
from medbench.tracking.lock import is_lock
from medbench.tracking.store import POINT_AT_STORE, check_store, resolve_tracking_uri
from medbench.tracking.writer import guarded_client

mlflow_exceptions = lazy_import("mlflow.exceptions")  # mlflow loads on first use


@dataclass
class ExperimentRecord:
    """Everything the report needs, read back from MLflow."""

    name: str
    uri: str
    experiment_id: str
    #: one row per parent run: run_id, model, optimizer, status, param.*, metrics, tag.medbench.*
    parents: pd.DataFrame
    #: one row per child run: run_id, parent_run_id, model, optimizer, repeat (an integer: the
    #: param ``repeat``, 1 for runs without it), fold, seed, status, failure, start/end time,
    #: param.*, metrics, tag.medbench.*
    folds: pd.DataFrame
    curves: pd.DataFrame  # run_id, metric, step, value (per-epoch metrics of every child)
    predictions: pd.DataFrame  # run_id, model, optimizer, seed + the predictions.csv columns
    artifacts: dict[str, dict[str, Any]]  # run_id -> {json artifact name -> parsed content}
    config: dict[str, Any]  # the config that produced the runs (config.yaml of a parent)
    tags: dict[str, str]  # common tags (version, hash, fingerprint, environment)
    ignored_runs: int = 0  # runs of other configs or datasets in the same experiment, left out
    #: one row per tuning trial run (nested under a fold run, never a fold itself): run_id,
    #: parent_run_id (its fold run), model, optimizer, repeat, fold, seed (the fold run's), trial,
    #: status, failure, param.*, metrics
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: predictions of the selected checkpoints on external datasets: run_id, model, optimizer,
    #: seed, dataset + the predictions.csv columns (``fold`` is the checkpoint's)
    external: pd.DataFrame = field(default_factory=pd.DataFrame)


def tag_column(tag: str) -> str:
    """The column of :attr:`ExperimentRecord.parents`/``folds`` holding a ``medbench.*`` tag."""
    return f"tag.{tag}"


def param_column(param: str) -> str:
    """The column of :attr:`ExperimentRecord.parents`/``folds`` holding a param."""
    return f"param.{param}"


def _runs_frame(runs) -> pd.DataFrame:
    rows = []
    for r in runs:
        row = {
            "run_id": r.info.run_id,
            "run_name": r.data.tags.get(s.TAG_RUN_NAME, ""),
            "status": r.info.status,
            "parent_run_id": r.data.tags.get(s.TAG_PARENT_RUN_ID),
            "failure": r.data.tags.get(s.TAG_FAILURE),
            "start_time": r.info.start_time,
            "end_time": r.info.end_time,
        }
        row.update({param_column(k): v for k, v in r.data.params.items()})
        row.update(r.data.metrics)
        row.update({tag_column(k): v for k, v in r.data.tags.items() if k.startswith("medbench.")})
        rows.append(row)
    return pd.DataFrame(rows)


def read_predictions(text: str) -> pd.DataFrame:
    """Parse a ``predictions.csv`` with the schema's dtypes (empty reader cells stay '')."""
    text_columns = [c for c, dtype in s.PREDICTION_COLUMNS.items() if dtype == "str"]
    return pd.read_csv(
        io.StringIO(text),
        dtype=dict.fromkeys(text_columns, str),
        keep_default_na=False,
        na_values={"prob_malignant": [""], "label": [""], "fold": [""]},
    )


def load_experiment(
    name: str,
    uri: str | None = None,
    json_artifacts: Iterable[str] = (s.FLATNESS_FILE,),
    select: tuple[str, str] | None = None,
) -> ExperimentRecord:
    """Read runs, per-epoch curves, predictions and JSON artifacts of experiment ``name``.

    Only the runs of one (config hash, dataset fingerprint) are read: ``select``, or by default
    those of the most recently started parent run.
    """
    uri = resolve_tracking_uri(uri)
    check_store(uri, create=False)
    mlflow_client = guarded_client(uri)  # a server that fails its API calls: one line
    exp = mlflow_client.get_experiment_by_name(name)
    if exp is None or is_lock(exp):
        known = [
            e.name
            for e in mlflow_client.search_experiments(max_results=200)
            if not is_lock(e) and e.name != "Default"
        ]
        raise TrackingError(
            f"no experiment named {name!r} in {uri}{closest(name, known)}; experiments there: "
            f"{', '.join(known) or 'none'}; for another store, {POINT_AT_STORE}"
        )
    runs = mlflow_client.search_runs([exp.experiment_id], max_results=50000)
    frame = _runs_frame(runs)
    if frame.empty:
        raise TrackingError(f"experiment {name!r} in {uri} has no runs")
    # One report = one config on one dataset: the latest parent's (config hash, fingerprint).
    # Runs of earlier configs in the same experiment would otherwise be pooled as extra folds.
    ignored = 0
    hash_col, fp_col = tag_column(s.TAG_CONFIG_HASH), tag_column(s.TAG_FINGERPRINT)
    # Runs that other tools logged into the same experiment carry no medbench tags: left out.
    ours = frame[hash_col].notna() if hash_col in frame else pd.Series(False, index=frame.index)
    if not ours.any():
        raise TrackingError(
            f"experiment {name!r} in {uri} holds no medbench runs ({len(frame)} runs of other tools)"
        )
    ignored = int((~ours).sum())
    frame = frame[ours]
    roots = frame[frame["parent_run_id"].isna()]
    if fp_col in frame and not roots.empty:
        if select is None:
            latest = roots.sort_values("start_time").iloc[-1]
            select = (latest[hash_col], latest[fp_col])
        keep = (frame[hash_col] == select[0]) & (frame[fp_col] == select[1])
        if not keep.any():
            raise TrackingError(
                f"experiment {name!r} has no runs of config {select[0]} on dataset {select[1][:12]}"
            )
        ignored += int((~keep).sum())
        frame = frame[keep]
    runs = [r for r in runs if r.info.run_id in set(frame["run_id"])]
    trial_col = tag_column(s.TAG_TRIAL)
    is_trial = (
        frame[trial_col].notna() if trial_col in frame else pd.Series(False, index=frame.index)
    )
    is_child = frame["parent_run_id"].notna() & ~is_trial
    parents = frame[~is_child & ~is_trial].copy()
    folds = frame[is_child].copy()
    for df in (parents, folds):
        for col in ("model", "optimizer"):
            df[col] = df.get(param_column(col))
    # sheet and stratified folds are integers; leave-one-site-out folds are site names
    fold = folds.get(param_column("fold"), pd.Series(index=folds.index, dtype=object))
    as_number = pd.to_numeric(fold, errors="coerce")
    folds["fold"] = as_number if as_number.notna().all() else fold
    folds["seed"] = pd.to_numeric(folds.get(param_column("seed")), errors="coerce")
    folds["repeat"] = repeats(folds)
    folds = folds.sort_values(["model", "optimizer", "seed", "repeat", "fold"]).reset_index(
        drop=True
    )
    trials = _trials(frame[is_trial], folds)
    fold_ids = set(folds["run_id"])

    curve_rows = []
    predictions = []
    external = []
    artifacts: dict[str, dict[str, Any]] = {}
    for run in runs:
        run_id = run.info.run_id
        if run_id not in fold_ids:
            continue
        for metric in s.EPOCH_METRICS:
            if metric in run.data.metrics:
                for m in mlflow_client.get_metric_history(run_id, metric):
                    curve_rows.append(
                        {"run_id": run_id, "metric": metric, "step": m.step, "value": m.value}
                    )
        names = {a.path for a in mlflow_client.list_artifacts(run_id)}
        for artifact in sorted(names):
            dataset = s.external_dataset(artifact)
            if artifact != s.PREDICTIONS_FILE and dataset is None:
                continue
            pred = read_predictions(_read_artifact(mlflow_client, run_id, artifact))
            pred.insert(0, "run_id", run_id)
            pred.insert(1, "model", run.data.params.get("model"))
            pred.insert(2, "optimizer", run.data.params.get("optimizer"))
            pred.insert(3, "seed", int(run.data.params.get("seed", 0)))
            if dataset is None:
                predictions.append(pred)
            else:
                pred.insert(4, "dataset", dataset)
                external.append(pred)
        for art in json_artifacts:
            if art in names:
                artifacts.setdefault(run_id, {})[art] = json.loads(
                    _read_artifact(mlflow_client, run_id, art)
                )
    config: dict[str, Any] = {}
    for run in runs:
        if run.data.tags.get(s.TAG_PARENT_RUN_ID) is None:
            try:
                text = _read_artifact(mlflow_client, run.info.run_id, s.CONFIG_FILE)
                config = yaml.safe_load(text) or {}
                break
            except (mlflow_exceptions.MlflowException, OSError, TrackingError):
                continue
    common = {}
    if not folds.empty:
        first = next(r for r in runs if r.info.run_id in fold_ids)
        common = {
            k: v
            for k, v in first.data.tags.items()
            if k.startswith("medbench.") and k not in s.RUN_SPECIFIC_TAGS
        }
    return ExperimentRecord(
        name=name,
        uri=uri,
        experiment_id=exp.experiment_id,
        parents=parents.reset_index(drop=True),
        folds=folds,
        curves=pd.DataFrame(curve_rows, columns=["run_id", "metric", "step", "value"]),
        predictions=pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame(),
        artifacts=artifacts,
        config=config,
        tags=common,
        ignored_runs=ignored,
        trials=trials,
        external=pd.concat(external, ignore_index=True) if external else pd.DataFrame(),
    )


def repeats(folds: pd.DataFrame) -> pd.Series:
    """The repeat of each fold run as an integer: its param ``repeat`` (``cv.repeats`` > 1), 1
    for runs without it (a grid without repeats, or a store older than repeats)."""
    logged = folds.get(param_column("repeat"), pd.Series(index=folds.index, dtype=object))
    return pd.to_numeric(logged, errors="coerce").fillna(1).astype(int)


def _trials(frame: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """Trial runs with their fold run's job (model, optimizer, repeat, fold, seed); trials whose
    fold run is not among ``folds`` (deleted, another config) are left out."""
    job = ["model", "optimizer", "repeat", "fold", "seed"]
    if frame.empty or folds.empty:
        return pd.DataFrame(columns=["run_id", "parent_run_id", *job, "trial", "status"])
    owners = folds[["run_id", *job]].rename(columns={"run_id": "parent_run_id"})
    own = frame.dropna(axis=1, how="all")  # the wide frame's columns of other runs' metrics
    out = own.merge(owners, on="parent_run_id", how="inner")
    out["trial"] = pd.to_numeric(out.get(param_column("trial")), errors="coerce").astype("Int64")
    return out.sort_values([*job, "trial"]).reset_index(drop=True)


def _read_artifact(mlflow_client, run_id: str, name: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow_client.download_artifacts(run_id, name, tmp)
        return Path(local).read_text(encoding="utf-8")
