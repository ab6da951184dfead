"""Two `medbench run`s at once on the same config and store: the second stops at once with one
line naming the first; the first finishes with one finished run per job and its parents FINISHED."""

import os
import subprocess
import sys
import time

import mlflow
import pytest

from tests.engine.conftest import TINY


@pytest.mark.slow
def test_a_second_run_on_the_same_experiment_stops_at_once(tmp_path, tiny_bus):
    env = {**os.environ, "MEDBENCH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MLFLOW_TRACKING_URI", None)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # long enough that the first is still training when the second has started (imports: s)
    long = ["train.epochs=80", "train.early_stopping.patience=80"]
    sets = [*TINY, *long, f"tracking.uri={uri}", "name=shared"]
    argv = [sys.executable, "-m", "medbench", "run", "demo", "--data-root", str(tiny_bus)]
    argv += [arg for item in sets for arg in ("--set", item)]
    first = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "cache").glob("checkpoints/**/*.pt")):  # the first is training
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.05)
    second = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert second.returncode == 2, second.stderr
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith("medbench: error: experiment 'shared' in sqlite:///")
    assert f"is being run by pid {first.pid} on " in last
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["shared"])
    kids = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(kids) == 6 and set(kids["status"]) == {"FINISHED"}
    assert kids["tags.medbench.job"].is_unique
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert set(parents["status"]) == {"FINISHED"} and len(parents) == 2
    # the lock is gone: a rerun resumes (nothing to do) instead of stopping
    again = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


@pytest.mark.slow
def test_a_grid_paused_past_its_locks_expiry_stops_when_it_wakes(tmp_path, tiny_bus):
    """Issue 25 #4: a grid stopped (Ctrl-Z, a suspended laptop) past the lock's expiry lost its
    lock to a second run; when it woke both wrote into one experiment. It now stops with one
    line at its next heartbeat (made 0.5 s here), its jobs KILLED and checkpoints kept."""
    import json
    import signal
    import sqlite3

    from medbench.tracking import schema as s

    env = {**os.environ, "MEDBENCH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MLFLOW_TRACKING_URI", None)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    long = ["train.epochs=200", "train.early_stopping.patience=200"]
    sets = [*TINY, *long, f"tracking.uri={uri}", "name=paused"]
    args = ["run", "demo", "--data-root", str(tiny_bus)]
    args += [arg for item in sets for arg in ("--set", item)]
    code = (
        "import sys\n"
        "import medbench.tracking.lock as lock\n"
        "lock.HEARTBEAT_S = 0.5\n"
        "from medbench.cli import main\n"
        f"sys.exit(main({args!r}))\n"
    )
    first = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 180
    while not list((tmp_path / "cache").glob("checkpoints/**/*.pt")):  # the first is training
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.05)
    while True:  # paused outside any transaction of its store (a stopped reader blocks writes)
        os.kill(first.pid, signal.SIGSTOP)
        try:
            with sqlite3.connect(tmp_path / "mlflow.db", timeout=0.5) as db:
                db.execute("BEGIN EXCLUSIVE")  # no write and no read of it in progress
                db.rollback()
            break
        except sqlite3.OperationalError:
            os.kill(first.pid, signal.SIGCONT)
            time.sleep(0.05)
    try:
        client = mlflow.MlflowClient(uri)
        held = client.get_experiment_by_name("paused.lock")
        stale = {**json.loads(held.tags[s.TAG_LOCK]), "heartbeat": time.time() - 1000}
        client.set_experiment_tag(held.experiment_id, s.TAG_LOCK, json.dumps(stale))
        argv = [sys.executable, "-m", "medbench", *args]
        second = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        while True:  # the second has taken the lock over
            found = client.get_experiment_by_name("paused.lock")
            holder = json.loads((found.tags if found else {}).get(s.TAG_LOCK) or "{}")
            if holder.get("pid") == second.pid:
                break
            assert second.poll() is None and time.time() < deadline, second.communicate()
            time.sleep(0.1)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    try:
        _, err = first.communicate(timeout=120)
        assert first.returncode == 2, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("medbench: error: experiment 'paused': this run's lock was taken")
        assert f"pid {second.pid}" in last
        assert list((tmp_path / "cache").glob("checkpoints/**/*.pt"))  # kept
        held = client.get_experiment_by_name("paused.lock")  # the second's lock is untouched
        assert json.loads(held.tags[s.TAG_LOCK])["pid"] == second.pid
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=120)
