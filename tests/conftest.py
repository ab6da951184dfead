"""Shared test set-up: every test gets its own cache folder and MLflow store, never the user's."""

from __future__ import annotations

import pytest

#: Fixtures of end-to-end tests (a grid trained on the shared dataset, a report built from a
#: store): the tests that use one are marked ``e2e``, which ``make test-fast`` leaves out with
#: those marked ``slow`` or ``subprocess``.
END_TO_END_FIXTURES = frozenset({"tiny_bus", "tiny_config", "built"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if END_TO_END_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    # the files that hold slow tests first, each in its own order: `make test`'s workers take a
    # file at a time in this order, so the longest start first and the short ones fill in
    heavy = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in heavy)


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
