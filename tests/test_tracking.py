import socket

import pandas as pd
import pytest

from medbench.errors import TrackingError
from medbench.tracking import Tracker, check_store, load_experiment, resolve_tracking_uri


def test_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri(None).startswith("sqlite:") and resolve_tracking_uri(None).endswith(
        "mlflow.db"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert resolve_tracking_uri(None) == "sqlite:///env.db"
    assert resolve_tracking_uri("sqlite:///cfg.db") == "sqlite:///cfg.db"


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


def test_write_and_read_back(mlflow_uri):
    uri = mlflow_uri
    check_store(uri)
    tr = Tracker(uri, "exp")
    pid = tr.start_parent("m/adam", {"model": "m", "optimizer": "adam"}, "h1", "fp1")
    cid = tr.start_child(
        pid,
        "m/adam/fold1",
        "m/adam/fold1/seed0",
        {"fold": 1, "seed": 0, "model": "m", "optimizer": "adam"},
        "h1",
        "fp1",
    )
    tr.log_metrics(cid, {"train_loss": 0.5, "val_auc": float("nan")}, step=0)
    tr.log_metrics(cid, {"train_loss": 0.25}, step=1)
    tr.log_metrics(cid, {"test_auc": 0.75})
    tr.log_table(
        cid,
        pd.DataFrame(
            {
                "id": ["a", "b"],
                "site": ["S", "S"],
                "fold": [1, 1],
                "label": [0, 1],
                "prob_malignant": [0.2, 0.9],
            }
        ),
        "predictions.csv",
    )
    tr.finish(cid)
    assert tr.logged_steps(cid) == {0, 1}
    assert [r.run_id for r in tr.find_child("m/adam/fold1/seed0", "h1", "fp1")] == [cid]
    assert tr.find_child("m/adam/fold1/seed0", "h2", "fp1") == []
    assert tr.find_parent("m/adam", "h1", "fp1").run_id == pid
    rec = load_experiment("exp", uri)
    assert list(rec.folds["run_id"]) == [cid] and list(rec.parents["run_id"]) == [pid]
    assert rec.folds.loc[0, "test_auc"] == pytest.approx(0.75)
    assert sorted(rec.curves.query("metric == 'train_loss'")["value"]) == [0.25, 0.5]
    assert rec.predictions["prob_malignant"].tolist() == [0.2, 0.9]
    with pytest.raises(TrackingError, match=r"no experiment named 'exq'.*did you mean 'exp'"):
        load_experiment("exq", uri)


def test_ui_serves_the_store_on_this_machine(monkeypatch, mlflow_uri):
    import medbench.tracking as tracking

    calls = []
    monkeypatch.setattr(tracking.subprocess, "call", lambda args: calls.append(args) or 0)
    assert tracking.serve_ui(tracking_uri=mlflow_uri) == 0
    args = calls[0]
    assert isinstance(args, list)  # an argument list: no shell string is built from user input
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--backend-store-uri") + 1] == mlflow_uri
