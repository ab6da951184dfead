"""``medbench ui``: MLflow's UI on the tracking store, opened on medbench's view of the runs.

MLflow's own server (``mlflow server``) serves it with one worker and without its job runner:
medbench uses neither MLflow's GenAI jobs nor parallel workers (MLflow's default four, with the
runner, held about 4 GB). The server runs in a process group of its own, so that Ctrl-C in the
terminal reaches medbench only (MLflow's workers print no tracebacks), and stopping ``medbench
ui`` (Ctrl-C, SIGTERM) ends every process of that group before it returns.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from medbench.errors import MedbenchError, MedbenchWarning, TrackingError
from medbench.invocation import medbench_words
from medbench.paths import held_interrupts
from medbench.tracking.schema import TAG_LOCK, VIEW_KEY
from medbench.tracking.store import check_store, client, resolve_tracking_uri
from medbench.tracking.writer import MEDBENCH_RUNS, Tracker

#: Seconds the server's processes get to end after SIGTERM before they are killed.
STOP_WAIT_S = 20.0
#: Addresses only this machine reaches; any other bind address is warned about.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: How many ports above a busy one are tried for a free one to suggest.
PORTS_TRIED = 100


def _url_host(host: str) -> str:
    """``host`` as written in an address: a wildcard bind address is reached as localhost."""
    if host in ("0.0.0.0", "::", ""):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def runs_url(experiment_id: str, host: str = "127.0.0.1", port: int = 5000) -> str:
    """An experiment's runs in the MLflow UI: in its "Model training" mode (``workflowType``;
    MLflow 3 may otherwise open the GenAI traces page) and medbench's saved view of them
    (``viewStateShareKey``: :mod:`medbench.tracking.view`)."""
    return (
        f"http://{_url_host(host)}:{port}/#/experiments/{experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
    )


# -- how to start it, as the user can type it ---------------------------------------------------


def ui_command(tracking_uri: str | None = None) -> str:
    """The command that starts the UI on ``tracking_uri`` from the working folder, written the
    way this process was started: ``medbench ui`` when that is the medbench on the PATH, else the
    script's path (``.venv/bin/medbench ui``: ``make demo`` does not put the venv on the PATH), or
    ``PYTHON -m medbench ui``. ``--tracking-uri`` is added when ``ui`` would find another store."""
    words = [*medbench_words(), "ui"]
    if tracking_uri and tracking_uri != resolve_tracking_uri(None):
        words += ["--tracking-uri", tracking_uri]
    return shlex.join(words)


def ui_hint(experiment_id: str, tracking_uri: str | None = None) -> str:
    """The closing line of ``run`` and ``demo``: how to start the UI, and the experiment's view."""
    return (
        f"compare the runs in the MLflow UI: {ui_command(tracking_uri)}, "
        f"then open {runs_url(experiment_id)}"
    )


# -- the port -------------------------------------------------------------------------------------


def _bind_error(host: str, port: int) -> OSError | None:
    """Why the server could not listen on ``host:port``, or None when it could."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as err:
        return err
    with socket.socket(family, kind, proto) as sock:
        # as uvicorn binds: a port a UI just stopped left in TIME_WAIT is free, a listener is not
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as err:
            return err
    return None


def _free_port(host: str, busy: int) -> int:
    """A port above ``busy`` that ``host`` can listen on (the system's choice if none near)."""
    for port in range(busy + 1, min(busy + PORTS_TRIED, 65536)):
        if _bind_error(host, port) is None:
            return port
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def check_port(host: str, port: int) -> None:
    """Fail with one line, before anything is printed or started, when the server could not
    listen on ``host:port``; a port in use names a free one to try."""
    err = _bind_error(host, port)
    if err is None:
        return
    if isinstance(err, socket.gaierror):
        raise MedbenchError(f"--host {host}: not an address of this machine ({err.strerror})")
    if err.errno == errno.EADDRINUSE:
        raise MedbenchError(
            f"port {port} on {host} is in use (another MLflow UI?); "
            f"try --port {_free_port(host, port)}"
        )
    if err.errno == errno.EACCES:
        raise MedbenchError(
            f"port {port} needs administrator rights; try --port {_free_port(host, 4999)}"
        )
    raise MedbenchError(f"cannot serve on {host}:{port} ({err.strerror or err})")


# -- the server's process group -----------------------------------------------------------------


def _start_server(uri: str, host: str, port: int) -> subprocess.Popen:
    """``mlflow server`` on the store, leader of a new session (its own process group)."""
    args = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(int(port)),
        "--workers",
        "1",
        # its own start and stop are said by medbench; a line per request of the page is noise
        "--uvicorn-opts",
        "--no-access-log --log-level warning",
    ]
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job runner
        "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore"),  # MLflow's own deprecations
    }
    return subprocess.Popen(args, env=env, start_new_session=True)  # noqa: S603 - no shell


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # every process of it already ended
        os.killpg(group, signum)


def group_alive(group: int) -> bool:
    """Whether a process of process group ``group`` still runs (a zombie, ended but not yet
    reaped by its parent, does not)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the system (a zombie counts there)
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:  # "pid (command) state ppid pgrp ...": the command may hold spaces and ')'
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended while being read
            continue
        if len(fields) > 2 and int(fields[2]) == group and fields[0] not in ("Z", "X"):
            return True
    return False


def _stop(server: subprocess.Popen) -> None:
    """End the server's process group: SIGTERM, SIGKILL after :data:`STOP_WAIT_S` (or at once
    when Ctrl-C is pressed again); return when no process of it is left."""
    group = server.pid
    _signal_group(group, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    killed = False
    while True:
        try:
            server.poll()  # reaps the leader: our own zombie would count as running elsewhere
            if not group_alive(group):
                return
            if not killed and time.monotonic() >= deadline:
                _signal_group(group, signal.SIGKILL)
                killed = True
            time.sleep(0.1)
        except KeyboardInterrupt:
            _signal_group(group, signal.SIGKILL)
            killed = True


def _wait_until_ready(server: subprocess.Popen, base: str) -> bool:
    """Wait until the server answers ``/health`` (True) or ends (False); no time limit, since a
    loaded machine may take a minute to import MLflow, and Ctrl-C stops the wait."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # this machine's own
    while server.poll() is None:
        try:
            with opener.open(f"{base}/health", timeout=5) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


# -- medbench ui ---------------------------------------------------------------------------------


def list_experiments(uri: str) -> list:
    """The experiments worth opening (not medbench's locks, not MLflow's empty Default), medbench's
    given its view and their runs their optimizer's colour where an older medbench left none."""
    mlflow_client = client(uri)
    found = [
        e
        for e in mlflow_client.search_experiments(max_results=200)
        if TAG_LOCK not in (e.tags or {})
        and (e.name != "Default" or mlflow_client.search_runs([e.experiment_id], max_results=1))
    ]
    for e in found:
        if mlflow_client.search_runs([e.experiment_id], MEDBENCH_RUNS, max_results=1):
            try:  # its tags are brought up to date on opening: a nicety, never a reason to stop
                Tracker(uri, e.name).colour_runs()
            except TrackingError as err:  # a store this user may read but not write
                warnings.warn(
                    f"experiment {e.name!r}: run colours and the saved view were not updated "
                    f"({err})",
                    MedbenchWarning,
                    stacklevel=2,
                )
    return found


def serve_ui(host: str = "127.0.0.1", port: int = 5000, tracking_uri: str | None = None) -> int:
    """Serve the MLflow UI on the store until Ctrl-C or SIGTERM (then 0), bound to this machine
    unless ``host`` says otherwise; print each experiment's address once the server answers.
    1 when the server ends by itself (its own messages say why)."""
    check_port(host, port)
    uri = resolve_tracking_uri(tracking_uri)
    check_store(uri, create=False)
    experiments = list_experiments(uri)
    if host not in LOCAL_HOSTS:
        print(
            f"medbench: warning: the MLflow UI will be reachable from other machines on {host}:{port}",
            file=sys.stderr,
        )
    base = f"http://{_url_host(host)}:{port}"
    server = None
    try:
        with held_interrupts():  # a Ctrl-C while it starts is handled below, with the server
            server = _start_server(uri, host, port)
        print(f"MLflow UI on {base} (store {uri}), starting; Ctrl-C stops it", flush=True)
        if _wait_until_ready(server, base):
            for e in experiments:
                print(f"  {e.name}: {runs_url(e.experiment_id, host, port)}", flush=True)
        code = server.wait()
    except KeyboardInterrupt:
        if server is not None:
            _stop(server)
        print("medbench: MLflow UI stopped", file=sys.stderr)
        return 0
    _stop(server)  # the leader ended: what it started goes too
    print(
        f"medbench: error: the MLflow UI server ended by itself (exit code {code}); "
        "its messages are above",
        file=sys.stderr,
    )
    return 1
