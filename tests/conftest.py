"""Shared test set-up: every test gets its own cache folder and MLflow store, never the user's."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's default store and artifacts live in the working folder
    cache = tmp_path_factory.getbasetemp() / "medbench-cache"
    monkeypatch.setenv("MEDBENCH_CACHE_DIR", str(cache))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # tests that query runs with mlflow.set_tracking_uri leave it set for the whole process
    import mlflow.tracking._tracking_service.utils as tracking_utils

    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    yield


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory):
    """An MLflow SQLite store with its tables made once: migrations take seconds per store."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("store-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(_empty_store, tmp_path):
    """A fresh, empty SQLite tracking store for one test."""
    import shutil

    target = tmp_path / "mlflow.db"
    shutil.copy(_empty_store, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def tiny_bus(tmp_path_factory):
    """A small synthetic dataset in the GDPH&SYSUCC layout (shared, read-only)."""
    from medbench.data.synth.synthetic import generate

    root = tmp_path_factory.mktemp("tiny-bus") / "bus"
    generate(root, n=60, seed=3)
    return root
