import socket

import pytest

from medbench.errors import TrackingError
from medbench.tracking import check_store, resolve_tracking_uri


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


def test_ui_serves_the_store_on_this_machine(monkeypatch, mlflow_uri):
    import medbench.tracking.store as store

    calls = []
    monkeypatch.setattr(store.subprocess, "call", lambda args: calls.append(args) or 0)
    assert store.serve_ui(tracking_uri=mlflow_uri) == 0
    args = calls[0]
    assert isinstance(args, list)  # an argument list: no shell string is built from user input
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--backend-store-uri") + 1] == mlflow_uri
