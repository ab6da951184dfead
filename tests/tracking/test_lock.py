import json
import time

import pytest

from medbench.errors import TrackingError
from medbench.tracking import lock as locks
from medbench.tracking.lock import ExperimentLock


def test_a_second_holder_is_refused_with_the_first_ones_name(mlflow_uri):
    first = ExperimentLock(mlflow_uri, "exp")
    first.acquire()
    try:
        with pytest.raises(
            TrackingError,
            match=rf"experiment 'exp' in .* is being run by pid {first.me.pid} on {first.me.host}",
        ):
            ExperimentLock(mlflow_uri, "exp").acquire()
        ExperimentLock(mlflow_uri, "other").acquire()  # another experiment is free
    finally:
        first.release()
    with ExperimentLock(mlflow_uri, "exp"):  # released: free again
        pass


def test_a_dead_holders_lock_is_taken_over(mlflow_uri):
    dead = ExperimentLock(mlflow_uri, "exp")
    dead.acquire()
    dead._stop.set()  # the process died: no more heartbeats, nothing released
    stale = {**dead.me.__dict__, "heartbeat": time.time() - locks.EXPIRY_S - 1}
    dead.client.set_experiment_tag(dead._id, locks._TAG, json.dumps(stale))
    with ExperimentLock(mlflow_uri, "exp") as taker:
        held = taker.client.get_experiment_by_name("exp.lock")
        assert json.loads(held.tags[locks._TAG])["token"] == taker.me.token


def test_locks_are_not_listed_by_the_ui(monkeypatch, mlflow_uri, capsys):
    import medbench.tracking.store as store
    from medbench.tracking import Tracker

    Tracker(mlflow_uri, "exp")
    monkeypatch.setattr(store.subprocess, "call", lambda args: 0)
    with ExperimentLock(mlflow_uri, "exp"):
        store.serve_ui(tracking_uri=mlflow_uri)
    out = capsys.readouterr().out
    assert "exp:" in out and "exp.lock" not in out


def test_a_holder_whose_process_is_gone_is_taken_over_at_once(mlflow_uri):
    """After a SIGKILL on this machine the rerun must not wait for the lock to expire."""
    import subprocess
    import sys

    dead = ExperimentLock(mlflow_uri, "exp")
    dead.acquire()
    dead._stop.set()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    holder = {**dead.me.__dict__, "pid": int(gone.stdout), "heartbeat": time.time()}
    dead.client.set_experiment_tag(dead._id, locks._TAG, json.dumps(holder))
    with ExperimentLock(mlflow_uri, "exp"):
        pass
