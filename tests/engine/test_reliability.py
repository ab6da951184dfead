"""Reliability: divergence, single-class folds, bad input at the command line, unreachable stores."""

import math
import os
import shutil
import socket
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from medbench.cli import main
from medbench.errors import DataError, TrackingError
from medbench.pipeline import run_benchmark
from tests.engine.conftest import TINY, child_runs


def _runs(uri, name="tiny"):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[name])


def test_divergence_fails_the_job_and_the_grid_goes_on(tiny_config, monkeypatch):
    import medbench.engine.train as train
    from medbench.optim import SAM

    real = train.train_epoch

    def adam_diverges(net, model, optimizer, loader, epoch, *args, **kwargs):
        stats = real(net, model, optimizer, loader, epoch, *args, **kwargs)
        if epoch == 1 and not isinstance(optimizer, SAM):
            stats.loss = math.nan
        return stats

    monkeypatch.setattr(train, "train_epoch", adam_diverges)
    config = tiny_config("report.enabled=true", "report.out=rep")
    result = run_benchmark(config, progress=False)
    runs = _runs(config.tracking.uri)
    kids = runs[runs["tags.mlflow.parentRunId"].notna()]
    adam = kids[kids["params.optimizer"] == "adam"]
    assert set(adam["status"]) == {"FAILED"}
    assert (
        adam["tags.medbench.failure"]
        .str.contains("diverged: training loss became nan in epoch 1")
        .all()
    )
    assert set(kids[kids["params.optimizer"] == "gcsam"]["status"]) == {"FINISHED"}
    parents = runs[runs["tags.mlflow.parentRunId"].isna()].set_index("tags.mlflow.runName")
    assert parents.loc["smallcnn/adam", "status"] == "FAILED"
    assert parents.loc["smallcnn/gcsam", "status"] == "FINISHED"
    # the report shows the failure instead of averaging over it
    text = (result.report_dir / "report.md").read_text()
    assert "diverged" in text and "0/3" in text
    # a rerun retries the failed jobs (and they fail again, deterministically), never the finished ones
    again = run_benchmark(config, progress=False, report=False)
    statuses = {(o.job.optimizer, o.status) for o in again.outcomes}
    assert statuses == {("adam", "FAILED"), ("gcsam", "SKIPPED")}
    assert len(_runs(config.tracking.uri)) == len(runs)


def test_fold_with_a_single_class_is_undefined_not_a_crash(tiny_bus, tmp_path, mlflow_uri):
    from medbench.config import load_config

    root = tmp_path / "bus"
    shutil.copytree(tiny_bus, root)
    sheet = root / "BIRADS&FOLD.xlsx"
    df = pd.read_excel(sheet, sheet_name="prediction")
    benign_in_1 = (df["fold"] == 1) & df["ID"].str.startswith("benign")
    df.loc[benign_in_1, "fold"] = 2
    df.to_excel(sheet, sheet_name="prediction", index=False)
    config = load_config(
        "demo",
        [
            *TINY,
            "optimizers=[adam]",
            "data.folds=sheet",
            f"tracking.uri={mlflow_uri}",
            "name=oneclass",
            "train.epochs=1",
        ],
        data_root=str(root),
    )
    with pytest.warns(UserWarning, match="fold 1: the test part has only malignant"):
        run_benchmark(config, report=False, progress=False)
    kids = _runs(mlflow_uri, "oneclass").query("`tags.mlflow.parentRunId`.notna()", engine="python")
    assert set(kids["status"]) == {"FINISHED"} and len(kids) == 5
    fold1 = kids[kids["params.fold"] == "1"].iloc[0]
    assert pd.isna(fold1["metrics.test_auc"]) and not pd.isna(fold1["metrics.test_accuracy"])
    assert kids[kids["params.fold"] != "1"]["metrics.test_auc"].notna().all()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line_error(capsys, code):
    err = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()
    assert code == 2
    lines = [line for line in err if line.startswith("medbench: error:")]
    assert len(lines) == 1 and not any("Traceback" in line for line in err)
    return lines[0]


def test_missing_dataset_folder_at_the_command_line(capsys, tmp_path):
    code = main(
        ["run", "demo", "--data-root", str(tmp_path / "nope"), "--set", "report.enabled=false"]
    )
    assert str(tmp_path / "nope") in _one_line_error(capsys, code)


def test_unreachable_store_fails_before_any_data_or_training(capsys, tmp_path):
    uri = f"http://127.0.0.1:{_free_port()}"
    code = main(
        ["run", "demo", "--data-root", str(tmp_path / "nope"), "--set", f"tracking.uri={uri}"]
    )
    line = _one_line_error(capsys, code)
    assert "unreachable" in line and uri in line  # the store is checked before the (missing) data


def test_corrupt_image_names_the_file(capsys, tiny_bus, tmp_path, mlflow_uri):
    root = tmp_path / "bus"
    shutil.copytree(tiny_bus, root)
    victim = sorted((root / "GDPH").glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    code = main(
        [
            "run",
            "demo",
            "--data-root",
            str(root),
            *sum((["--set", s] for s in [*TINY, f"tracking.uri={mlflow_uri}"]), []),
        ]
    )
    assert victim.name in _one_line_error(capsys, code)


def test_bad_config_key_at_the_command_line(capsys):
    code = main(["run", "demo", "--set", "train.epoch=3"])
    assert "train.epoch: unknown key (did you mean 'epochs'?)" in _one_line_error(capsys, code)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(DataError):
        main(["--debug", "run", "demo", "--data-root", str(tmp_path / "nope")])
    with pytest.raises(TrackingError):
        main(["--debug", "report", "x", "--tracking-uri", "sqlite:////no/such/dir/m.db"])


def test_ui_binds_to_this_machine_by_default():
    from medbench.cli import build_parser

    assert build_parser().parse_args(["ui"]).host == "127.0.0.1"


def test_run_exits_non_zero_and_says_how_many_jobs_failed(
    tiny_bus, mlflow_uri, monkeypatch, capsys
):
    import medbench.engine.train as train

    real = train.train_epoch

    def diverges(*args, **kwargs):
        stats = real(*args, **kwargs)
        stats.loss = math.nan
        return stats

    monkeypatch.setattr(train, "train_epoch", diverges)
    sets = [*TINY, f"tracking.uri={mlflow_uri}", "name=tiny"]
    argv = ["run", "demo", "--data-root", str(tiny_bus), "--no-report"]
    code = main(argv + [arg for item in sets for arg in ("--set", item)])
    assert code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(
        "medbench: error: 6 of 6 jobs failed (first: smallcnn/adam/fold1: diverged"
    )


@pytest.mark.subprocess
def test_processes_starting_on_one_new_store_do_not_race(tmp_path):
    """MLflow creates a new SQLite store's tables on first use; four processes at once used to
    collide, and one died with a traceback."""
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'new.db'}"
    code = (
        "from medbench.tracking import Tracker, check_store;"
        f"check_store({uri!r}); Tracker({uri!r}, 'shared').client.search_runs(['1'])"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors


def test_a_store_deleted_mid_run_is_one_line(tiny_bus, tmp_path, monkeypatch, capsys):
    from pathlib import Path

    import medbench.engine.worker as worker

    db = tmp_path / "gone.db"
    real = worker.run_job

    def run_then_delete(spec, bar=None):
        outcome = real(spec, bar)
        Path(db).unlink(missing_ok=True)
        return outcome

    monkeypatch.setattr(worker, "run_job", run_then_delete)
    sets = [*TINY, f"tracking.uri=sqlite:///{db}", "name=tiny"]
    argv = ["run", "demo", "--data-root", str(tiny_bus), "--no-report"]
    code = main(argv + [arg for item in sets for arg in ("--set", item)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err[-1].startswith(f"medbench: error: tracking store sqlite:///{db}: ")
    assert "Traceback" not in "\n".join(err)
    assert "interrupted by the user" not in "\n".join(err)  # the user interrupted nothing


@pytest.mark.parametrize(
    ("fraction", "says"),
    [
        ("0.01", "fold 1: data.val_fraction 0.01 leaves no validation images (40 training, 0 "),
        ("0.99", "fold 1: data.val_fraction 0.99 leaves no training images (0 training, 40 "),
    ],
)
def test_an_empty_split_stops_the_grid_at_its_start(tiny_bus, mlflow_uri, capsys, fraction, says):
    """val_fraction 0.01 on 60 images gave 0 validation images and tested every fold's first
    epoch; 0.99 ended in a scikit-learn traceback. Now one line before any run is made."""
    sets = [*TINY, f"tracking.uri={mlflow_uri}", "name=tiny", f"data.val_fraction={fraction}"]
    argv = ["run", "demo", "--data-root", str(tiny_bus), "--no-report"]
    code = main(argv + [arg for item in sets for arg in ("--set", item)])
    assert says in _one_line_error(capsys, code)
    assert _runs(mlflow_uri).empty  # no parent, no fold run


def test_an_interrupt_while_the_first_fold_run_is_created_leaves_nothing_to_analyse(
    tiny_config, monkeypatch
):
    """Ctrl-C or SIGTERM between a fold run's creation and its params (packed workers starting
    their first jobs): the summary analysed a record whose only fold run had no model
    (KeyError: 'model', exit 1); now the interrupt goes through (exit 130, one line)."""
    from medbench.tracking import Tracker

    real = Tracker.log_params

    def interrupted(self, run_id, params):
        if "fold" in params:  # a fold run, created a moment ago without its params
            raise KeyboardInterrupt
        return real(self, run_id, params)

    monkeypatch.setattr(Tracker, "log_params", interrupted)
    config = tiny_config("report.enabled=true", "report.out=rep")
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config, progress=False)
    kids = _runs(config.tracking.uri).query("`tags.mlflow.parentRunId`.notna()", engine="python")
    assert list(kids["status"]) == ["KILLED"] and kids["params.model"].isna().all()


def test_a_checkpoint_that_does_not_fit_the_model_is_discarded_and_the_job_restarts(
    tiny_config, monkeypatch
):
    """A checkpoint with a tensor of the wrong shape failed its job on every rerun until the
    cache was deleted; now it is deleted with a warning and the job starts afresh."""
    import torch

    import medbench.engine.train as train

    real, calls = train.train_epoch, {"n": 0}

    def interrupt_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "train_epoch", interrupt_second_epoch)
    config = tiny_config("optimizers=[adam]")
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config, report=False, progress=False)
    [path] = list((Path(os.environ["MEDBENCH_CACHE_DIR"]) / "checkpoints" / "tiny").rglob("*.pt"))
    saved = torch.load(path, weights_only=True)
    name = next(iter(saved["model"]))
    for key in ("model", "best_model"):
        saved[key][name] = torch.zeros(3, 1, 1)  # another shape: an older model, another writer
    torch.save(saved, path)

    monkeypatch.setattr(train, "train_epoch", real)
    with pytest.warns(UserWarning, match=r"smallcnn/adam/fold1: its checkpoint .* does not fit"):
        result = run_benchmark(config, report=False, progress=False)
    assert {o.status for o in result.outcomes} == {"FINISHED"}
    assert not path.exists()
    kids = _runs(config.tracking.uri).query("`tags.mlflow.parentRunId`.notna()", engine="python")
    assert list(kids["status"]) == ["FINISHED"] * 3  # the interrupted run replaced, none twice
    # the rerun again: nothing left to do
    assert {o.status for o in run_benchmark(config, report=False, progress=False).outcomes} == {
        "SKIPPED"
    }


POLLER = """
import os, sys, time
from mlflow import MlflowClient
db, uri, stop = sys.argv[1:4]
while not os.path.exists(db):  # medbench is creating the store: start initialising it too
    time.sleep(0.001)
while not os.path.exists(stop):
    try:
        MlflowClient(tracking_uri=uri).search_experiments()
    except Exception:
        pass
    time.sleep(0.01)
"""


@pytest.mark.slow
def test_a_run_on_a_new_store_that_another_client_initialises_at_once_finishes(tmp_path, tiny_bus):
    """Other MLflow clients (a UI, a notebook, a dashboard) polling a new SQLite store from the
    moment `medbench run` creates it: they run MLflow's migrations at the same time, and the run
    ended with an alembic traceback (AttributeError: dimension_attributes), exit 1, 2 of 2
    tries. Which process the race hits varies; tracking/test_store.py forces it on medbench."""
    import subprocess
    import sys

    import yaml

    from tests.engine.conftest import start_run

    work = tmp_path / "work"
    work.mkdir()
    db, stop = work / "mlflow.db", tmp_path / "stop"
    config = {
        "name": "shared",
        "models": ["smallcnn"],
        "optimizers": ["adam"],
        "data": {"folds": "stratified", "n_folds": 2, "image_size": 16},
        "train": {"epochs": 1, "batch_size": 16, "threads": 1},
        "flatness": {"enabled": False},
        "report": {"enabled": False},
    }
    path = tmp_path / "shared.yaml"
    path.write_text(yaml.safe_dump(config))
    pollers = [  # three: on this machine they hit MLflow's migration race among themselves
        subprocess.Popen(
            [sys.executable, "-c", POLLER, str(db), f"sqlite:///{db}", str(stop)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        proc = start_run(path, tiny_bus, work, tmp_path / "cache")
        out, err = proc.communicate(timeout=600)
    finally:
        stop.touch()
        for poller in pollers:
            poller.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert set(child_runs(f"sqlite:///{db}", "shared")["status"]) == {"FINISHED"}


def test_after_a_store_error_the_other_packed_job_is_labelled_by_that_cause(
    tiny_config, monkeypatch
):
    """A lost store in one packed work stops the grid; the work running beside it was stopped
    with SIGTERM and labelled "interrupted by the user" (issue 25 #12, #13): the user did
    nothing. It is now stopped with its own signal and labelled by the grid's error."""
    from medbench.engine.interrupts import STOPPED
    from medbench.tracking import Tracker

    def lost(self, *args, **kwargs):  # in this process: the study's follow-up after a trial
        import time

        client = mlflow.MlflowClient(tracking_uri=self.uri)
        deadline = time.time() + 120
        while time.time() < deadline:  # the other study's trial has started: the store goes
            running = "tags.`medbench.trial` != '' and attributes.status = 'RUNNING'"
            if client.search_runs([self.experiment_id], running):
                break
            time.sleep(0.05)
        raise TrackingError(f"tracking store {self.uri}: log_batch failed (the store is gone)")

    monkeypatch.setattr(Tracker, "log_tuning", lost)
    config = tiny_config(
        "tune.enabled=true",
        "tune.trials=1",
        "tune.epochs=100",
        "train.epochs=100",
        "train.threads=1",
        "data.n_folds=2",
        "executor.jobs_per_device=2",
    )
    with pytest.raises(TrackingError, match="the store is gone"):
        run_benchmark(config, report=False, progress=False)
    runs = _runs(config.tracking.uri)
    trials = runs[runs["tags.medbench.trial"].notna()]
    labels = trials["tags.medbench.failure"].dropna()
    assert not labels.str.contains("interrupted by the user").any()
    stopped = trials[trials["status"] == "KILLED"]
    assert len(stopped) == 1  # the trial running beside the one whose study hit the error
    assert stopped["tags.medbench.failure"].iloc[0] == STOPPED
