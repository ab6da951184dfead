"""One grid at a time per experiment: a lock held in the tracking store itself.

Two ``medbench run``s on the same experiment and store used to break each other (one deleted
the other's runs as stale; folds ended with two finished runs). The second now stops at once
with one line naming the holder. The lock is an MLflow experiment named ``{name}.lock``:
creating an experiment whose name exists fails in every store (a unique name), so acquiring
it is atomic across processes and machines, SQLite and tracking servers alike. The holder
renews a heartbeat tag every :data:`HEARTBEAT_S` seconds; a lock whose heartbeat is older than
:data:`EXPIRY_S`, or whose holder on this machine no longer exists, belongs to a process that
died (SIGKILL, power loss) and is taken over.

A lock is recognised by its tag (``schema.TAG_LOCK``, which no experiment of a user carries),
never by its name alone: a user's own experiment called ``study.lock`` is never taken, renamed or
deleted; running ``study`` beside it is refused with one line. A holder that was paused past the
expiry (Ctrl-Z, a suspended laptop) may find its lock taken over when it wakes: every heartbeat
first checks that the lock still carries its token, and when it does not the holder is told
(``on_lost``; by default a KeyboardInterrupt in the main thread, which stops the grid with its
jobs KILLED and their checkpoints kept) and :attr:`ExperimentLock.lost` says why.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from medbench.errors import TrackingError
from medbench.tracking import schema
from medbench.tracking.store import client

HEARTBEAT_S = 20.0
EXPIRY_S = 120.0
_TAG = schema.TAG_LOCK


#: The suffix of lock experiments' names: a grid's experiment may not end with it.
SUFFIX = ".lock"


def lock_name(experiment: str) -> str:
    return f"{experiment}{SUFFIX}"


def is_lock(exp) -> bool:
    """Whether an MLflow experiment is one of medbench's locks (by its tag, not its name)."""
    return _TAG in (getattr(exp, "tags", None) or {})


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
    """Hold ``experiment``'s lock in the store at ``uri`` while a grid runs (a context manager).

    ``on_lost`` is called (from the heartbeat thread) when another process took the lock over;
    by default it interrupts the main thread. :attr:`lost` then holds the one-line reason.
    """

    def __init__(
        self, uri: str, experiment: str, on_lost: Callable[[str], None] | None = None
    ) -> None:
        self.uri, self.experiment, self.name = uri, experiment, lock_name(experiment)
        self.client = client(uri)
        now = time.time()
        self.me = Holder(socket.gethostname(), os.getpid(), now, now, uuid.uuid4().hex)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._id: str | None = None
        self._on_lost = on_lost or (lambda reason: _thread.interrupt_main())
        self.lost: str | None = None

    def _tag(self) -> str:
        return json.dumps(self.me.__dict__)

    def _discard(self, exp_id: str) -> None:
        """Rename a lock out of the way, then delete it (MLflow keeps a deleted name taken)."""
        with contextlib.suppress(Exception):  # another process discarded it first
            self.client.rename_experiment(exp_id, f"{self.name}.released-{uuid.uuid4().hex[:12]}")
            self.client.delete_experiment(exp_id)

    def _refuse_clashes(self) -> None:
        """A lock is found by its tag: an experiment of the user's that has the lock's name, or
        a grid's experiment that is a lock, is refused and left as it is."""
        if self.experiment.endswith(SUFFIX):
            raise TrackingError(
                f"experiment {self.experiment!r}: names ending in {SUFFIX!r} are medbench's "
                "locks; choose another name"
            )
        clash = self.client.get_experiment_by_name(self.name)
        if clash is not None and not is_lock(clash):
            raise TrackingError(
                f"experiment {self.experiment!r} in {self.uri}: the store holds an experiment "
                f"of yours named {self.name!r}, which is the name of this experiment's lock; "
                "rename that experiment or choose another name (it was left as it is)"
            )

    def acquire(self) -> None:
        self._refuse_clashes()
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
                if not is_lock(existing):  # read again: a lock being taken over this instant
                    time.sleep(0.5)
                    self._refuse_clashes()  # a user's experiment made this instant: never ours
                    continue
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

    def check(self) -> str | None:
        """Why the lock is no longer ours (taken over while this process was paused, or
        deleted), or None while it is; a store that cannot be read says nothing (the grid
        reports a lost store itself)."""
        try:
            exp = self.client.get_experiment(self._id)
        except Exception:  # noqa: BLE001 - deleted for good, or the store is unreachable
            return None
        holder = _holder(exp)
        if exp.lifecycle_stage == "deleted" or holder is None or holder.token != self.me.token:
            with contextlib.suppress(Exception):  # who holds it now: the lock of that name
                current = self.client.get_experiment_by_name(self.name)
                holder = _holder(current) if current is not None else None
            if holder is not None and holder.token == self.me.token:
                holder = None
            taker = f" by {holder.describe(time.time())}" if holder is not None else ""
            return (
                f"experiment {self.experiment!r}: this run's lock was taken over{taker} while "
                f"it was paused for over {EXPIRY_S:.0f} s (Ctrl-Z, a suspended machine); it "
                "stopped so that two runs never write one experiment; rerun it once the other "
                "run has ended (finished jobs are kept, unfinished ones resume)"
            )
        return None

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            reason = self.check()
            if reason is not None:
                self.lost = reason
                self._id = None  # not ours: never released (deleted) by this process
                self._on_lost(reason)
                return
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
