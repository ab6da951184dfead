"""One grid at a time per experiment: a lock held in the tracking store itself.

Two ``medbench run``s on the same experiment and store used to break each other (one deleted
the other's runs as stale; folds ended with two finished runs). The second now stops at once
with one line naming the holder. The lock is an MLflow experiment named ``{name}.lock``:
creating an experiment whose name exists fails in every store (a unique name), so acquiring
it is atomic across processes and machines, SQLite and tracking servers alike. The holder
renews a heartbeat tag every :data:`HEARTBEAT_S` seconds; a lock whose heartbeat is older than
:data:`EXPIRY_S`, or whose holder on this machine no longer exists, belongs to a process that
died (SIGKILL, power loss) and is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from medbench.errors import TrackingError
from medbench.tracking import schema
from medbench.tracking.store import client

HEARTBEAT_S = 20.0
EXPIRY_S = 120.0
_TAG = schema.TAG_LOCK


def lock_name(experiment: str) -> str:
    return f"{experiment}.lock"


@dataclass
class Holder:
    """Who holds a lock, and when it last said so."""

    host: str
    pid: int
    started: float
    heartbeat: float
    token: str

    def describe(self, now: float) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return (
            f"pid {self.pid} on {self.host}, running since {since}, "
            f"last heard {now - self.heartbeat:.0f} s ago"
        )


def _gone(holder: Holder) -> bool:
    """The holder runs on this machine and its process no longer exists (SIGKILL, a crash):
    its lock is taken over at once instead of after :data:`EXPIRY_S`."""
    if holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, as another user's process
        return False
    return False


def _holder(exp) -> Holder | None:
    try:
        return Holder(**json.loads(exp.tags[_TAG]))
    except (KeyError, TypeError, ValueError):
        return None


class ExperimentLock:
    """Hold ``experiment``'s lock in the store at ``uri`` while a grid runs (a context manager)."""

    def __init__(self, uri: str, experiment: str) -> None:
        self.uri, self.experiment, self.name = uri, experiment, lock_name(experiment)
        self.client = client(uri)
        now = time.time()
        self.me = Holder(socket.gethostname(), os.getpid(), now, now, uuid.uuid4().hex)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._id: str | None = None

    def _tag(self) -> str:
        return json.dumps(self.me.__dict__)

    def _discard(self, exp_id: str) -> None:
        """Rename a lock out of the way, then delete it (MLflow keeps a deleted name taken)."""
        with contextlib.suppress(Exception):  # another process discarded it first
            self.client.rename_experiment(exp_id, f"{self.name}.released-{uuid.uuid4().hex[:12]}")
            self.client.delete_experiment(exp_id)

    def acquire(self) -> None:
        for _ in range(3):
            try:
                note = (
                    f"medbench's lock while a grid runs on experiment {self.experiment!r}; "
                    "it goes away when the run ends"
                )
                tags = {_TAG: self._tag(), "mlflow.note.content": note}
                self._id = self.client.create_experiment(self.name, tags=tags)
                break
            except Exception:  # noqa: BLE001 - the name exists: somebody holds the lock
                existing = self.client.get_experiment_by_name(self.name)
                if existing is None:
                    continue  # released in between: try again
                holder, now = _holder(existing), time.time()
                if (
                    existing.lifecycle_stage != "deleted"
                    and holder is not None
                    and now - holder.heartbeat < EXPIRY_S
                    and not _gone(holder)
                ):
                    raise TrackingError(
                        f"experiment {self.experiment!r} in {self.uri} is being run by "
                        f"{holder.describe(now)}; wait for it to end, or stop it (its lock "
                        f"expires {EXPIRY_S:.0f} s after its last heartbeat)"
                    ) from None
                self._discard(existing.experiment_id)  # a dead holder's lock: take it over
        else:
            raise TrackingError(f"experiment {self.experiment!r}: could not take its lock")
        self._thread = threading.Thread(target=self._beat, name="medbench-lock", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.me.heartbeat = time.time()
            with contextlib.suppress(Exception):  # the grid itself reports a lost store
                self.client.set_experiment_tag(self._id, _TAG, self._tag())

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._id is not None:
            self._discard(self._id)
            self._id = None

    def __enter__(self) -> ExperimentLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
