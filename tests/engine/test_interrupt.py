"""Interruptions of a real `medbench run` process: SIGTERM ends cleanly, SIGKILL resumes exactly."""

import signal
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.engine.conftest import child_runs, start_run

CONFIG = {
    "name": "interrupt",
    "models": ["smallcnn"],
    "optimizers": ["adam", "gcsam"],
    "data": {"folds": "stratified", "n_folds": 2, "image_size": 32},
    "optimizer": {"lr": 0.003},
    "train": {"epochs": 15, "batch_size": 16, "early_stopping": {"patience": 15}, "threads": 1},
    "flatness": {"enabled": False},
    "report": {"enabled": False},
}


def _wait_for_checkpoint(cache: Path, proc, after: int = 0, timeout: float = 180) -> Path:
    """Wait until a job of index >= ``after`` has written a checkpoint (training is under way)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = (
            sorted((cache / "checkpoints").rglob("*.pt"))
            if (cache / "checkpoints").exists()
            else []
        )
        if len(found) and proc.poll() is None:
            names = [p.name for p in found]
            # the second job on: folds are numbered from 1 (adam/fold1, adam/fold2, gcsam/...)
            if after == 0 or any("fold2" in n or "gcsam" in n for n in names):
                return found[0]
        if proc.poll() is not None:
            pytest.fail(f"medbench run ended early: {proc.communicate()}")
        time.sleep(0.02)
    pytest.fail("no checkpoint appeared")


@pytest.fixture
def setup(tmp_path, tiny_bus, _empty_store):
    import shutil

    config_path = tmp_path / "interrupt.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(_empty_store, work / "mlflow.db")
    return config_path, work, tmp_path / "cache"


@pytest.mark.slow
def test_sigterm_ends_the_job_cleanly_and_keeps_its_checkpoint(setup, tiny_bus):
    config_path, work, cache = setup
    proc = start_run(config_path, tiny_bus, work, cache)
    ckpt = _wait_for_checkpoint(cache, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "medbench: interrupted" in err
    kids = child_runs(f"sqlite:///{work / 'mlflow.db'}", "interrupt")
    assert "KILLED" in set(kids["status"]) and "RUNNING" not in set(kids["status"])
    killed = kids[kids["status"] == "KILLED"]
    assert killed["tags.medbench.failure"].str.contains("interrupted").all()
    assert ckpt.exists()


@pytest.mark.slow
def test_sigkill_mid_grid_then_rerun_resumes_to_the_uninterrupted_result(
    setup, tiny_bus, tmp_path, _empty_store
):
    import shutil

    config_path, work, cache = setup
    proc = start_run(config_path, tiny_bus, work, cache)
    _wait_for_checkpoint(cache, proc, after=1)  # at least one job done, another under way
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    uri = f"sqlite:///{work / 'mlflow.db'}"
    before = child_runs(uri, "interrupt")
    assert "RUNNING" in set(before["status"])  # the killed job's run was left behind
    rerun = start_run(config_path, tiny_bus, work, cache)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    after = child_runs(uri, "interrupt")
    assert len(after) == 4 and set(after["status"]) == {"FINISHED"}
    assert set(before["run_id"]) <= set(
        after["run_id"]
    )  # finished kept, interrupted one continued, no duplicates

    ref_work = tmp_path / "reference"
    ref_work.mkdir()
    shutil.copy(_empty_store, ref_work / "mlflow.db")
    ref = start_run(config_path, tiny_bus, ref_work, tmp_path / "cache-ref")
    _, err = ref.communicate(timeout=600)
    assert ref.returncode == 0, err
    expected = child_runs(f"sqlite:///{ref_work / 'mlflow.db'}", "interrupt")
    cols = [
        "tags.mlflow.runName",
        *sorted(c for c in after.columns if c.startswith("metrics.test_")),
        "metrics.best_epoch",
    ]
    pd_equal = after[cols].reset_index(drop=True).equals(expected[cols].reset_index(drop=True))
    assert pd_equal, (after[cols], expected[cols])
    client = mlflow.MlflowClient(tracking_uri=uri)
    ref_client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{ref_work / 'mlflow.db'}")
    for (_, a), (_, b) in zip(after.iterrows(), expected.iterrows(), strict=True):
        ha = sorted((m.step, m.value) for m in client.get_metric_history(a["run_id"], "train_loss"))
        hb = sorted(
            (m.step, m.value) for m in ref_client.get_metric_history(b["run_id"], "train_loss")
        )
        assert ha == hb, a["tags.mlflow.runName"]


@pytest.mark.slow
def test_an_interrupt_before_any_packed_job_finished_exits_130_in_one_line(setup, tiny_bus):
    """Two jobs packed (the demo's setting), stopped while the workers start their first jobs:
    the summary of what finished was analysed from fold runs without params (KeyError: 'model',
    exit 1; the in-process test of that state is in test_reliability)."""
    config_path, work, cache = setup
    packed = {**CONFIG, "executor": {"jobs_per_device": 2}, "report": {"enabled": True}}
    config_path.write_text(yaml.safe_dump(packed))
    uri = f"sqlite:///{work / 'mlflow.db'}"
    proc = start_run(config_path, tiny_bus, work, cache)
    _wait_for_runs(uri, proc, parents=2)  # the workers are starting their first jobs
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyError" not in err
    assert err.strip().splitlines()[-1] == "medbench: interrupted"
    runs = mlflow.MlflowClient(tracking_uri=uri).search_runs(
        [mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("interrupt").experiment_id]
    )
    kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) - len(kids) == 2  # the parents
    assert {r.info.status for r in kids} <= {"KILLED"}
    assert all(r.data.tags["medbench.failure"] == "interrupted by the user" for r in kids)


def _wait_for_runs(uri: str, proc, parents: int, timeout: float = 180) -> None:
    client = mlflow.MlflowClient(tracking_uri=uri)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"medbench run ended early: {proc.communicate()}")
        exp = client.get_experiment_by_name("interrupt")
        if exp is not None and len(client.search_runs([exp.experiment_id])) >= parents:
            return
        time.sleep(0.02)
    pytest.fail("no parent runs appeared")
