"""Where medbench keeps what it can rebuild: the preprocessing cache and generated datasets."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root: ``$MEDBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/medbench``, else ``~/.cache/medbench``."""
    env = os.environ.get("MEDBENCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "medbench"


def project_root() -> Path:
    """The source checkout (holds ``data_cards/`` and ``reports/``)."""
    return Path(__file__).resolve().parents[1]
