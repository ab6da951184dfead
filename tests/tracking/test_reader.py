import pytest

from medbench.errors import TrackingError
from medbench.tracking import Tracker, load_experiment


def _other_tool(tracker: Tracker) -> None:
    """Runs another tool logged into the same experiment: no medbench tags at all."""
    run = tracker.client.create_run(tracker.experiment_id, run_name="other-tool")
    tracker.client.log_param(run.info.run_id, "alpha", "2")
    child = tracker.client.create_run(
        tracker.experiment_id, tags={"mlflow.parentRunId": run.info.run_id}
    )
    tracker.client.log_metric(child.info.run_id, "loss", 0.1)


def test_runs_of_other_tools_are_left_out_and_counted(mlflow_uri):
    tr = Tracker(mlflow_uri, "mixed")
    pid = tr.start_parent("m", "adam", {"model": "m", "optimizer": "adam"}, "h", "f")
    params = {"fold": 1, "seed": 0, "model": "m", "optimizer": "adam"}
    cid = tr.start_child(pid, "m", "adam", 1, 0, params, "h", "f")
    tr.finish(cid)
    _other_tool(tr)  # started last: it must not be taken for the latest medbench config
    rec = load_experiment("mixed", mlflow_uri)
    assert list(rec.folds["run_id"]) == [cid] and list(rec.parents["run_id"]) == [pid]
    assert rec.ignored_runs == 2


def test_an_experiment_of_another_tool_only_is_one_line(mlflow_uri):
    _other_tool(Tracker(mlflow_uri, "theirs"))
    with pytest.raises(TrackingError, match=r"holds no medbench runs \(2 runs of other tools\)"):
        load_experiment("theirs", mlflow_uri)


def test_fold_runs_get_an_integer_repeat_one_without_the_param(mlflow_uri):
    """Runs of a grid without repeats (and of stores older than repeats) have no ``repeat``
    param: the reader gives them repeat 1; a repeated grid's runs carry theirs."""
    tr = Tracker(mlflow_uri, "repeats")
    pid = tr.start_parent("m", "adam", {"model": "m", "optimizer": "adam"}, "h", "f")
    ids = {}
    for repeat, fold in ((None, 0), (None, 1), (2, 0), (3, 1)):
        params = {"fold": fold, "seed": 0, "model": "m", "optimizer": "adam"}
        if repeat is not None:
            params["repeat"] = repeat
        cid = tr.start_child(pid, "m", "adam", fold, 0, params, "h", "f", repeat=repeat or 1)
        tr.finish(cid)
        ids[cid] = repeat or 1
    run = tr.client.get_run(cid)
    assert (
        run.data.tags["medbench.repeat"] == "3"
        and run.data.tags["mlflow.runName"] == "m/adam/r3/fold1"
    )
    assert run.data.tags["medbench.job"] == "m/adam/r3/fold1/seed0"
    rec = load_experiment("repeats", mlflow_uri)
    assert rec.folds["repeat"].dtype.kind == "i"
    assert dict(zip(rec.folds["run_id"], rec.folds["repeat"], strict=True)) == ids
    assert rec.folds[["repeat", "fold"]].values.tolist() == [[1, 0], [1, 1], [2, 0], [3, 1]]
    assert "medbench.repeat" not in rec.tags  # run-specific: not one of the common tags
    assert sorted(tr.child_metrics(pid)["repeat"]) == [1, 1, 2, 3]
