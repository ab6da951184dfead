"""Where medbench keeps what it can rebuild (preprocessing cache, generated datasets,
checkpoints), and how it writes there without leaving half-written files."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

T = TypeVar("T")


def cache_dir() -> Path:
    """The cache root: ``$MEDBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/medbench``, else ``~/.cache/medbench``."""
    env = os.environ.get("MEDBENCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "medbench"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through a temp file in its folder and a rename: a crash leaves the old file
    or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_folder(root: Path, fill: Callable[[Path], T], last: str | None = None) -> T:
    """Fill the folder ``root`` through a temporary sibling and a rename: a crash leaves no half
    folder. ``root`` is new or empty (an empty one keeps its inode, e.g. the working folder, and
    the entry ``last``, a completion marker, moves in after the others); returns ``fill(tmp)``."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
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
