"""Where medbench keeps what it can rebuild (preprocessing cache, generated datasets,
checkpoints), and how it writes there without leaving half-written files."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar

from medbench.errors import StorageError

T = TypeVar("T")


def cache_dir() -> Path:
    """The cache root: ``$MEDBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/medbench``, else ``~/.cache/medbench``."""
    env = os.environ.get("MEDBENCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "medbench"


def storage_error(path: Path, err: OSError, what: str = "cannot write") -> StorageError:
    """One line naming the place and the cause ('no space left on device', 'read-only ...')."""
    reason = (err.strerror or str(err)).lower() if isinstance(err, OSError) else str(err)
    hint = ""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "; free some space, or point MEDBENCH_CACHE_DIR at a larger disk"
    elif isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "; set MEDBENCH_CACHE_DIR to a writable folder"
    return StorageError(f"{path}: {what} ({reason}){hint}")


def ensure_folder(path: Path) -> Path:
    """``path`` as a writable folder (made if missing), or a StorageError naming it."""
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                inside = "" if folder == path else f" (so {path} cannot be made)"
                raise StorageError(f"{folder}: exists and is not a folder{inside}")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise storage_error(path, err, "cannot create the folder") from err
    if not os.access(path, os.W_OK):
        raise storage_error(path, PermissionError(errno.EACCES, "not writable"), "cannot write")
    return path


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through a temp file in its folder and a rename: a crash leaves the old file
    or the new one, never half of one. A full or read-only disk is a StorageError naming it."""
    ensure_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError as err:
        raise storage_error(path, err) from err
    try:
        with held_interrupts(), os.fdopen(fd, "wb") as f:
            write(f)
            f.close()
            os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        cause = _os_error(err)
        if cause is not None:  # torch.save wraps the OSError of a full disk in a RuntimeError
            raise storage_error(path, cause) from err
        raise


@contextmanager
def held_interrupts() -> Iterator[None]:
    """Ctrl-C or SIGTERM arriving inside the block takes effect when it ends.

    A KeyboardInterrupt raised in the middle of ``torch.save`` leaves its zip writer broken and
    turns into a RuntimeError: the job would end FAILED instead of KILLED; raised inside an
    MLflow write, it can leave that SQLite connection holding the store's lock, so that the
    run's own KILLED status then waits for it and fails ("database is locked"). Held here, it is
    raised (by the handler that was in place) right after the block. A second one is raised at
    once: a user who insists is not kept waiting by a write that hangs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)

    def hold(signum: int, frame) -> None:
        if caught:
            raise KeyboardInterrupt
        caught.append(signum)

    # a signal this process ignores (a packed worker's Ctrl-C: the grid decides) stays ignored
    previous = {
        sig: signal.signal(sig, hold) for sig in held if signal.getsignal(sig) != signal.SIG_IGN
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), caught[0])


def _os_error(err: BaseException | None) -> OSError | None:
    """The OSError in an exception's chain (itself, its cause or its context), if any."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError):
            return err
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def atomic_folder(
    root: Path, fill: Callable[[Path], T], last: str | None = None, stage: str = "tmp"
) -> T:
    """Fill the folder ``root`` through a temporary sibling (``.ROOT.STAGE-*``) and a rename: a
    crash leaves no half folder. An existing ``root`` keeps its inode (e.g. the working folder):
    the entries move in one by one, replacing earlier ones of the same name, the entry ``last``
    (a completion marker) after the others. Returns ``fill(tmp)``."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.{stage}-", dir=root.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the folder should not be
    try:
        result = fill(tmp)
        if root.exists():
            for child in sorted(tmp.iterdir(), key=lambda p: p.name == last):
                os.replace(child, root / child.name)
            tmp.rmdir()
        else:
            os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
