"""How this process was started, so that every command medbench prints works as printed.

``make demo`` installs medbench into ``.venv`` without putting it on the PATH: a hint that says
``medbench ui`` would fail there, ``.venv/bin/medbench ui`` works. The closing hints of ``run``,
the examples of ``--help`` and the advice of ``data check`` take their first words from here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


def as_typed(path: str) -> str:
    """``path`` as a command: relative to the working folder when inside it (``.venv/bin/medbench``
    after ``make demo``), else absolute."""
    full = os.path.abspath(path)
    try:
        rel = os.path.relpath(full)
    except ValueError:  # another drive (Windows)
        return full
    if rel.split(os.sep, 1)[0] == os.pardir:
        return full
    return rel if os.sep in rel else os.path.join(os.curdir, rel)


def medbench_words() -> list[str]:
    """The words that start medbench the way this process was started: ``medbench`` when that is
    the medbench on the PATH, else the script's path (``.venv/bin/medbench``), or
    ``PYTHON -m medbench`` (``python -m medbench``, or a library call)."""
    script = sys.argv[0] if sys.argv else ""
    if Path(script).stem == "medbench" and os.path.isfile(script):
        on_path = shutil.which(Path(script).name)
        same = on_path is not None and os.path.samefile(on_path, script)
        return [Path(script).name if same else as_typed(script)]
    return [as_typed(sys.executable), "-m", "medbench"]


def medbench_command(*words: str) -> str:
    """A medbench command line as the user can type it, e.g. ``medbench_command("ui")``."""
    return shlex.join([*medbench_words(), *words])
