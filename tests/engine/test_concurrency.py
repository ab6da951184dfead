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
