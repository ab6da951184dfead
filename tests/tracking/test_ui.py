import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medbench.cli import main
from medbench.errors import MedbenchError, MedbenchWarning, TrackingError
from medbench.tracking import Tracker, ui
from medbench.tracking.lock import ExperimentLock
from medbench.tracking.schema import VIEW_KEY


def _listening(host="127.0.0.1"):
    """A socket that holds a port as a running server does."""
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen()
    return sock


def _bindable(port, host="127.0.0.1"):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# -- addresses and hints -------------------------------------------------------------------------


def test_the_address_opens_the_runs_in_model_training_mode_and_medbenchs_view():
    assert ui.runs_url("7", port=5123) == (
        "http://127.0.0.1:5123/#/experiments/7/runs"
        f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
    )
    assert ui.runs_url("7", host="0.0.0.0").startswith("http://localhost:5000/#/")
    assert ui.runs_url("7", host="::1").startswith("http://[::1]:5000/#/")


def test_experiments_listed_leave_out_locks_and_the_empty_default(mlflow_uri):
    Tracker(mlflow_uri, "exp")
    with ExperimentLock(mlflow_uri, "exp"):
        names = [e.name for e in ui.list_experiments(mlflow_uri)]
    assert names == ["exp"]


def test_listing_gives_an_older_medbenchs_runs_their_colours(mlflow_uri):
    tracker = Tracker(mlflow_uri, "exp")
    pid = tracker.start_parent("m", "sam", {"model": "m", "optimizer": "sam"}, "h", "fp")
    tracker.client.delete_tag(pid, "mlflow.runColor")
    ui.list_experiments(mlflow_uri)
    assert tracker.client.get_run(pid).data.tags["mlflow.runColor"] == "#E69F00"


def test_the_hint_names_the_command_as_it_was_started(tmp_path, monkeypatch):
    """After ``make demo`` the venv is not on the PATH: the hint says ``.venv/bin/medbench``."""
    script = tmp_path / ".venv" / "bin" / "medbench"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "argv", [".venv/bin/medbench", "demo"])
    assert ui.ui_command() == ".venv/bin/medbench ui"
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])  # as the shell passes it
    assert ui.ui_command() == ".venv/bin/medbench ui"
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")  # an activated venv
    assert ui.ui_command() == "medbench ui"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert ui.ui_command() == f"{script} ui"
    monkeypatch.setattr(sys, "argv", [str(Path(ui.__file__).parents[1] / "__main__.py"), "run"])
    assert ui.ui_command() == f"{sys.executable} -m medbench ui"
    other = f"sqlite:///{tmp_path / 'other store.db'}"
    assert ui.ui_command(other) == f"{sys.executable} -m medbench ui --tracking-uri '{other}'"
    assert ui.ui_command(f"sqlite:///{elsewhere / 'mlflow.db'}").endswith("medbench ui")
    hint = ui.ui_hint("3", other)
    assert hint.startswith(f"compare the runs in the MLflow UI: {sys.executable} -m medbench ui")
    assert hint.endswith(f"then open {ui.runs_url('3')}")


@pytest.mark.parametrize("port", ["70000", "0", "http"])
def test_ui_refuses_a_port_that_is_not_one(port, capsys):

    with pytest.raises(SystemExit) as exit_:
        main(["ui", "--port", port])
    assert exit_.value.code == 2
    assert "is not a TCP port (1-65535)" in capsys.readouterr().err


# -- the port and the server's command ------------------------------------------------------------


def test_a_busy_port_is_one_line_naming_a_free_one():
    with _listening() as busy:
        port = busy.getsockname()[1]
        with pytest.raises(MedbenchError, match=rf"port {port} on 127.0.0.1 is in use") as err:
            ui.check_port("127.0.0.1", port)
        suggested = int(str(err.value).rsplit("--port ", 1)[1])
        assert suggested != port and _bindable(suggested)
    ui.check_port("127.0.0.1", port)  # free again
    with pytest.raises(MedbenchError, match=r"--host no-such-host\.invalid: not an address"):
        ui.check_port("no-such-host.invalid", 5000)


def test_the_server_has_one_worker_no_job_runner_and_its_own_process_group(monkeypatch):
    seen = {}

    def popen(args, env, start_new_session):
        seen.update(args=args, env=env, session=start_new_session)

    monkeypatch.setattr(ui.subprocess, "Popen", popen)
    ui._start_server("sqlite:///x.db", "127.0.0.1", 5123)
    args = seen["args"]
    assert args[1:4] == ["-m", "mlflow", "server"]  # an argument list: no shell
    assert args[args.index("--workers") + 1] == "1"
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--backend-store-uri") + 1] == "sqlite:///x.db"
    assert seen["env"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert seen["session"] is True


# -- medbench ui as a user runs it ----------------------------------------------------------------


def _ui(tmp_path, mlflow_uri, port):
    """``medbench ui`` in its own process group, its output in files (read while it runs)."""
    Tracker(mlflow_uri, "exp")
    with open(tmp_path / "ui.out", "w") as out, open(tmp_path / "ui.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "medbench", "ui", "--port", str(port)]
            + ["--tracking-uri", mlflow_uri],
            cwd=tmp_path,
            stdout=out,
            stderr=err,
            start_new_session=True,
            # Ctrl-C heard even where this shell ignores it (a background job)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def _output(tmp_path):
    return (tmp_path / "ui.out").read_text(), (tmp_path / "ui.err").read_text()


def _wait_for(tmp_path, proc, text, timeout=300):
    """Wait until stdout holds ``text`` (a loaded machine takes a while to import MLflow)."""
    deadline = time.monotonic() + timeout
    while text not in _output(tmp_path)[0]:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"medbench ui never printed {text!r}: {_output(tmp_path)}")
        time.sleep(0.2)


def _server_group(proc):
    """The process group of the MLflow server ``medbench ui`` started (its child's pid)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True)
    children = [int(p) for p in out.stdout.split()]
    assert len(children) == 1, children
    return children[0]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_medbench_ui_on_a_busy_port_exits_2_with_one_line(tmp_path, mlflow_uri):
    with _listening() as busy:
        port = busy.getsockname()[1]
        proc = _ui(tmp_path, mlflow_uri, port)
        assert proc.wait(timeout=300) == 2
    out, err = _output(tmp_path)
    assert out == ""  # nothing printed, nothing started
    assert len(err.splitlines()) == 1 and f"port {port} on 127.0.0.1 is in use" in err, err


@pytest.mark.slow
def test_sigterm_stops_every_process_of_it_and_frees_the_port(tmp_path, mlflow_uri):
    port = _free_port()
    proc = _ui(tmp_path, mlflow_uri, port)
    _wait_for(tmp_path, proc, "exp: http")
    group = _server_group(proc)
    assert ui.group_alive(group)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=180) == 0
    out, err = _output(tmp_path)
    assert "Traceback" not in err and err.splitlines()[-1] == "medbench: MLflow UI stopped", err
    assert not ui.group_alive(group)  # the server, its uvicorn: all gone when it returned
    assert _bindable(port)


@pytest.mark.slow
def test_ctrl_c_right_after_start_stops_it_without_a_traceback(tmp_path, mlflow_uri):
    port = _free_port()
    proc = _ui(tmp_path, mlflow_uri, port)
    _wait_for(tmp_path, proc, "MLflow UI on")  # the server is starting: MLflow is importing
    group = _server_group(proc)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    assert proc.wait(timeout=180) == 0
    out, err = _output(tmp_path)
    assert "Traceback" not in err + out and "KeyboardInterrupt" not in err, err
    assert err.splitlines()[-1] == "medbench: MLflow UI stopped", err
    assert not ui.group_alive(group)
    assert _bindable(port)


@pytest.mark.slow
def test_a_server_that_dies_makes_it_exit_non_zero(tmp_path, mlflow_uri):
    port = _free_port()
    proc = _ui(tmp_path, mlflow_uri, port)
    _wait_for(tmp_path, proc, "exp: http")
    os.killpg(_server_group(proc), signal.SIGKILL)
    assert proc.wait(timeout=180) == 1
    err = _output(tmp_path)[1]
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("medbench: error: the MLflow UI server ended by itself")


def test_a_store_the_user_cannot_write_still_lists_its_experiments(monkeypatch, mlflow_uri):
    """Bringing run colours and the saved view up to date is a nicety: a read-only store
    gets a warning, not a stopped `medbench ui`."""

    tracker = Tracker(mlflow_uri, "exp")
    tracker.start_parent("m", "adam", {"model": "m", "optimizer": "adam"}, "h", "fp")

    def refuse(self):
        raise TrackingError("attempt to write a readonly database")

    monkeypatch.setattr(ui.Tracker, "colour_runs", refuse)
    with pytest.warns(MedbenchWarning, match="run colours and the saved view were not updated"):
        found = ui.list_experiments(mlflow_uri)
    assert [e.name for e in found] == ["exp"]
