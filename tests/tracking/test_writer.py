import json
import sqlite3
import threading

import pandas as pd
import pytest

from medbench.errors import TrackingError
from medbench.tracking import Tracker, load_experiment, writer
from medbench.tracking import schema as s
from medbench.tracking.colours import OPTIMIZER_COLOURS
from medbench.tracking.schema import EXPERIMENT_KIND, TAG_EXPERIMENT_KIND, TAG_RUN_COLOUR, TAG_VIEW
from medbench.tracking.view import RUNS_VIEW


def _predictions():
    return pd.DataFrame(
        {
            "id": ["a", "b"],
            "site": ["S", "S"],
            "fold": [1, 1],
            "label": [0, 1],
            "prob_malignant": [0.2, 0.9],
            "birads_reader1": ["3", ""],
            "birads_reader2": ["4a", "5"],
        }
    )


def _child(tr):
    pid = tr.start_parent("m", "adam", {"model": "m", "optimizer": "adam"}, "h1", "fp1")
    params = {"fold": 1, "seed": 0, "model": "m", "optimizer": "adam"}
    return pid, tr.start_child(pid, "m", "adam", 1, 0, params, "h1", "fp1")


def test_write_and_read_back(mlflow_uri):
    tr = Tracker(mlflow_uri, "exp")
    pid, cid = _child(tr)
    tr.log_epoch(cid, 0, {"train_loss": 0.5, "val_auc": float("nan")})
    tr.log_epoch(cid, 1, {"train_loss": 0.25})
    tr.log_fold_result(
        cid,
        test={"auc": 0.75, "accuracy": 0.5},
        sites={"S": {"auc": 0.75, "accuracy": 0.5}},
        predictions=_predictions(),
        test_loss=0.6,
        best_epoch=1,
        train_time_s=2.0,
    )
    tr.finish(cid)
    assert tr.logged_epochs(cid) == {0, 1}
    assert [r.run_id for r in tr.find_child("m/adam/fold1/seed0", "h1", "fp1")] == [cid]
    assert tr.find_child("m/adam/fold1/seed0", "h2", "fp1") == []
    assert tr.find_parent("m", "adam", "h1", "fp1").run_id == pid
    rec = load_experiment("exp", mlflow_uri)
    assert list(rec.folds["run_id"]) == [cid] and list(rec.parents["run_id"]) == [pid]
    row = rec.folds.iloc[0]
    assert row["test_auc"] == pytest.approx(0.75) and row["test_auc_site_S"] == pytest.approx(0.75)
    assert row["best_epoch"] == 1 and row["run_name"] == "m/adam/fold1"
    assert sorted(rec.curves.query("metric == 'train_loss'")["value"]) == [0.25, 0.5]
    assert rec.predictions["prob_malignant"].tolist() == [0.2, 0.9]
    assert rec.predictions["birads_reader1"].tolist() == ["3", ""]  # empty stays empty text
    with pytest.raises(TrackingError, match=r"no experiment named 'exq'.*did you mean 'exp'"):
        load_experiment("exq", mlflow_uri)


def test_names_outside_the_schema_are_refused_before_writing(mlflow_uri):
    tr = Tracker(mlflow_uri, "exp")
    with pytest.raises(ValueError, match="parent params not in the MLflow schema: colour"):
        tr.start_parent("m", "adam", {"colour": "red"}, "h1", "fp1")
    pid, cid = _child(tr)
    with pytest.raises(ValueError, match="epoch metrics not in the MLflow schema: val_aucc"):
        tr.log_epoch(cid, 0, {"val_aucc": 0.5})
    with pytest.raises(ValueError, match="test metrics not in the MLflow schema: test_aucc"):
        tr.log_fold_result(
            cid,
            test={"aucc": 0.5},
            sites={},
            predictions=_predictions(),
            test_loss=0.1,
            best_epoch=0,
            train_time_s=1.0,
        )
    with pytest.raises(ValueError, match="predictions.csv columns"):
        tr.log_fold_result(
            cid,
            test={"auc": 0.5},
            sites={},
            predictions=_predictions().drop(columns="prob_malignant"),
            test_loss=0.1,
            best_epoch=0,
            train_time_s=1.0,
        )
    assert tr.client.get_run(cid).data.metrics == {}


def test_external_results_are_written_and_read_back(mlflow_uri):

    tr = Tracker(mlflow_uri, "exp")
    _, cid = _child(tr)
    tr.log_fold_result(
        cid,
        test={"auc": 0.75},
        sites={},
        predictions=_predictions(),
        test_loss=0.6,
        best_epoch=1,
        train_time_s=2.0,
    )
    external = _predictions().assign(id=["x1", "x2"], site=["GE", "GE"])
    tr.log_external(cid, "busbra", {"auc": 1.0, "accuracy": 0.5, "loss": 0.4}, external)
    with pytest.raises(ValueError, match="external metrics not in the MLflow schema: auroc"):
        tr.log_external(cid, "busbra", {"auroc": 1.0}, external)
    with pytest.raises(
        ValueError, match=r"predictions_external_busi.csv columns: missing \['label'\]"
    ):
        tr.log_external(cid, "busi", {"auc": 1.0}, external.drop(columns=["label"]))
    tr.finish(cid)
    rec = load_experiment("exp", mlflow_uri)
    row = rec.folds.iloc[0]
    assert row["external_busbra_auc"] == 1.0 and row["external_busbra_loss"] == pytest.approx(0.4)
    assert rec.predictions["id"].tolist() == ["a", "b"]  # external predictions kept apart
    assert rec.external["id"].tolist() == ["x1", "x2"]
    assert set(rec.external["dataset"]) == {"busbra"} and set(rec.external["run_id"]) == {cid}
    assert s.external_dataset(s.external_predictions_file("site-b_2")) == "site-b_2"
    assert s.external_dataset(s.PREDICTIONS_FILE) is None


@pytest.mark.subprocess
def test_a_store_locked_by_another_writer_is_waited_for(mlflow_uri):
    """Packed jobs and the grid write to one SQLite file: an epoch logged while another
    connection holds the lock is written once it is released (MLflow's driver waits up to 20 s;
    past that, the retry below takes over)."""

    tr = Tracker(mlflow_uri, "exp")
    _, cid = _child(tr)
    other = sqlite3.connect(mlflow_uri.removeprefix("sqlite:///"), check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    released = threading.Event()

    def release():
        released.set()  # before the commit: the write cannot end before the event is set
        other.commit()

    threading.Timer(6.5, release).start()
    tr.log_epoch(cid, 0, {"train_loss": 0.5})
    assert released.is_set()  # it waited for the lock rather than failing or skipping
    other.close()
    history = tr.client.get_metric_history(cid, "train_loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5)]


def test_a_lock_that_never_ends_is_one_line(monkeypatch):

    calls = []

    class Locked:
        def log_batch(self, *args, **kwargs):
            calls.append(1)
            raise RuntimeError("(sqlite3.OperationalError) database is locked\n[SQL: INSERT ...]")

        def get_run(self, run_id):
            raise RuntimeError("(sqlite3.OperationalError) no such table: runs")

    monkeypatch.setattr(writer, "LOCKED_WAIT_S", 0.3)
    guarded = writer._Guarded(Locked(), "sqlite:///x.db")
    with pytest.raises(TrackingError) as err:
        guarded.log_batch("r", metrics=[])
    assert str(err.value) == (
        "tracking store sqlite:///x.db: log_batch failed "
        "(RuntimeError: (sqlite3.OperationalError) database is locked)"
    )
    assert len(calls) > 2  # retried until the wait ran out
    with pytest.raises(TrackingError, match="no such table"):  # other errors: at once
        guarded.get_run("r")


def test_a_trial_run_killed_before_its_params_is_read_as_unfinished(mlflow_uri):
    """Issue 25 #2: a SIGKILL between creating a trial run and logging its params left a run
    without its ``trial`` param, and the rerun crashed in ``trials()``."""

    tr = Tracker(mlflow_uri, "exp")
    _, cid = _child(tr)
    done = tr.start_trial(cid, "m", "sam", 1, 0, 0, {"lr": 1e-3, "rho": 0.05}, "h1", "fp1")
    tr.finish(done)
    # what a kill leaves: the run, its key tag, no params (an older version: no params tag)
    key = s.trial_key("m", "sam", 1, 0, 1)
    tags = {s.TAG_TRIAL: key, s.TAG_PARENT_RUN_ID: cid}
    bare = tr.client.create_run(tr.experiment_id, run_name="m/sam/fold1/trial1", tags=tags)
    # this version writes the params with the run: a kill right after creation
    half = tr.client.create_run(
        tr.experiment_id,
        run_name="m/sam/fold1/trial2",
        tags={
            s.TAG_TRIAL: s.trial_key("m", "sam", 1, 0, 2),
            s.TAG_TRIAL_PARAMS: '{"trial": 2, "lr": 0.01, "rho": 0.1}',
            s.TAG_PARENT_RUN_ID: cid,
        },
    )
    trials = tr.trials(cid)
    assert trials["trial"].tolist() == [0, 1, 2]
    assert trials["status"].tolist() == ["FINISHED", "RUNNING", "RUNNING"]
    assert trials["run_id"].tolist() == [done, bare.info.run_id, half.info.run_id]
    assert trials["lr"].tolist()[0] == pytest.approx(1e-3) and pd.isna(trials["lr"][1])
    assert trials.loc[2, ["lr", "rho"]].tolist() == pytest.approx([0.01, 0.1])
    # a finished run without params (made by hand, say) is not counted as a trial either
    tr.finish(bare.info.run_id)
    assert tr.trials(cid)["status"].tolist()[1] == "RUNNING"


def test_a_resumed_run_that_finishes_keeps_no_failure_tag(mlflow_uri):
    """Issue 25 #13: a run KILLED (reason tagged), resumed and FINISHED kept the old reason."""

    tr = Tracker(mlflow_uri, "exp")
    _, cid = _child(tr)
    tr.set_tags(cid, {s.TAG_TRACEBACK: "Traceback ..."})
    tr.finish(cid, "KILLED", "interrupted by the user")
    assert tr.client.get_run(cid).data.tags[s.TAG_FAILURE] == "interrupted by the user"
    tr.set_status(cid, "RUNNING")  # resumed
    tr.finish(cid)
    run = tr.client.get_run(cid)
    assert run.info.status == "FINISHED"
    assert s.TAG_FAILURE not in run.data.tags and s.TAG_TRACEBACK not in run.data.tags


def test_runs_get_their_optimizers_colour_and_the_experiment_medbenchs_view(mlflow_uri):
    tr = Tracker(mlflow_uri, "exp")
    pid, cid = _child(tr)
    tid = tr.start_trial(cid, "m", "adam", 1, 0, 0, {"lr": 0.01}, "h1", "fp1")
    other = tr.start_parent("m", "mystery", {"model": "m", "optimizer": "mystery"}, "h1", "fp1")
    colours = {r: tr.client.get_run(r).data.tags.get(TAG_RUN_COLOUR) for r in (pid, cid, tid)}
    assert set(colours.values()) == {OPTIMIZER_COLOURS["adam"]}
    assert TAG_RUN_COLOUR not in tr.client.get_run(other).data.tags  # MLflow's choice
    tags = tr.client.get_experiment(tr.experiment_id).tags
    assert tags[TAG_EXPERIMENT_KIND] == EXPERIMENT_KIND
    assert json.loads(json.loads(tags[TAG_VIEW])["state"]) == RUNS_VIEW


def test_an_older_medbenchs_runs_are_coloured_once_and_a_users_colour_stays(mlflow_uri):
    tr = Tracker(mlflow_uri, "exp")
    pid, cid = _child(tr)
    mine = tr.client.create_run(tr.experiment_id, run_name="mine").info.run_id
    tr.log_params(mine, {"optimizer": "sam"})  # not medbench's run: left alone
    tr.client.delete_tag(pid, TAG_RUN_COLOUR)  # as an older medbench wrote it
    tr.client.set_tag(cid, TAG_RUN_COLOUR, "#123456")  # as a user chose in the UI
    assert tr.colour_runs() == 1
    assert tr.client.get_run(pid).data.tags[TAG_RUN_COLOUR] == OPTIMIZER_COLOURS["adam"]
    assert tr.client.get_run(cid).data.tags[TAG_RUN_COLOUR] == "#123456"
    assert TAG_RUN_COLOUR not in tr.client.get_run(mine).data.tags
    assert tr.colour_runs() == 0


def test_an_older_experiment_gets_the_view_when_opened_and_a_users_view_stays(mlflow_uri):
    tr = Tracker(mlflow_uri, "exp")
    tr.client.delete_experiment_tag(tr.experiment_id, TAG_VIEW)
    tr.client.delete_experiment_tag(tr.experiment_id, TAG_EXPERIMENT_KIND)
    tags = tr.client.get_experiment(Tracker(mlflow_uri, "exp").experiment_id).tags
    assert TAG_VIEW in tags and tags[TAG_EXPERIMENT_KIND] == EXPERIMENT_KIND
    saved_over = json.dumps({"name": "mine", "createdAt": 1, "updatedAt": 2, "state": "{}"})
    tr.client.set_experiment_tag(tr.experiment_id, TAG_VIEW, saved_over)
    Tracker(mlflow_uri, "exp")
    assert tr.client.get_experiment(tr.experiment_id).tags[TAG_VIEW] == saved_over
