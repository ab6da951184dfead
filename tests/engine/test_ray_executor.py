"""The Ray executor against a real MLflow tracking server: same runs and metrics as the local one."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import mlflow
import pytest

from medbench.config import load_config
from medbench.errors import TrackingError
from medbench.pipeline import run_benchmark
from tests.engine.conftest import TINY

ray = pytest.importorskip("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path, _empty_store):
    import shutil

    db = tmp_path / "server.db"
    shutil.copy(_empty_store, db)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _children(uri, name):
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[name])
    kids = (
        runs[runs["tags.mlflow.parentRunId"].notna()]
        .sort_values("tags.mlflow.runName")
        .reset_index(drop=True)
    )
    cols = [
        "tags.mlflow.runName",
        "status",
        *sorted(c for c in kids.columns if c.startswith("metrics.test_")),
        "metrics.best_epoch",
    ]
    return runs, kids[cols]


@contextmanager
def _local_then_ray(common, data_root, local_uri, server):
    """Run the config ``common`` locally into ``local_uri``, then yield it for Ray on ``server``,
    inside a local Ray instance."""
    local = load_config("demo", [*common, f"tracking.uri={local_uri}"], data_root=str(data_root))
    run_benchmark(local, report=False, progress=False)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"MEDBENCH_CACHE_DIR": os.environ["MEDBENCH_CACHE_DIR"]}},
    )
    try:
        yield load_config(
            "demo",
            [*common, f"tracking.uri={server}", "executor.kind=ray"],
            data_root=str(data_root),
        )
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_grid_equals_local_grid(tiny_bus, mlflow_uri, mlflow_server):
    common = [*TINY, "train.threads=1", "executor.cpus_per_job=1", "name=raytest"]
    with _local_then_ray(common, tiny_bus, mlflow_uri, mlflow_server) as remote:
        result = run_benchmark(remote, report=False, progress=False)
        assert {o.status for o in result.outcomes} == {"FINISHED"}
        # resume through Ray too: nothing left to run, no duplicates
        again = run_benchmark(remote, report=False, progress=False)
        assert {o.status for o in again.outcomes} == {"SKIPPED"}
    runs_local, local_kids = _children(mlflow_uri, "raytest")
    runs_ray, ray_kids = _children(mlflow_server, "raytest")
    assert len(runs_ray) == len(runs_local) == 8
    assert local_kids.equals(ray_kids)
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    child = runs_ray[runs_ray["tags.mlflow.parentRunId"].notna()].iloc[0]
    assert "predictions.csv" in {a.path for a in client.list_artifacts(child["run_id"])}


@pytest.mark.slow
def test_ray_runs_every_repeat_like_the_local_executor(tiny_bus, mlflow_uri, mlflow_server):
    """Repeated cross-validation as Ray tasks: the same runs, names, repeats and metrics."""
    common = [*TINY, "optimizers=[adam]", "data.n_folds=2", "cv.repeats=2"]
    common += ["train.threads=1", "executor.cpus_per_job=1", "name=rayrepeats"]
    with _local_then_ray(common, tiny_bus, mlflow_uri, mlflow_server) as remote:
        result = run_benchmark(remote, report=False, progress=False)
        assert {o.status for o in result.outcomes} == {"FINISHED"} and len(result.outcomes) == 4
    runs_local, local_kids = _children(mlflow_uri, "rayrepeats")
    runs_ray, ray_kids = _children(mlflow_server, "rayrepeats")
    assert local_kids.equals(ray_kids)
    assert "smallcnn/adam/r2/fold1" in set(ray_kids["tags.mlflow.runName"])
    kids = runs_ray[runs_ray["tags.mlflow.parentRunId"].notna()]
    assert (
        sorted(kids["params.repeat"])
        == sorted(kids["tags.medbench.repeat"])
        == ["1", "1", "2", "2"]
    )


def test_cluster_address_with_local_sqlite_store_is_refused(tiny_bus, mlflow_uri):
    config = load_config(
        "demo",
        [
            *TINY,
            f"tracking.uri={mlflow_uri}",
            "executor.kind=ray",
            "executor.address=ray://head:10001",
        ],
        data_root=str(tiny_bus),
    )
    with pytest.raises(TrackingError, match=r"workers on other machines cannot reach"):
        run_benchmark(config, report=False, progress=False)


@pytest.mark.slow
def test_ray_runs_tuning_trials_as_tasks_like_the_local_executor(
    tiny_bus, mlflow_uri, mlflow_server
):
    """Trials are Ray tasks too: the same trials, settings and chosen values as locally."""
    common = [
        *TINY,
        "optimizers=[adam, gcsam]",
        "data.n_folds=2",
        "train.threads=1",
        "executor.cpus_per_job=1",
        "tune.enabled=true",
        "tune.trials=2",
        "tune.epochs=1",
        "name=raytune",
    ]
    with _local_then_ray(common, tiny_bus, mlflow_uri, mlflow_server) as remote:
        result = run_benchmark(remote, report=False, progress=False)
        assert {o.status for o in result.outcomes} == {"FINISHED"} and len(result.outcomes) == 4
    cols = ["status", "params.lr", "params.rho", "metrics.val_auc", "metrics.test_auc"]

    def table(uri):
        mlflow.set_tracking_uri(uri)
        runs = mlflow.search_runs(experiment_names=["raytune"])
        nested = runs[runs["tags.mlflow.parentRunId"].notna()]
        return nested.set_index("tags.mlflow.runName")[cols].sort_index()

    on_ray, here = table(mlflow_server), table(mlflow_uri)
    assert len(on_ray) == 4 + 8  # fold runs and their trials
    assert on_ray.equals(here)
