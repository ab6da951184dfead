"""The only module that talks to MLflow: the naming contract of docs/DESIGN, writing and reading.

Runs are addressed by explicit run ids through ``MlflowClient`` (no global active run), so the
same code serves the local executor, Ray workers and the report.

Contract (stable names; add more, rename none):
- experiment = config ``name``; parent run ``{model}/{optimizer}`` per (model, optimizer);
- child run ``{model}/{optimizer}/fold{k}`` nested under it (tag ``mlflow.parentRunId``);
- tags ``medbench.version``, ``medbench.config_hash``, ``medbench.dataset_fingerprint``;
  resume finds runs by ``medbench.job`` / ``medbench.parent`` plus hash and fingerprint.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from medbench import __version__
from medbench.errors import TrackingError

PREDICTIONS_FILE = "predictions.csv"
FLATNESS_FILE = "flatness.json"
CONFIG_FILE = "config.yaml"
EPOCH_METRICS = (
    "train_loss",
    "val_loss",
    "val_auc",
    "val_accuracy",
    "epoch_time_s",
    "data_time_s",
    "lr",
)
TAG_VERSION = "medbench.version"
TAG_CONFIG_HASH = "medbench.config_hash"
TAG_FINGERPRINT = "medbench.dataset_fingerprint"
TAG_JOB = "medbench.job"
TAG_PARENT = "medbench.parent"
TAG_FAILURE = "medbench.failure"
TAG_PARENT_ID = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"

#: An MLflow server that does not answer is not retried for minutes: fail fast instead.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def resolve_tracking_uri(configured: str | None = None) -> str:
    """Config key, else ``MLFLOW_TRACKING_URI``, else MLflow's own default (``./mlflow.db``)."""
    if configured:
        return configured
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    import mlflow

    return mlflow.get_tracking_uri()


def is_local_uri(uri: str) -> bool:
    """True for stores only this machine can reach: SQLite files and plain folders."""
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def check_store(uri: str, timeout: float = 10.0) -> None:
    """Fail with one line, before any training, when the store cannot be used."""
    if uri.startswith("sqlite:"):
        db = uri.split(":///", 1)[-1] if ":///" in uri else ""
        if not db or db == ":memory:":
            raise TrackingError(
                f"tracking store {uri}: an in-memory SQLite store cannot hold results"
            )
        folder = Path(db).expanduser().resolve().parent
        if not folder.is_dir():
            raise TrackingError(f"tracking store {uri}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise TrackingError(f"tracking store {uri}: folder {folder} is not writable")
        return
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (http only)
                if resp.status != 200:
                    raise TrackingError(
                        f"tracking store {uri}: /health answered HTTP {resp.status}"
                    )
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingError(f"tracking store {uri} is unreachable ({reason})") from None
        return
    if uri.startswith("file:") or "://" not in uri:
        folder = Path(uri.removeprefix("file://").removeprefix("file:")).expanduser()
        parent = folder if folder.exists() else folder.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise TrackingError(
                f"tracking store {uri}: folder {parent} does not exist or is not writable"
            )
        return
    # other schemes (databricks, postgresql via server...) are checked by a real call below
    try:
        _client(uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - any failure here means unusable
        raise TrackingError(
            f"tracking store {uri} cannot be used ({type(err).__name__}: {err})"
        ) from None


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """MLflow stores NaN but its UI and search handle it poorly: undefined values are left out."""
    out = {}
    for key, value in metrics.items():
        if value is None:
            continue
        value = float(value)
        if math.isfinite(value):
            out[key] = value
    return out


@dataclass
class RunRef:
    run_id: str
    status: str


class Tracker:
    """Writes one experiment's runs. Cheap to create; one per process (Ray workers make their own)."""

    def __init__(self, uri: str, experiment: str) -> None:
        self.uri = uri
        self.client = _client(uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            try:
                self.experiment_id = self.client.create_experiment(experiment)
            except Exception:  # noqa: BLE001 - another worker created it first
                found = self.client.get_experiment_by_name(experiment)
                if found is None:
                    raise
                self.experiment_id = found.experiment_id
        else:
            if found.lifecycle_stage == "deleted":
                raise TrackingError(
                    f"experiment {experiment!r} is deleted in {uri}; restore it (mlflow experiments restore) or pick another name"
                )
            self.experiment_id = found.experiment_id
        self.experiment = experiment

    # -- finding runs for resume -------------------------------------------------------------
    def _find(self, tags: Mapping[str, str]) -> list[RunRef]:
        clauses = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=clauses, max_results=1000
        )
        return [RunRef(r.info.run_id, r.info.status) for r in runs]

    def find_parent(self, name: str, config_hash: str, fingerprint: str) -> RunRef | None:
        refs = self._find(
            {TAG_PARENT: name, TAG_CONFIG_HASH: config_hash, TAG_FINGERPRINT: fingerprint}
        )
        return refs[0] if refs else None

    def find_child(self, job_key: str, config_hash: str, fingerprint: str) -> list[RunRef]:
        return self._find(
            {TAG_JOB: job_key, TAG_CONFIG_HASH: config_hash, TAG_FINGERPRINT: fingerprint}
        )

    # -- writing ------------------------------------------------------------------------------
    def _base_tags(self, config_hash: str, fingerprint: str) -> dict[str, str]:
        return {
            TAG_VERSION: __version__,
            TAG_CONFIG_HASH: config_hash,
            TAG_FINGERPRINT: fingerprint,
        }

    def _start(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name, tags=dict(tags))
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def start_parent(
        self,
        name: str,
        params: Mapping[str, Any],
        config_hash: str,
        fingerprint: str,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        base = self._base_tags(config_hash, fingerprint)
        return self._start(name, params, {**base, TAG_PARENT: name, **(tags or {})})

    def start_child(
        self,
        parent_id: str,
        name: str,
        job_key: str,
        params: Mapping[str, Any],
        config_hash: str,
        fingerprint: str,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        base = self._base_tags(config_hash, fingerprint)
        return self._start(
            name, params, {**base, TAG_JOB: job_key, TAG_PARENT_ID: parent_id, **(tags or {})}
        )

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        ts = _now_ms()
        items = [Metric(k, v, ts, int(step)) for k, v in _finite(metrics).items()]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def logged_steps(self, run_id: str, metric: str = "train_loss") -> set[int]:
        """Steps already logged for ``metric`` (resume does not log an epoch twice)."""
        return {m.step for m in self.client.get_metric_history(run_id, metric)}

    def log_table(self, run_id: str, df: pd.DataFrame, name: str) -> None:
        self.client.log_text(run_id, df.to_csv(index=False), name)

    def log_json(self, run_id: str, obj: Any, name: str) -> None:
        self.client.log_text(run_id, json.dumps(obj, indent=2, default=str), name)

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, text, name)

    def log_dataset(
        self,
        run_id: str,
        manifest: pd.DataFrame,
        name: str,
        source: str,
        fingerprint: str,
        context: str,
    ) -> None:
        """Attach the manifest as the run's dataset input: the UI shows which data each run saw."""
        import mlflow.data
        from mlflow.entities import DatasetInput, InputTag

        table = manifest.drop(columns=["path"], errors="ignore").astype(str)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = mlflow.data.from_pandas(
                table, source=source, name=name, digest=fingerprint[:16], targets="label"
            )
        self.client.log_inputs(
            run_id,
            datasets=[
                DatasetInput(
                    dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)]
                )
            ],
        )

    def set_status(self, run_id: str, status: str) -> None:
        self.client.update_run(run_id, status=status)

    def finish(self, run_id: str, status: str = "FINISHED", reason: str | None = None) -> None:
        if reason:
            self.set_tags(run_id, {TAG_FAILURE: reason[:4000]})
        self.client.set_terminated(run_id, status=status)

    def delete(self, run_id: str) -> None:
        self.client.delete_run(run_id)

    def child_metrics(self, parent_id: str) -> pd.DataFrame:
        """One row per live child run of a parent: status and final metrics."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TAG_PARENT_ID}` = '{parent_id}'",
            max_results=5000,
        )
        rows = [{"run_id": r.info.run_id, "status": r.info.status, **r.data.metrics} for r in runs]
        return pd.DataFrame(rows)


# -- reading (the report) --------------------------------------------------------------------


@dataclass
class ExperimentRecord:
    """Everything the report needs, read back from MLflow."""

    name: str
    uri: str
    experiment_id: str
    #: one row per parent run: run_id, model, optimizer, status, params, metrics
    parents: pd.DataFrame
    #: one row per child run: run_id, parent_run_id, model, optimizer, fold, seed, status, failure, metrics
    folds: pd.DataFrame
    curves: pd.DataFrame  # run_id, metric, step, value (per-epoch metrics of every child)
    predictions: pd.DataFrame  # run_id, model, optimizer, seed + the predictions.csv columns
    artifacts: dict[str, dict[str, Any]]  # run_id -> {json artifact name -> parsed content}
    config: dict[str, Any]  # the config that produced the runs (config.yaml of a parent)
    tags: dict[str, str]  # common tags (version, hash, fingerprint, environment)
    ignored_runs: int = 0  # runs of other configs or datasets in the same experiment, left out


def _runs_frame(runs) -> pd.DataFrame:
    rows = []
    for r in runs:
        row = {
            "run_id": r.info.run_id,
            "run_name": r.data.tags.get(TAG_RUN_NAME, ""),
            "status": r.info.status,
            "parent_run_id": r.data.tags.get(TAG_PARENT_ID),
            "failure": r.data.tags.get(TAG_FAILURE),
            "start_time": r.info.start_time,
            "end_time": r.info.end_time,
        }
        row.update({f"param.{k}": v for k, v in r.data.params.items()})
        row.update(r.data.metrics)
        row.update({f"tag.{k}": v for k, v in r.data.tags.items() if k.startswith("medbench.")})
        rows.append(row)
    return pd.DataFrame(rows)


def load_experiment(
    name: str,
    uri: str | None = None,
    json_artifacts: Iterable[str] = (FLATNESS_FILE,),
    select: tuple[str, str] | None = None,
) -> ExperimentRecord:
    """Read runs, per-epoch curves, predictions and JSON artifacts of experiment ``name``.

    Only the runs of one (config hash, dataset fingerprint) are read: ``select``, or by default
    those of the most recently started parent run.
    """
    import yaml
    from mlflow.exceptions import MlflowException

    uri = resolve_tracking_uri(uri)
    check_store(uri)
    client = _client(uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        known = [e.name for e in client.search_experiments(max_results=200)]
        from medbench.errors import closest

        raise TrackingError(
            f"no experiment named {name!r} in {uri}{closest(name, known)}; experiments: {', '.join(known) or 'none'}"
        )
    runs = client.search_runs([exp.experiment_id], max_results=50000)
    frame = _runs_frame(runs)
    if frame.empty:
        raise TrackingError(f"experiment {name!r} in {uri} has no runs")
    # One report = one config on one dataset: the latest parent's (config hash, fingerprint).
    # Runs of earlier configs in the same experiment would otherwise be pooled as extra folds.
    ignored = 0
    hash_col, fp_col = f"tag.{TAG_CONFIG_HASH}", f"tag.{TAG_FINGERPRINT}"
    roots = frame[frame["parent_run_id"].isna()]
    if hash_col in frame and fp_col in frame and not roots.empty:
        if select is None:
            latest = roots.sort_values("start_time").iloc[-1]
            select = (latest[hash_col], latest[fp_col])
        keep = (frame[hash_col] == select[0]) & (frame[fp_col] == select[1])
        if not keep.any():
            raise TrackingError(
                f"experiment {name!r} has no runs of config {select[0]} on dataset {select[1][:12]}"
            )
        ignored = int((~keep).sum())
        frame = frame[keep]
        runs = [r for r in runs if r.info.run_id in set(frame["run_id"])]
    is_child = frame["parent_run_id"].notna()
    parents = frame[~is_child].copy()
    folds = frame[is_child].copy()
    for df in (parents, folds):
        for col in ("model", "optimizer"):
            df[col] = df.get(f"param.{col}")
    # sheet and stratified folds are integers; leave-one-site-out folds are site names
    fold = folds.get("param.fold", pd.Series(index=folds.index, dtype=object))
    as_number = pd.to_numeric(fold, errors="coerce")
    folds["fold"] = as_number if as_number.notna().all() else fold
    folds["seed"] = pd.to_numeric(folds.get("param.seed"), errors="coerce")
    folds = folds.sort_values(["model", "optimizer", "seed", "fold"]).reset_index(drop=True)

    curve_rows = []
    predictions = []
    artifacts: dict[str, dict[str, Any]] = {}
    for run in runs:
        run_id = run.info.run_id
        if run.data.tags.get(TAG_PARENT_ID) is None:
            continue
        for metric in EPOCH_METRICS:
            if metric in run.data.metrics:
                for m in client.get_metric_history(run_id, metric):
                    curve_rows.append(
                        {"run_id": run_id, "metric": metric, "step": m.step, "value": m.value}
                    )
        names = {a.path for a in client.list_artifacts(run_id)}
        if PREDICTIONS_FILE in names:
            text = _read_artifact(client, run_id, PREDICTIONS_FILE)
            pred = pd.read_csv(
                io.StringIO(text),
                dtype={"id": str, "site": str, "birads_reader1": str, "birads_reader2": str},
                keep_default_na=False,
                na_values={"prob_malignant": [""], "label": [""], "fold": [""]},
            )
            pred.insert(0, "run_id", run_id)
            pred.insert(1, "model", run.data.params.get("model"))
            pred.insert(2, "optimizer", run.data.params.get("optimizer"))
            pred.insert(3, "seed", int(run.data.params.get("seed", 0)))
            predictions.append(pred)
        for art in json_artifacts:
            if art in names:
                artifacts.setdefault(run_id, {})[art] = json.loads(
                    _read_artifact(client, run_id, art)
                )
    config: dict[str, Any] = {}
    for run in runs:
        if run.data.tags.get(TAG_PARENT_ID) is None:
            try:
                config = yaml.safe_load(_read_artifact(client, run.info.run_id, CONFIG_FILE)) or {}
                break
            except (MlflowException, OSError):
                continue
    common = {}
    if not folds.empty:
        first = next(r for r in runs if r.data.tags.get(TAG_PARENT_ID) is not None)
        common = {
            k: v
            for k, v in first.data.tags.items()
            if k.startswith("medbench.") and k not in (TAG_JOB, TAG_FAILURE)
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
    )


def _read_artifact(client, run_id: str, name: str) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, name, tmp)
        return Path(local).read_text(encoding="utf-8")


def log_report(uri: str, parent_ids: Iterable[str], files: Iterable[Path]) -> None:
    """Attach the report files to the experiment's parent runs (under ``report/``)."""
    client = _client(uri)
    files = list(files)
    for run_id in parent_ids:
        for path in files:
            client.log_artifact(run_id, str(path), "report")


def serve_ui(host: str = "127.0.0.1", port: int = 5000, tracking_uri: str | None = None) -> int:
    """Start ``mlflow ui`` on the store; bound to this machine unless ``host`` says otherwise."""
    uri = resolve_tracking_uri(tracking_uri)
    check_store(uri)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"medbench: warning: the MLflow UI will be reachable from other machines on {host}:{port}",
            file=sys.stderr,
        )
    args = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(int(port)),
    ]
    print(f"MLflow UI on http://{host}:{port} (store {uri}); Ctrl-C stops it")
    try:
        return subprocess.call(args)  # noqa: S603 - argument list, no shell
    except KeyboardInterrupt:
        return 0
