"""Which MLflow tracking store to use, and whether it can be used.

The default is MLflow's own (a SQLite file ``mlflow.db`` in the working folder); the
``MLFLOW_TRACKING_URI`` variable and the config key ``tracking.uri`` (which wins) override it.
A store that cannot be used fails here, with one line, before any data or training work.
"""

from __future__ import annotations

import logging
import os
import posixpath
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote
from urllib.request import pathname2url

from medbench.errors import TrackingError
from medbench.optional import lazy_import

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock
    fcntl = None

#: Imported on first use: ``medbench --help`` and ``list`` do not wait for it.
mlflow = lazy_import("mlflow")

#: MLflow's default SQLite store, and the old file store that it prefers when it holds runs.
MLFLOW_DEFAULT_DB = "mlflow.db"
MLFLOW_FILE_STORE = "mlruns"

#: An MLflow server that does not answer is not retried for minutes: fail fast instead.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
#: MLflow's INFO lines (creating database tables, ...) are not news to a medbench user.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def resolve_tracking_uri(configured: str | None = None) -> str:
    """Config key, else ``MLFLOW_TRACKING_URI``, else MLflow's own default (``./mlflow.db``)."""
    if configured:
        return configured
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    if "mlflow" not in sys.modules and not os.path.isdir(MLFLOW_FILE_STORE):
        # MLflow's default, as mlflow.get_tracking_uri() writes it, without waiting seconds for
        # its import: `report` and `ui` in the wrong folder fail at once (tests/tracking)
        return "sqlite:///" + posixpath.abspath(pathname2url(os.path.abspath(MLFLOW_DEFAULT_DB)))
    return mlflow.get_tracking_uri()


def is_local_uri(uri: str) -> bool:
    """True for stores only this machine can reach: SQLite files and plain folders."""
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def client(uri: str):
    """An ``MlflowClient`` on ``uri``: runs are addressed by id, no global active run."""
    # the variable set above only works when mlflow is first imported after this module
    level = os.environ.get("MLFLOW_LOGGING_LEVEL", "WARNING").upper()
    logging.getLogger("mlflow").setLevel(getattr(logging, level, logging.WARNING))
    # it logs every failed SQL statement with a traceback; medbench says it in one line (the
    # TrackingError of medbench.tracking.writer), and --debug shows the whole chain
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    return mlflow.MlflowClient(tracking_uri=uri)


def sqlite_path(uri: str) -> Path:
    """The database file of a ``sqlite:`` URI, as SQLAlchemy opens it (percent-decoded).

    Raises TrackingError for an in-memory store and for a ``?`` in the path, which SQLAlchemy
    would read as the start of options and so write the database somewhere else.
    """
    rest = uri.split(":///", 1)[1] if ":///" in uri else ""
    path, sep, options = rest.partition("?")
    if not path or path == ":memory:":
        raise TrackingError(f"tracking store {uri}: an in-memory SQLite store cannot hold results")
    if sep:
        raise TrackingError(
            f"tracking store {uri}: '?' starts SQLite options, so the database would be written "
            f"to {unquote(path)!r}; rename the file, or write '?' as %3F"
        )
    return Path(unquote(path)).expanduser()


#: Seconds medbench keeps trying to open a store that another client is creating or migrating.
INIT_WAIT_S = 60.0


def _open(uri: str, wait: float = INIT_WAIT_S) -> None:
    """Open the store once, which creates or upgrades its tables (MLflow does it on first use).

    Another MLflow client (``mlflow ui``, a notebook, a dashboard) opening a new store at the
    same moment makes both run the same migrations: one of them fails half-way (an alembic
    ``CommandError``, a SQLAlchemy "table already exists", an ``AttributeError`` from a table
    the other is changing). Nothing of ours was written, so the call is retried until the other
    is done; if it still fails after ``wait`` seconds, one line says so.
    """
    deadline, pause = time.monotonic() + wait, 0.1
    leftover_since: float | None = None
    while True:
        try:
            client(uri).search_experiments(max_results=1)
            return
        except Exception as err:  # noqa: BLE001 - alembic, SQLAlchemy, MLflow: all retried
            if uri.startswith("sqlite:") and BATCH_PREFIX in str(err):  # a migration half-way
                leftover_since = leftover_since or time.monotonic()
                if time.monotonic() - leftover_since >= LEFTOVER_GRACE_S:
                    _finish_batch_leftovers(sqlite_path(uri))
                    leftover_since = None
            if time.monotonic() >= deadline:
                first = (str(err).strip().splitlines() or [""])[0][:200]
                raise TrackingError(
                    f"tracking store {uri} could not be opened for {wait:.0f} s "
                    f"({type(err).__name__}: {first}); is another program changing it?"
                ) from err
            time.sleep(pause)
            pause = min(2 * pause, 2.0)


#: The prefix of the copy alembic makes of a SQLite table it changes (its batch mode: create the
#: copy, fill it, drop the table, rename the copy).
BATCH_PREFIX = "_alembic_tmp_"
#: Seconds a copy must stay in the way before it counts as left behind by a client that died or
#: gave up half-way, rather than one migrating right now.
LEFTOVER_GRACE_S = 3.0


def _finish_batch_leftovers(path: Path) -> None:
    """Clear what a migration stopped half-way left in a SQLite store, which no client could open
    again ("table _alembic_tmp_experiments already exists" on every try): a copy beside its table
    is an unfinished copy and is dropped (the table holds the data); a copy whose table is gone
    was filled and takes its name. The migration then runs again from where the store is."""
    with sqlite3.connect(path, timeout=5.0) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for copy in sorted(n for n in names if n.startswith(BATCH_PREFIX)):
            table = copy[len(BATCH_PREFIX) :]
            if table in names:
                db.execute(f'DROP TABLE "{copy}"')
            else:
                db.execute(f'ALTER TABLE "{copy}" RENAME TO "{table}"')


def _create_tables(uri: str, folder: Path) -> None:
    """Create or open a SQLite store under a lock on its folder, so that medbench's own
    processes starting on one new store take turns; other clients are waited for by
    :func:`_open`."""
    if fcntl is None:  # pragma: no cover - Windows: no flock; the retries of _open apply
        _open(uri)
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _open(uri)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


#: How to point a command at another store, for the messages of a store that is not there.
POINT_AT_STORE = (
    "run the command in the folder that holds mlflow.db, or name the store with --tracking-uri "
    "(e.g. --tracking-uri sqlite:////path/to/mlflow.db) or MLFLOW_TRACKING_URI"
)


def check_store(uri: str, timeout: float = 10.0, create: bool = True) -> None:
    """Fail with one line, before any work, when the store cannot be used.

    With ``create=False`` (``report``, ``ui``, ``compare``: commands that read) a SQLite store
    must exist already: a missing file is one line saying where it was looked for and how to
    point at another store, and nothing is created.
    """
    if uri.startswith("sqlite:"):
        db = sqlite_path(uri)
        if not create and (not db.is_file() or db.stat().st_size == 0):
            raise TrackingError(f"no tracking store at {db} ({uri}); {POINT_AT_STORE}")
        folder = db.resolve().parent
        if not folder.is_dir():
            raise TrackingError(f"tracking store {uri}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise TrackingError(f"tracking store {uri}: folder {folder} is not writable")
        if db.exists() and not db.is_file():
            raise TrackingError(f"tracking store {uri}: {db} is not a file")
        _create_tables(uri, folder)  # a new store, or one another client may be migrating
        return
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (http only)
                if resp.status != 200:
                    raise TrackingError(
                        f"tracking store {uri}: /health answered HTTP {resp.status}"
                    )
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingError(f"tracking store {uri} is unreachable ({reason})") from None
        return
    if uri.startswith("file:") or "://" not in uri:
        folder = Path(unquote(uri.removeprefix("file://").removeprefix("file:"))).expanduser()
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
            raise TrackingError(
                f"tracking store {uri}: a plain folder is MLflow's old file store, which MLflow 3 "
                f"no longer opens; use a SQLite file, e.g. sqlite:///{folder / 'mlflow.db'} "
                "(or set MLFLOW_ALLOW_FILE_STORE=true to keep the file store)"
            )
        parent = folder if folder.exists() else folder.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise TrackingError(
                f"tracking store {uri}: folder {parent} does not exist or is not writable"
            )
        return
    # other schemes (databricks, postgresql via server...) are checked by a real call
    try:
        client(uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - any failure here means unusable
        raise TrackingError(
            f"tracking store {uri} cannot be used ({type(err).__name__}: {err})"
        ) from None
