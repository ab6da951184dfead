"""End to end: a tiny grid through the real engine, checked in MLflow via mlflow.search_runs."""

import mlflow
import pandas as pd
import pytest

from medbench.pipeline import run_benchmark


def _runs(uri, name="tiny"):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[name])


def test_grid_follows_the_mlflow_contract(tiny_config):
    config = tiny_config()
    result = run_benchmark(config, report=False, progress=False)
    runs = _runs(config.tracking.uri)
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert sorted(parents["tags.mlflow.runName"]) == ["smallcnn/adam", "smallcnn/gcsam"]
    assert len(children) == 6 and set(children["status"]) == {"FINISHED"}
    assert set(parents["status"]) == {"FINISHED"}
    expected_names = {f"smallcnn/{o}/fold{k}" for o in ("adam", "gcsam") for k in (1, 2, 3)}
    assert set(children["tags.mlflow.runName"]) == expected_names
    by_id = parents.set_index("run_id")
    for _, child in children.iterrows():
        parent = by_id.loc[child["tags.mlflow.parentRunId"]]
        assert child["tags.mlflow.runName"].startswith(parent["tags.mlflow.runName"] + "/fold")
        assert child["params.fold"] == child["tags.mlflow.runName"].rsplit("fold", 1)[1]
    for key in ("model", "optimizer", "lr", "rho", "epochs", "batch_size", "image_size", "seed"):
        assert parents[f"params.{key}"].notna().all(), key
    assert set(parents["params.epochs"]) == {"2"} and set(parents["params.image_size"]) == {"16"}
    for key in ("version", "config_hash", "dataset_fingerprint"):
        assert runs[f"tags.medbench.{key}"].notna().all()
    for metric in (
        "test_auc",
        "test_accuracy",
        "test_sensitivity",
        "test_specificity",
        "test_f1",
        "best_epoch",
        "train_time_s",
    ):
        assert children[f"metrics.{metric}"].notna().all(), metric
    for metric in (
        "cv_test_auc_mean",
        "cv_test_auc_std",
        "cv_test_accuracy_mean",
        "cv_test_accuracy_std",
    ):
        assert parents[f"metrics.{metric}"].notna().all(), metric
    # parent aggregates are the mean/std of the children
    for _, parent in parents.iterrows():
        kids = children[children["tags.mlflow.parentRunId"] == parent["run_id"]]
        assert parent["metrics.cv_test_auc_mean"] == pytest.approx(kids["metrics.test_auc"].mean())
        assert parent["metrics.cv_test_auc_std"] == pytest.approx(
            kids["metrics.test_auc"].std(ddof=1)
        )
    # per-epoch curves with step = epoch, artifacts, dataset input
    client = mlflow.MlflowClient()
    child = children.iloc[0]
    for metric in ("train_loss", "val_loss", "val_auc", "val_accuracy", "epoch_time_s"):
        assert [m.step for m in client.get_metric_history(child["run_id"], metric)] == [0, 1], (
            metric
        )
    path = client.download_artifacts(child["run_id"], "predictions.csv")
    pred = pd.read_csv(path)
    assert list(pred.columns[:5]) == ["id", "site", "fold", "label", "prob_malignant"]
    assert set(pred["fold"]) == {int(child["params.fold"])}
    assert pred["prob_malignant"].between(0, 1).all()
    run = client.get_run(child["run_id"])
    assert run.inputs.dataset_inputs and run.inputs.dataset_inputs[0].dataset.name == "bus"
    assert "config.yaml" in {a.path for a in client.list_artifacts(parents.iloc[0]["run_id"])}
    assert len(result.summary) == 2


def test_rerun_skips_finished_jobs_without_duplicates(tiny_config):
    config = tiny_config()
    run_benchmark(config, report=False, progress=False)
    first = _runs(config.tracking.uri)
    again = run_benchmark(config, report=False, progress=False)
    second = _runs(config.tracking.uri)
    assert {o.status for o in again.outcomes} == {"SKIPPED"}
    assert sorted(first["run_id"]) == sorted(second["run_id"])
    children = second[second["tags.mlflow.parentRunId"].notna()].sort_values("run_id")
    before = first[first["tags.mlflow.parentRunId"].notna()].sort_values("run_id")
    assert children["metrics.test_auc"].tolist() == before["metrics.test_auc"].tolist()
    # a changed setting is a different job: new runs, the old ones kept
    run_benchmark(tiny_config("train.epochs=1"), report=False, progress=False)
    third = _runs(config.tracking.uri)
    assert len(third) == 2 * len(second)


def test_paired_design_same_init_and_batches(tiny_config):
    """Every optimizer of a (model, fold, seed) starts from the same weights and sees the same batches."""
    import torch

    from medbench.engine.jobs import Job, data_seed, init_seed
    from medbench.models import build_model

    a, b = Job("smallcnn", "adam", 0, 0), Job("smallcnn", "gcsam", 0, 0)
    assert init_seed(a) == init_seed(b) and data_seed(a) == data_seed(b)
    assert init_seed(a) != init_seed(Job("smallcnn", "adam", 1, 0))
    weights = []
    for job in (a, b):
        torch.manual_seed(init_seed(job))
        weights.append(build_model(job.model, image_size=16).state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_report_covers_one_config_of_an_experiment(tiny_config):
    """Runs of an earlier config in the same experiment are not pooled as extra folds."""
    from medbench.tracking import load_experiment

    first = run_benchmark(tiny_config("optimizers=[adam]"), report=False, progress=False)
    second = run_benchmark(
        tiny_config("optimizers=[adam]", "train.epochs=1"), report=False, progress=False
    )
    uri = first.grid.tracking_uri
    latest = load_experiment("tiny", uri)
    assert len(latest.folds) == 3 and latest.ignored_runs == 4
    assert set(latest.folds["run_id"]) == {o.run_id for o in second.outcomes}
    earlier = load_experiment("tiny", uri, select=first.grid.select)
    assert set(earlier.folds["run_id"]) == {o.run_id for o in first.outcomes}
    # medbench run reports the config it ran, even when another one started later
    rerun = run_benchmark(
        tiny_config("optimizers=[adam]", "report.enabled=true", "report.out=rep"), progress=False
    )
    text = (rerun.report_dir / "report.md").read_text()
    assert "4 other run(s) of this experiment" in text and "| 3/3 |" in text


def test_parent_aggregates_average_seeds_within_a_fold(tiny_config):
    config = tiny_config("optimizers=[adam]", "seeds=[0, 1]")
    run_benchmark(config, report=False, progress=False)
    runs = _runs(config.tracking.uri)
    kids = runs[runs["tags.mlflow.parentRunId"].notna()]
    parent = runs[runs["tags.mlflow.parentRunId"].isna()].iloc[0]
    per_fold = kids.groupby("params.fold")["metrics.test_auc"].mean()
    assert len(kids) == 6 and len(per_fold) == 3
    assert parent["metrics.cv_test_auc_mean"] == pytest.approx(per_fold.mean())
    assert parent["metrics.cv_test_auc_std"] == pytest.approx(per_fold.std(ddof=1))
    assert parent["tags.medbench.n_finished"] == "6"


def test_a_duplicate_finished_run_counts_once_in_its_parent(mlflow_uri):
    """An older version's race could leave two FINISHED runs for one job: the parent counts
    the job once and ends FINISHED."""
    from medbench.engine.grid import close_parent
    from medbench.tracking import Tracker

    tr = Tracker(mlflow_uri, "dups")
    pid = tr.start_parent("m", "adam", {"model": "m", "optimizer": "adam"}, "h", "f")
    for fold, auc in ((0, 0.6), (0, 0.7), (1, 0.9)):
        params = {"fold": fold, "seed": 0, "model": "m", "optimizer": "adam"}
        cid = tr.start_child(pid, "m", "adam", fold, 0, params, "h", "f")
        tr._log_metrics(cid, {"test_auc": auc})
        tr.finish(cid)
    metrics = close_parent(tr, pid, expected=2)
    run = tr.client.get_run(pid)
    assert run.info.status == "FINISHED" and run.data.tags["medbench.n_finished"] == "2"
    assert metrics["cv_test_auc_mean"] == pytest.approx((0.7 + 0.9) / 2)  # the later duplicate
