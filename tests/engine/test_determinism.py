"""The same config and seed give identical metrics on the CPU."""

import mlflow
import pytest

from medbench.config import load_config
from medbench.pipeline import run_benchmark
from tests.engine.conftest import TINY


@pytest.mark.slow
def test_same_config_twice_gives_identical_metrics(tiny_bus, mlflow_uri, tmp_path):
    import shutil

    second_store = tmp_path / "second.db"
    shutil.copy(mlflow_uri.removeprefix("sqlite:///"), second_store)
    results = []
    for uri in (mlflow_uri, f"sqlite:///{second_store}"):
        config = load_config(
            "demo", [*TINY, f"tracking.uri={uri}", "name=det"], data_root=str(tiny_bus)
        )
        run_benchmark(config, report=False, progress=False)
        mlflow.set_tracking_uri(uri)
        runs = mlflow.search_runs(experiment_names=["det"])
        children = runs[runs["tags.mlflow.parentRunId"].notna()].sort_values("tags.mlflow.runName")
        metrics = [
            c
            for c in children.columns
            if c.startswith("metrics.test_") or c == "metrics.best_epoch"
        ]
        results.append(children[["tags.mlflow.runName", *metrics]].reset_index(drop=True))
        histories = children["run_id"].map(
            lambda r: [m.value for m in mlflow.MlflowClient().get_metric_history(r, "train_loss")]
        )
        results.append(histories.tolist())
    assert results[0].equals(results[2])
    assert results[1] == results[3]
