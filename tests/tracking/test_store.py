import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medbench.errors import TrackingError
from medbench.tracking import Tracker, check_store, load_experiment, resolve_tracking_uri, store
from medbench.tracking.lock import ExperimentLock


def test_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri(None).startswith("sqlite:") and resolve_tracking_uri(None).endswith(
        "mlflow.db"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert resolve_tracking_uri(None) == "sqlite:///env.db"
    assert resolve_tracking_uri("sqlite:///cfg.db") == "sqlite:///cfg.db"


@pytest.mark.subprocess
def test_the_default_store_is_mlflows_without_importing_it(tmp_path):
    """Outside a folder of old ``mlruns``, the default is written without importing mlflow (the
    seconds a ``report`` in the wrong folder waited for one line), and is what MLflow says."""
    work = tmp_path / "my runs" / "étude"
    work.mkdir(parents=True)
    probe = (
        "import sys\n"
        "from medbench.tracking.store import resolve_tracking_uri\n"
        "light = resolve_tracking_uri(None)\n"
        "assert 'mlflow' not in sys.modules\n"
        "import mlflow\n"
        "print(light == mlflow.get_tracking_uri(), light)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=work, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True sqlite:///") and "%20" in out.stdout


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("sqlite:////no/such/folder/mlflow.db", r"folder /no/such/folder does not exist"),
        ("sqlite:///:memory:", r"in-memory"),
        ("http://127.0.0.1:{port}", r"http://127\.0\.0\.1:\d+ is unreachable"),
    ],
)
def test_unusable_store_fails_fast(uri, match):
    with pytest.raises(TrackingError, match=match):
        check_store(uri.format(port=_free_port()), timeout=2)


def test_a_working_folder_with_spaces_and_accents_is_fine(tmp_path, monkeypatch):
    work = tmp_path / "my runs" / "étude"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    uri = resolve_tracking_uri(None)
    assert "%20" in uri  # MLflow percent-encodes its default
    check_store(uri)


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        (
            "sqlite:///my?store.db",
            r"'\?' starts SQLite options, so the database would be written to 'my'",
        ),
        ("{tmp}/plain", r"a plain folder is MLflow's old file store.* sqlite:////"),
        ("file://{tmp}/plain", r"a plain folder is MLflow's old file store"),
    ],
)
def test_stores_mlflow_would_misread_are_refused(uri, match, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(TrackingError, match=match):
        check_store(uri.format(tmp=tmp_path))


@pytest.mark.subprocess
def test_a_store_another_client_is_migrating_is_waited_for(monkeypatch, tmp_path):
    """Issue 25 #1: a new store opened at the same moment by another MLflow client (the UI, a
    notebook) made MLflow's table upgrade fail in one of them; medbench retries the opening."""

    real, calls = store.client, []

    class Migrating:
        def search_experiments(self, **kw):
            calls.append(kw)
            if len(calls) < 3:
                raise AttributeError("dimension_attributes")  # what the race raised
            return real(uri).search_experiments(**kw)

    uri = f"sqlite:///{tmp_path / 'new.db'}"
    monkeypatch.setattr(store, "client", lambda u: Migrating())
    check_store(uri)
    assert len(calls) == 3

    class Stuck:
        def search_experiments(self, **kw):
            raise AttributeError("dimension_attributes")

    monkeypatch.setattr(store, "client", lambda u: Stuck())
    with pytest.raises(TrackingError, match=r"could not be opened for 0 s .*dimension_attributes"):
        store._open(uri, wait=0.3)


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_new_store_opened_by_another_client_at_the_same_moment(tmp_path):
    """The real race: another process polls a new SQLite store with the MLflow client while
    medbench opens it and writes a run. Every attempt must succeed."""

    poll = (
        "import sys, time\n"
        "from mlflow import MlflowClient\n"
        "end = time.time() + 8\n"
        "while time.time() < end:\n"
        "    try:\n"
        "        MlflowClient(sys.argv[1]).search_experiments(max_results=1)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    for attempt, delay in enumerate((1.0, 2.0)):
        uri = f"sqlite:///{tmp_path / f'race{attempt}.db'}"
        other = subprocess.Popen([sys.executable, "-c", poll, uri])
        try:
            time.sleep(delay)  # the other client starts creating the tables about now
            check_store(uri)
            tracker = Tracker(uri, "exp")
            run = tracker.client.create_run(tracker.experiment_id, run_name="r")
            tracker.finish(run.info.run_id)
        finally:
            other.wait(timeout=60)
        assert tracker.client.get_run(run.info.run_id).info.status == "FINISHED"


def test_commands_that_read_never_create_a_store(monkeypatch, tmp_path):
    """Issue 24/25: ``medbench report NAME`` in another folder created an empty mlflow.db and
    said much later that the experiment did not exist."""

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(TrackingError, match=r"no tracking store at .*mlflow.db .*--tracking-uri"):
        load_experiment("medbench-demo")
    with pytest.raises(TrackingError, match=r"no tracking store at .*typo.db"):
        check_store(f"sqlite:///{tmp_path / 'typo.db'}", create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_experiment_names_the_store_and_how_to_point_elsewhere(mlflow_uri):

    Tracker(mlflow_uri, "medbench-demo")
    with ExperimentLock(mlflow_uri, "medbench-demo"), pytest.raises(TrackingError) as err:
        load_experiment("medbench-dmeo", mlflow_uri)
    message = str(err.value)
    assert "did you mean 'medbench-demo'" in message and "--tracking-uri" in message
    assert "medbench-demo.lock" not in message  # locks are not experiments of the user's


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_migration_left_half_way_by_another_client_is_finished(tmp_path, monkeypatch):
    """A client that died (or gave up) inside alembic's batch copy left
    ``_alembic_tmp_experiments`` behind: every later open failed with "table ... already
    exists" for good. After a grace period the copy is cleared and the store opens."""
    path = tmp_path / "half.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE experiments (id INTEGER)")
        db.execute("INSERT INTO experiments VALUES (7)")
        db.execute("CREATE TABLE _alembic_tmp_experiments (id INTEGER)")  # an unfinished copy
        db.execute("CREATE TABLE _alembic_tmp_runs (id INTEGER)")  # filled; its table dropped
        db.execute("INSERT INTO _alembic_tmp_runs VALUES (3)")
    tries = []

    class Client:
        def search_experiments(self, max_results):
            tries.append(time.monotonic())
            leftovers = sorted(t for t in _tables(path) if t.startswith(store.BATCH_PREFIX))
            if leftovers:
                raise RuntimeError(
                    f"(sqlite3.OperationalError) table {leftovers[0]} already exists"
                )

    monkeypatch.setattr(store, "client", lambda uri: Client())
    monkeypatch.setattr(store, "LEFTOVER_GRACE_S", 0.3)
    store._open(f"sqlite:///{path}", wait=30)
    assert _tables(path) == {"experiments", "runs"} and len(tries) >= 3
    assert tries[-1] - tries[0] >= 0.3  # not at the first sight: it may be a migration under way
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id FROM experiments").fetchall() == [(7,)]
        assert db.execute("SELECT id FROM runs").fetchall() == [(3,)]
