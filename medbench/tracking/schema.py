"""Every name medbench writes to MLflow and reads back: the naming contract.

The writer (engine side), the reader (report side) and the test fixtures take their names from
here, so a rename is one edit that both sides follow, and a round-trip test proves the report
reads what the engine writes. Users query these names with ``mlflow.search_runs`` and compare
them in the MLflow UI: add names, rename none.

Layout of an experiment (named by the config's ``name``)::

    {model}/{optimizer}                   parent run per (model, optimizer): PARENT_PARAMS,
                                          PARENT_METRICS, CONFIG_FILE, the report under REPORT_DIR
      {model}/{optimizer}/fold{k}         child run per (fold, seed): CHILD_PARAMS, EPOCH_METRICS
                                          (step = epoch), FINAL_METRICS, PREDICTIONS_FILE,
                                          FLATNESS_FILE when measured, COMPUTE_METRICS, and
                                          per external dataset external_metric(...) and
                                          external_predictions_file(...)
        {model}/{optimizer}/fold{k}/trial{j}  tuning trial nested under its fold run: TRIAL_PARAMS,
                                          TRIAL_METRICS (no test metric), tag TAG_TRIAL
      {model}/{optimizer}/r{j}/fold{k}    repeated cross-validation (cv.repeats > 1): the fold run
                                          of repeat j >= 2 (repeat 1 keeps the names above), with
                                          param ``repeat`` and tag TAG_REPEAT on every fold run

This module holds names only: it imports neither MLflow nor torch.
"""

from __future__ import annotations

import hashlib
import re

from medbench.metrics import METRIC_NAMES

# -- run names ---------------------------------------------------------------------------------


def parent_run_name(model: str, optimizer: str) -> str:
    """Run name of the parent of one (model, optimizer): ``resnet18/gcsam``."""
    return f"{model}/{optimizer}"


def child_run_name(model: str, optimizer: str, fold: object, repeat: int = 1) -> str:
    """Run name of one fold's run: ``resnet18/gcsam/fold3`` (``foldGDPH`` leaving a site out);
    from repeat 2 of a repeated cross-validation on, ``resnet18/gcsam/r2/fold3``: repeat 1, the
    dataset's own folds, keeps the name a grid without repeats gives it."""
    where = "" if repeat == 1 else f"/r{repeat}"
    return f"{parent_run_name(model, optimizer)}{where}/fold{fold}"


def job_key(model: str, optimizer: str, fold: object, seed: int, repeat: int = 1) -> str:
    """Identity of a job across reruns of one config (tag ``TAG_JOB``; the resume key)."""
    return f"{child_run_name(model, optimizer, fold, repeat)}/seed{seed}"


def trial_run_name(model: str, optimizer: str, fold: object, trial: int, repeat: int = 1) -> str:
    """Run name of one tuning trial, nested under its fold run: ``resnet18/sam/fold3/trial2``
    (``resnet18/sam/r2/fold3/trial2`` from repeat 2 on)."""
    return f"{child_run_name(model, optimizer, fold, repeat)}/trial{trial}"


# -- tags --------------------------------------------------------------------------------------

#: Experiment tag that makes the MLflow UI (3.x) open the experiment on its runs ("Model
#: training") rather than on GenAI traces.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

TAG_VERSION = "medbench.version"
TAG_CONFIG_HASH = "medbench.config_hash"
TAG_FINGERPRINT = "medbench.dataset_fingerprint"
TAG_JOB = "medbench.job"  # child runs: job_key(...)
TAG_PARENT = "medbench.parent"  # parent runs: parent_run_name(...)
TAG_FAILURE = "medbench.failure"  # why a run FAILED or was KILLED, one line
TAG_TRACEBACK = "medbench.traceback"  # the end of the traceback of an unexpected error
TAG_DATASET_CARD = "medbench.dataset_card"  # parent runs: the data card describing the data
#: Parent runs: "true" when the data were generated (the data folder holds the generator's
#: marker, ``.medbench-synth.json``), whatever their layout; the report's SYNTHETIC DATA banner.
TAG_SYNTHETIC = "medbench.synthetic"
#: Parent runs: the near-duplicate images of the training data, as JSON: ``pairs``,
#: ``across_folds``, ``different_labels`` and ``exclude`` (the ids ``data.exclude`` would leave
#: out; cut to fit a tag, with ``exclude_more`` counting the rest).
TAG_NEAR_DUPLICATES = "medbench.near_duplicates"
#: Parent runs: how many of its fold runs finished / failed (tags: constant counts would sort
#: first among the metrics of the UI's charts and run comparison).
TAG_N_FINISHED = "medbench.n_finished"
TAG_N_FAILED = "medbench.n_failed"
TAG_TUNED = "medbench.tuned"  # fold runs whose lr/rho were chosen by tuning: "true"
#: Fold runs of a repeated cross-validation (``cv.repeats`` > 1): their repeat, 1 to r (also the
#: param ``repeat``); runs of a grid without repeats have neither (the reader reads 1).
TAG_REPEAT = "medbench.repeat"
#: Fold runs tested on external datasets: ``external_fingerprints(...)`` of the data they saw (a
#: finished run whose external data changed since is run again).
TAG_EXTERNAL = "medbench.external_fingerprints"
#: parent runs: per external dataset, its images that are training images (JSON: n, identical,
#: near_duplicates; only where there are any)
TAG_EXTERNAL_OVERLAP = "medbench.external_overlap"
TAG_TRIAL = "medbench.trial"  # tuning trial runs: the trial's key (resume)
#: Tuning trial runs: their TRIAL_PARAMS as JSON, set when the run is created (one call), so
#: that a run killed before its params were logged still says what it tried.
TAG_TRIAL_PARAMS = "medbench.trial_params"
#: The experiment ``{name}.lock`` that marks a grid at work on experiment ``name``: its holder.
TAG_LOCK = "medbench.lock"
#: Fold runs whose site names had characters MLflow refuses in a metric name: JSON of
#: {name used in test_*_site_NAME: the site's real name}.
TAG_SITE_NAMES = "medbench.site_names"
#: Where a fold run ran (child runs): the report's environment table.
TAG_DEVICE = "medbench.device"
TAG_PYTHON = "medbench.python"
TAG_TORCH = "medbench.torch"
TAG_PLATFORM = "medbench.platform"
#: what the kernels computed in: "fp32", "bf16 autocast", "fp32, TF32 convolutions" ...
TAG_PRECISION = "medbench.precision"
ENVIRONMENT_TAGS = (TAG_DEVICE, TAG_PYTHON, TAG_TORCH, TAG_PLATFORM, TAG_PRECISION)
#: MLflow's own tags.
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"
#: The run's colour in the MLflow UI's table and charts: its optimizer's, as in the report.
TAG_RUN_COLOUR = "mlflow.runColor"
#: medbench's saved view of an experiment's runs (:mod:`medbench.tracking.view`): the value of
#: ``viewStateShareKey`` in the address ``medbench ui`` prints, and the experiment tag holding it.
VIEW_KEY = "medbench"
TAG_VIEW = f"mlflow.sharedViewState.{VIEW_KEY}"
#: Tags that identify one job or one failure rather than the experiment's common setting.
RUN_SPECIFIC_TAGS = (TAG_JOB, TAG_PARENT, TAG_FAILURE, TAG_TRACEBACK, TAG_REPEAT)

# -- params ------------------------------------------------------------------------------------

#: Parent params and the config key each one comes from (``model``, ``optimizer`` and ``seed``
#: come from the grid). The first eight are the contract's; the others help to filter in the UI.
PARENT_PARAMS: dict[str, str | None] = {
    "model": None,
    "optimizer": None,
    "lr": "optimizer.lr",
    "rho": "optimizer.rho",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "image_size": "data.image_size",
    "seed": None,  # the config's seeds, comma-separated
    "weight_decay": "optimizer.weight_decay",
    "gc_norm": "optimizer.gc_norm",
    "gc_conv_only": "optimizer.gc_conv_only",
    "early_stopping_monitor": "train.early_stopping.monitor",
    "early_stopping_patience": "train.early_stopping.patience",
    "val_fraction": "data.val_fraction",
    "folds": "data.folds",
    "augment": "data.augment",
    "freeze_bn_second_pass": "train.freeze_bn_second_pass",
    "amp": "train.amp",
    "tf32": "train.tf32",
}
#: Child params: the job, the seeds derived from it, and the sizes of its split (images the
#: model was fit on, validation images used for selection, test images). With tuning, the fold
#: run's ``lr`` and ``rho`` are the chosen values. ``repeat``: with ``cv.repeats`` > 1 only.
CHILD_PARAMS = (
    "fold",
    "seed",
    "model",
    "optimizer",
    "init_seed",
    "data_seed",
    "n_train",
    "n_val",
    "n_test",
    "lr",
    "rho",
    "repeat",
)
#: Params of a tuning trial run: the values it tried (``rho`` for the SAM family only).
TRIAL_PARAMS = ("trial", "lr", "rho")


def trial_key(
    model: str, optimizer: str, fold: object, seed: int, trial: int, repeat: int = 1
) -> str:
    """Identity of one tuning trial across reruns (tag ``TAG_TRIAL``; the resume key)."""
    return f"{job_key(model, optimizer, fold, seed, repeat)}/trial{trial}"


# -- metrics -----------------------------------------------------------------------------------

#: Logged after every epoch with ``step = epoch``.
EPOCH_METRICS = (
    "train_loss",
    "val_loss",
    "val_auc",
    "val_accuracy",
    "epoch_time_s",
    "data_time_s",
    "lr",
    # SAM family: how faithfully the compute dtype carries the perturbation e, on the epoch's
    # first step: cosine(e, cast(w + e) - cast(w)) and the norm ratio of the two (1.0 in fp32)
    "perturbation_fidelity",
    "perturbation_norm_ratio",
    # forward-backward passes on training batches in this epoch (two per SAM step)
    "epoch_gradient_evals",
)
TEST_PREFIX = "test_"


def test_metric(name: str) -> str:
    """``auc`` -> ``test_auc``: a metric of :data:`medbench.metrics.METRIC_NAMES` on the test fold."""
    return TEST_PREFIX + name


#: Final metrics of a finished child run (besides per-site and flatness metrics).
TEST_METRICS = tuple(test_metric(m) for m in METRIC_NAMES)
FINAL_METRICS = (*TEST_METRICS, "test_loss", "best_epoch", "train_time_s")
#: Compute a fold run used: forward-backward passes on training batches (SAM takes two per
#: step), and when the first epoch reached the target validation AUC (left out when never).
COMPUTE_METRICS = (
    "gradient_evals",
    "time_to_target_s",
    "gradient_evals_to_target",
    "tuning_time_s",
    "tuning_gradient_evals",
)
#: Metrics of a tuning trial run: its objective on the validation split (``val_auc`` or
#: ``val_loss``, the best of its epochs), at which epoch, and what the trial cost. Never a test
#: metric: a trial does not see the test fold.
TRIAL_METRICS = ("val_auc", "val_loss", "best_epoch", "train_time_s", "gradient_evals")
#: Per-site test metrics: test_{metric}_site_{site}.
SITE_METRICS = ("auc", "accuracy")
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


#: Longest site name a metric name carries as it is (MLflow caps a metric name at 250).
SITE_KEY_MAX = 40


def site_key(site: str) -> str:
    """A site's name as metric names carry it, collision-free and bounded.

    A name of at most :data:`SITE_KEY_MAX` characters that MLflow accepts is kept as it is
    (``GDPH``). Any other gets a stable digest of the real name after its first characters, with
    the characters MLflow refuses as ``_``: ``scanner#1`` and ``scanner_1`` no longer share
    ``test_auc_site_scanner_1``, and a 300-character name no longer stops the run. The real
    name is in the fold run's tag ``TAG_SITE_NAMES``.
    """
    name = str(site)
    if len(name) <= SITE_KEY_MAX and not _UNSAFE.search(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{_UNSAFE.sub('_', name)[: SITE_KEY_MAX - 9]}_{digest}"


def site_metric(metric: str, site: str) -> str:
    """``test_auc_site_GDPH`` (see :func:`site_key`)."""
    return f"{test_metric(metric)}_site_{site_key(site)}"


#: Flatness of the best checkpoint (child runs), when measured.
FLATNESS_METRICS = ("hessian_top_eigenvalue", "hessian_trace", "sam_sharpness")
#: Its uncertainty and cost (seconds, and Hessian-vector products), logged beside it.
FLATNESS_EXTRA_METRICS = ("hessian_trace_stderr", "flatness_time_s", "flatness_hvps")
#: Parent metrics: cross-validation aggregates of these child metrics, ``cv_{name}_mean``/``_std``.
AGGREGATED_METRICS = tuple(
    test_metric(m) for m in ("auc", "accuracy", "sensitivity", "specificity", "f1")
)


def cv_mean(metric: str) -> str:
    return f"cv_{metric}_mean"


def cv_std(metric: str) -> str:
    return f"cv_{metric}_std"


def external_metric(dataset: str, metric: str) -> str:
    """A test metric on an external dataset: ``external_busbra_auc``."""
    return f"external_{_UNSAFE.sub('_', str(dataset))}_{metric}"


def external_fingerprints(fingerprints: dict[str, str]) -> str:
    """The value of ``TAG_EXTERNAL``: ``name=fingerprint`` pairs by name, ``;``-separated ('' for
    none, as on runs without external data)."""
    return ";".join(f"{name}={fp}" for name, fp in sorted(fingerprints.items()))


#: Metrics of a fold's selected checkpoint on an external dataset (``external_metric``): every
#: test metric, and the loss.
EXTERNAL_METRICS = (*METRIC_NAMES, "loss")


# -- artifacts ---------------------------------------------------------------------------------

PREDICTIONS_FILE = "predictions.csv"  # child runs: one row per test image
FLATNESS_FILE = "flatness.json"  # child runs: flatness measures and the 1-D landscape
CONFIG_FILE = "config.yaml"  # parent runs: the config that made the runs
REPORT_DIR = "report"  # parent runs: the report's files
#: Columns of ``predictions.csv`` in order, with the dtype the reader gives them. ``fold`` is an
#: integer, or a site name when a site is left out; ``repeat`` (optional) is there with
#: ``cv.repeats`` > 1 only; empty reader cells stay empty strings.
PREDICTION_COLUMNS: dict[str, str] = {
    "id": "str",
    "site": "str",
    "fold": "object",
    "label": "int64",
    "prob_malignant": "float64",
    "birads_reader1": "str",
    "birads_reader2": "str",
    "repeat": "int64",
}


_EXTERNAL_FILE = re.compile(r"predictions_external_(?P<dataset>.+)\.csv")


def external_predictions_file(dataset: str) -> str:
    """Predictions of a fold's selected checkpoint on an external dataset (same columns)."""
    return f"predictions_external_{re.sub(r'[^A-Za-z0-9_.-]', '_', str(dataset))}.csv"


def external_dataset(artifact: str) -> str | None:
    """The dataset an ``external_predictions_file`` artifact belongs to; None for other files.
    (Exact for the names medbench gives external datasets: letters, digits, '_' and '-'.)"""
    found = _EXTERNAL_FILE.fullmatch(artifact)
    return found["dataset"] if found else None


#: The columns every ``predictions.csv`` must have (readers' columns may be empty).
REQUIRED_PREDICTION_COLUMNS = ("id", "site", "fold", "label", "prob_malignant")
#: The columns only some ``predictions.csv`` have: ``repeat`` with ``cv.repeats`` > 1.
OPTIONAL_PREDICTION_COLUMNS = ("repeat",)
