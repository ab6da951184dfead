import os
import subprocess
import sys

import mlflow
import pandas as pd
import pytest

TINY = [
    "models=[smallcnn]",
    "optimizers=[adam, gcsam]",
    "data.image_size=16",
    "data.folds=stratified",
    "data.n_folds=3",
    "train.epochs=2",
    "train.batch_size=16",
    "optimizer.lr=0.003",
    "flatness.enabled=false",
    "report.enabled=false",
    "executor.jobs_per_device=1",  # in this process: tests patch what the jobs call
]


@pytest.fixture
def tiny_config(tiny_bus, mlflow_uri):
    from medbench.config import load_config

    def make(*extra):
        return load_config(
            "demo",
            [*TINY, f"tracking.uri={mlflow_uri}", "name=tiny", *extra],
            data_root=str(tiny_bus),
        )

    return make


def child_runs(uri: str, name: str) -> pd.DataFrame:
    """The runs of experiment ``name`` that have a parent (fold and trial runs), by run name."""
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[name])
    kids = runs[runs["tags.mlflow.parentRunId"].notna()]
    return kids.sort_values("tags.mlflow.runName").reset_index(drop=True)


def start_run(config_path, data_root, cwd, cache, **popen) -> subprocess.Popen:
    """``medbench run CONFIG --data-root DATA`` as a user starts it, in its own process with its
    own cache folder and the working folder's MLflow store; output captured as text."""
    env = {**os.environ, "MEDBENCH_CACHE_DIR": str(cache)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "medbench", "run", str(config_path), "--data-root", str(data_root)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
