import json
import subprocess
import sys
import time

import pytest

from medbench.errors import TrackingError
from medbench.tracking import Tracker
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


def test_a_holder_whose_process_is_gone_is_taken_over_at_once(mlflow_uri):
    """After a SIGKILL on this machine the rerun must not wait for the lock to expire."""

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


def test_a_users_experiment_named_like_a_lock_is_never_taken(mlflow_uri):
    """Issue 25 #3: ``run --set name=study.lock`` then ``name=study`` deleted the user's
    experiment ``study.lock``. A lock is recognised by its tag; the clash is refused."""

    users = Tracker(mlflow_uri, "study.lock")
    run_id = users.client.create_run(users.experiment_id, run_name="mine").info.run_id
    with pytest.raises(TrackingError, match=r"experiment of yours named 'study.lock'"):
        ExperimentLock(mlflow_uri, "study").acquire()
    with pytest.raises(TrackingError, match=r"names ending in '.lock' are medbench's locks"):
        ExperimentLock(mlflow_uri, "study.lock").acquire()
    kept = users.client.get_experiment_by_name("study.lock")
    assert kept.lifecycle_stage == "active" and kept.experiment_id == users.experiment_id
    assert users.client.get_run(run_id).info.lifecycle_stage == "active"


def test_a_holder_paused_past_the_expiry_learns_that_its_lock_was_taken(mlflow_uri):
    """Issue 25 #4: a grid stopped (SIGSTOP) for longer than the expiry lost its lock to a
    second run; when it woke, both wrote. Its next heartbeat now finds another token and
    stops it, and it never deletes the new holder's lock."""
    told = []
    paused = ExperimentLock(mlflow_uri, "exp", on_lost=told.append)
    paused.acquire()
    paused._stop.set()  # paused: no heartbeat
    paused._thread.join()
    assert paused.check() is None  # still its own
    stale = {**paused.me.__dict__, "heartbeat": time.time() - locks.EXPIRY_S - 1}
    paused.client.set_experiment_tag(paused._id, locks._TAG, json.dumps(stale))
    with ExperimentLock(mlflow_uri, "exp") as taker:
        reason = paused.check()
        assert reason is not None and f"pid {taker.me.pid}" in reason
        assert "taken over" in reason and "two runs never write one experiment" in reason
        # the heartbeat thread acts on it: tells the grid, gives nothing back
        paused._stop.clear()
        monkey = locks.HEARTBEAT_S
        locks.HEARTBEAT_S = 0.01
        try:
            paused._beat()
        finally:
            locks.HEARTBEAT_S = monkey
        assert told == [reason] and paused.lost == reason
        paused.release()  # must not discard the taker's lock
        held = taker.client.get_experiment_by_name("exp.lock")
        assert held.lifecycle_stage == "active"
        assert json.loads(held.tags[locks._TAG])["token"] == taker.me.token
