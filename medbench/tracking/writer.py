"""Writing an experiment's runs: every name comes from :mod:`medbench.tracking.schema`.

The engine (local processes and Ray workers alike) and the test fixtures write through
:class:`Tracker`, so what the report reads is what the engine wrote. Runs are addressed by id
through ``MlflowClient`` (no global active run). A name outside the schema is a bug and raises
``ValueError`` before anything is written.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from medbench import __version__
from medbench.errors import TrackingError
from medbench.optional import lazy_import
from medbench.paths import held_interrupts
from medbench.tracking import schema as s
from medbench.tracking.store import client
from medbench.tracking.view import experiment_tags, run_tags

# mlflow loads on first use (its import takes seconds: `medbench --help` need not wait)
entities = lazy_import("mlflow.entities")
mlflow_data = lazy_import("mlflow.data")


@dataclass
class RunRef:
    """A run found again on resume."""

    run_id: str
    status: str
    external: str = ""  # its TAG_EXTERNAL ('' without external data)


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


def _check(names: Iterable[str], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise ValueError(f"{what} not in the MLflow schema: {', '.join(unknown)}")


#: The search filter of the runs medbench wrote (an experiment may hold others).
MEDBENCH_RUNS = f"tags.`{s.TAG_VERSION}` LIKE '%'"

#: Seconds a call waits, retrying, while another process holds the SQLite store's write lock.
LOCKED_WAIT_S = 120.0


def _locked(err: BaseException) -> bool:
    """SQLite's "database is locked": another writer held the lock past the driver's timeout
    (packed jobs and the grid write to one file); nothing was written, so a retry is safe."""
    return "database is locked" in str(err)


class _Guarded:
    """An MlflowClient whose failures are one-line TrackingErrors naming the store (a store
    deleted or unreachable mid-run must not end in a traceback). A SQLite store locked by
    another writer is retried for up to :data:`LOCKED_WAIT_S` first."""

    def __init__(self, inner, uri: str) -> None:
        self._inner, self._uri = inner, uri

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            deadline, pause = time.monotonic() + LOCKED_WAIT_S, 0.05
            while True:
                try:
                    with held_interrupts():  # never in the middle of a transaction
                        return attr(*args, **kwargs)
                except TrackingError:
                    raise
                except Exception as err:  # noqa: BLE001 - MLflow, SQLAlchemy, HTTP: all the same
                    if _locked(err) and time.monotonic() < deadline:
                        time.sleep(pause)
                        pause = min(2 * pause, 1.0)
                        continue
                    first = (str(err).strip().splitlines() or [""])[0][:300]
                    raise TrackingError(
                        f"tracking store {self._uri}: {name} failed ({type(err).__name__}: {first})"
                    ) from err

        return call


def guarded_client(uri: str) -> _Guarded:
    """An ``MlflowClient`` on ``uri`` whose failures are one-line TrackingErrors naming the
    store (a server that answers ``/health`` but fails its API calls, a store deleted mid-run, a
    full disk under its artifacts), waiting for a SQLite store locked by another writer."""
    return _Guarded(client(uri), uri)


def _trial_row(run) -> dict[str, Any]:
    """A trial run as a row of :meth:`Tracker.trials` (see there for half-created runs)."""
    tags, params = run.data.tags, dict(run.data.params)
    try:
        written = json.loads(tags.get(s.TAG_TRIAL_PARAMS) or "{}")
    except ValueError:
        written = {}
    values = {k: params.get(k, written.get(k)) for k in s.TRIAL_PARAMS}
    if values["trial"] is None:  # the key ends in /trial{j}
        values["trial"] = tags[s.TAG_TRIAL].rpartition("/trial")[2]
    status = run.info.status
    if status == "FINISHED" and any(params.get(k) is None for k in ("trial", "lr")):
        status = "RUNNING"  # params never logged: it did not run as a trial does
    return {
        "run_id": run.info.run_id,
        "status": status,
        "failure": tags.get(s.TAG_FAILURE),
        **{k: float(v) for k, v in values.items() if v is not None},
        **{k: v for k, v in run.data.metrics.items() if k in s.TRIAL_METRICS},
    }


def _check_predictions(predictions: pd.DataFrame, artifact: str) -> None:
    missing = [c for c in s.REQUIRED_PREDICTION_COLUMNS if c not in predictions]
    extra = [c for c in predictions if c not in s.PREDICTION_COLUMNS]
    if missing or extra:
        raise ValueError(f"{artifact} columns: missing {missing}, unknown {extra}")


class Tracker:
    """Writes one experiment's runs. Cheap to create; one per process (Ray workers make their own)."""

    def __init__(self, uri: str, experiment: str) -> None:
        self.uri = uri
        self.client = guarded_client(uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            try:
                self.experiment_id = self.client.create_experiment(
                    experiment, tags=experiment_tags()
                )
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
            # made by an older medbench: it gets what the UI needs to open on medbench's view
            for key, value in experiment_tags(found.tags).items():
                self.client.set_experiment_tag(self.experiment_id, key, value)
        self.experiment = experiment

    # -- finding runs again (resume) ----------------------------------------------------------
    def _find(self, tags: Mapping[str, str]) -> list[RunRef]:
        clauses = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=clauses, max_results=1000
        )
        return [
            RunRef(r.info.run_id, r.info.status, r.data.tags.get(s.TAG_EXTERNAL, "")) for r in runs
        ]

    def find_parent(
        self, model: str, optimizer: str, config_hash: str, fingerprint: str
    ) -> RunRef | None:
        """The parent run of (model, optimizer) for this config and dataset, if any."""
        refs = self._find(
            {
                s.TAG_PARENT: s.parent_run_name(model, optimizer),
                s.TAG_CONFIG_HASH: config_hash,
                s.TAG_FINGERPRINT: fingerprint,
            }
        )
        return refs[0] if refs else None

    def find_child(self, job_key: str, config_hash: str, fingerprint: str) -> list[RunRef]:
        """Every run (any status) of one job for this config and dataset."""
        return self._find(
            {s.TAG_JOB: job_key, s.TAG_CONFIG_HASH: config_hash, s.TAG_FINGERPRINT: fingerprint}
        )

    # -- creating runs -------------------------------------------------------------------------
    def _start(
        self,
        name: str,
        optimizer: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
        config_hash: str,
        fp: str,
    ) -> str:
        base = {s.TAG_VERSION: __version__, s.TAG_CONFIG_HASH: config_hash, s.TAG_FINGERPRINT: fp}
        tags = {**base, **run_tags(optimizer), **tags}
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def start_parent(
        self,
        model: str,
        optimizer: str,
        params: Mapping[str, Any],
        config_hash: str,
        fingerprint: str,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Create the parent run of (model, optimizer); ``params`` keys from ``PARENT_PARAMS``."""
        _check(params, s.PARENT_PARAMS, "parent params")
        name = s.parent_run_name(model, optimizer)
        return self._start(
            name, optimizer, params, {s.TAG_PARENT: name, **(tags or {})}, config_hash, fingerprint
        )

    def start_child(
        self,
        parent_id: str,
        model: str,
        optimizer: str,
        fold: object,
        seed: int,
        params: Mapping[str, Any],
        config_hash: str,
        fingerprint: str,
        tags: Mapping[str, str] | None = None,
        repeat: int = 1,
    ) -> str:
        """Create one fold's run nested under its parent; ``params`` keys from ``CHILD_PARAMS``.

        ``repeat`` (of a repeated cross-validation) shapes its name and key; a ``repeat`` param
        is also set as the tag ``TAG_REPEAT``."""
        _check(params, s.CHILD_PARAMS, "child params")
        name = s.child_run_name(model, optimizer, fold, repeat)
        tags = {
            s.TAG_JOB: s.job_key(model, optimizer, fold, seed, repeat),
            s.TAG_PARENT_RUN_ID: parent_id,
            **({s.TAG_REPEAT: str(params["repeat"])} if "repeat" in params else {}),
            **(tags or {}),
        }
        return self._start(name, optimizer, params, tags, config_hash, fingerprint)

    def start_trial(
        self,
        fold_run_id: str,
        model: str,
        optimizer: str,
        fold: object,
        seed: int,
        trial: int,
        params: Mapping[str, Any],
        config_hash: str,
        fingerprint: str,
        repeat: int = 1,
    ) -> str:
        """Create one tuning trial's run nested under its fold run; ``params`` from ``TRIAL_PARAMS``.

        The trial's key and params are tags of the creating call, so a process killed before
        the params are logged leaves a run that :meth:`trials` still reads (as unfinished)."""
        _check(params, s.TRIAL_PARAMS, "trial params")
        values = {"trial": trial, **params}
        tags = {
            s.TAG_TRIAL: s.trial_key(model, optimizer, fold, seed, trial, repeat),
            s.TAG_TRIAL_PARAMS: json.dumps(values),
            s.TAG_PARENT_RUN_ID: fold_run_id,
        }
        name = s.trial_run_name(model, optimizer, fold, trial, repeat)
        return self._start(name, optimizer, values, tags, config_hash, fingerprint)

    def trials(self, fold_run_id: str) -> pd.DataFrame:
        """One row per trial run nested under a fold run: run_id, trial, status, failure,
        its ``TRIAL_PARAMS`` (as floats) and ``TRIAL_METRICS``; sorted by trial.

        A run killed while it was being created may lack its params: its trial number comes
        from its key, its params from the tag written with it, and it is never FINISHED, so
        resume reruns it."""
        rows = [_trial_row(r) for r in self._nested(fold_run_id) if s.TAG_TRIAL in r.data.tags]
        columns = ["run_id", "status", "failure", *s.TRIAL_PARAMS, *s.TRIAL_METRICS]
        frame = pd.DataFrame(rows, columns=columns)
        frame["trial"] = frame["trial"].astype(int)
        return frame.sort_values(["trial", "run_id"]).reset_index(drop=True)

    # -- writing -------------------------------------------------------------------------------
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        items = [entities.Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[entities.RunTag(k, str(v)) for k, v in tags.items()])

    def _log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        ts = int(time.time() * 1000)
        items = [entities.Metric(k, v, ts, int(step)) for k, v in _finite(metrics).items()]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def log_epoch(self, run_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        """One epoch's ``EPOCH_METRICS`` with ``step = epoch``."""
        _check(metrics, s.EPOCH_METRICS, "epoch metrics")
        self._log_metrics(run_id, metrics, step=epoch)

    def logged_epochs(self, run_id: str) -> set[int]:
        """Epochs already logged (resume does not log an epoch twice)."""
        return {m.step for m in self.client.get_metric_history(run_id, "train_loss")}

    def log_fold_result(
        self,
        run_id: str,
        *,
        test: Mapping[str, float],
        sites: Mapping[str, Mapping[str, float]],
        predictions: pd.DataFrame,
        test_loss: float,
        best_epoch: int,
        train_time_s: float,
    ) -> None:
        """A finished fold: test metrics (names of ``METRIC_NAMES``), per-site metrics and
        ``predictions.csv`` (columns of ``PREDICTION_COLUMNS``, in that order)."""
        _check(map(s.test_metric, test), s.TEST_METRICS, "test metrics")
        _check_predictions(predictions, s.PREDICTIONS_FILE)
        metrics = {s.test_metric(k): v for k, v in test.items()}
        for site, values in sites.items():
            _check(values, s.SITE_METRICS, "site metrics")
            metrics.update({s.site_metric(k, site): v for k, v in values.items()})
        metrics.update(test_loss=test_loss, best_epoch=best_epoch, train_time_s=train_time_s)
        self._log_metrics(run_id, metrics)
        renamed = {s.site_key(site): str(site) for site in sites if s.site_key(site) != site}
        if renamed:
            self.set_tags(run_id, {s.TAG_SITE_NAMES: json.dumps(renamed, ensure_ascii=False)})
        self._log_predictions(run_id, predictions, s.PREDICTIONS_FILE)

    def _log_predictions(self, run_id: str, predictions: pd.DataFrame, artifact: str) -> None:
        ordered = [c for c in s.PREDICTION_COLUMNS if c in predictions]
        self.client.log_text(run_id, predictions[ordered].to_csv(index=False), artifact)

    def log_external(
        self, run_id: str, dataset: str, metrics: Mapping[str, float], predictions: pd.DataFrame
    ) -> None:
        """A fold's selected checkpoint on an external dataset: ``external_{dataset}_{metric}``
        (metrics of ``EXTERNAL_METRICS``) and ``external_predictions_file(dataset)`` (columns of
        ``PREDICTION_COLUMNS``; ``fold`` is the checkpoint's)."""
        _check(metrics, s.EXTERNAL_METRICS, "external metrics")
        artifact = s.external_predictions_file(dataset)
        _check_predictions(predictions, artifact)
        self._log_metrics(run_id, {s.external_metric(dataset, k): v for k, v in metrics.items()})
        self._log_predictions(run_id, predictions, artifact)

    def log_flatness(self, run_id: str, flatness: Mapping[str, Any]) -> None:
        """Flatness of a fold's best checkpoint: ``FLATNESS_FILE`` and its scalar metrics (the
        measures, the trace's standard error, the cost in seconds and in Hessian-vector
        products)."""
        self.client.log_text(run_id, json.dumps(flatness, indent=2, default=str), s.FLATNESS_FILE)
        metrics = {k: flatness[k] for k in s.FLATNESS_METRICS if k in flatness}
        metrics["hessian_trace_stderr"] = flatness.get("hessian_trace_stderr")
        metrics["flatness_time_s"] = flatness.get("seconds")
        metrics["flatness_hvps"] = flatness.get("flatness_hvps")
        self._log_metrics(run_id, metrics)

    def log_compute(self, run_id: str, metrics: Mapping[str, float]) -> None:
        """What a fold run cost (``COMPUTE_METRICS``)."""
        _check(metrics, s.COMPUTE_METRICS, "compute metrics")
        self._log_metrics(run_id, metrics)

    def log_trial_result(self, run_id: str, metrics: Mapping[str, float]) -> None:
        """A finished trial: its objective on the validation split and cost (``TRIAL_METRICS``)."""
        _check(metrics, s.TRIAL_METRICS, "trial metrics")
        self._log_metrics(run_id, metrics)

    def log_tuning(
        self, run_id: str, chosen: Mapping[str, float], cost: Mapping[str, float]
    ) -> None:
        """What tuning chose for a fold run (params ``lr``/``rho``, tag ``TAG_TUNED``) and what it
        cost (``tuning_time_s``, ``tuning_gradient_evals``); once: a rerun logs nothing again."""
        if self.client.get_run(run_id).data.tags.get(s.TAG_TUNED) == "true":
            return
        _check(chosen, ("lr", "rho"), "tuned params")
        self.log_params(run_id, chosen)
        self.log_compute(run_id, cost)
        self.set_tags(run_id, {s.TAG_TUNED: "true"})

    def log_aggregates(
        self, parent_id: str, metrics: Mapping[str, float], n_finished: int, n_failed: int
    ) -> None:
        """A parent's cross-validation aggregates (``cv_*``) and its run counts (tags)."""
        allowed = [f(m) for m in s.AGGREGATED_METRICS for f in (s.cv_mean, s.cv_std)]
        _check(metrics, allowed, "parent metrics")
        self._log_metrics(parent_id, metrics)
        self.set_tags(parent_id, {s.TAG_N_FINISHED: n_finished, s.TAG_N_FAILED: n_failed})

    def log_config(self, parent_id: str, text: str) -> None:
        self.client.log_text(parent_id, text, s.CONFIG_FILE)

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
        table = manifest.drop(columns=["path"], errors="ignore").astype(str)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = mlflow_data.from_pandas(
                table, source=source, name=name, digest=fingerprint[:16], targets="label"
            )
        self.client.log_inputs(
            run_id,
            datasets=[
                entities.DatasetInput(
                    dataset._to_mlflow_entity(),
                    tags=[entities.InputTag("mlflow.data.context", context)],
                )
            ],
        )

    def colour_runs(self) -> int:
        """Give the runs an older medbench wrote without a colour their optimizer's
        (:func:`~medbench.tracking.view.run_tags`); a colour chosen in the UI stays. Returns how
        many runs were given one."""
        coloured, token = 0, None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=MEDBENCH_RUNS,
                max_results=1000,
                page_token=token,
            )
            for run in page:
                tags = run_tags(run.data.params.get("optimizer", ""))
                if tags and s.TAG_RUN_COLOUR not in run.data.tags:
                    self.set_tags(run.info.run_id, tags)
                    coloured += 1
            token = page.token
            if not token:
                return coloured

    # -- status --------------------------------------------------------------------------------
    def set_status(self, run_id: str, status: str) -> None:
        self.client.update_run(run_id, status=str(getattr(status, "value", status)))

    def finish(
        self,
        run_id: str,
        status: str = "FINISHED",
        reason: str | None = None,
        end_time: int | None = None,
    ) -> None:
        """End a run; ``reason`` (why it FAILED or was KILLED) goes to ``TAG_FAILURE``;
        ``end_time`` (ms since the epoch) defaults to now."""
        if reason:
            self.set_tags(run_id, {s.TAG_FAILURE: reason[:4000]})
        status = str(getattr(status, "value", status))
        if status == "FINISHED" and not reason:  # a resumed run: an earlier attempt's failure
            stale = self.client.get_run(run_id).data.tags.keys() & {s.TAG_FAILURE, s.TAG_TRACEBACK}
            for key in sorted(stale):
                self.client.delete_tag(run_id, key)
        self.client.set_terminated(run_id, status=status, end_time=end_time)

    def delete(self, run_id: str) -> None:
        self.client.delete_run(run_id)

    def child_metrics(self, parent_id: str) -> pd.DataFrame:
        """One row per live child run of a parent: status, repeat (1 without the param), fold,
        seed and final metrics."""
        rows = [
            {
                "run_id": r.info.run_id,
                "status": r.info.status,
                "end_time": r.info.end_time,
                "repeat": int(r.data.params.get("repeat", 1)),
                "fold": r.data.params.get("fold"),
                "seed": r.data.params.get("seed"),
                **r.data.metrics,
            }
            for r in self._nested(parent_id)
        ]
        return pd.DataFrame(rows)

    def _nested(self, parent_id: str) -> list:
        """The live runs nested directly under ``parent_id``."""
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{s.TAG_PARENT_RUN_ID}` = '{parent_id}'",
            max_results=5000,
        )


def log_report(uri: str, parent_ids: Iterable[str], files: Iterable[Path]) -> None:
    """Attach the report files to the experiment's parent runs (under ``REPORT_DIR``); a store
    or artifact folder that fails (a full disk) is one TrackingError."""
    mlflow_client = guarded_client(uri)
    files = list(files)
    for run_id in parent_ids:
        for path in files:
            mlflow_client.log_artifact(run_id, str(path), s.REPORT_DIR)
