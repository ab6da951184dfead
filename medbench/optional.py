"""Optional and heavy packages, declared at the top of a module and imported on first use.

In the style of Optuna's ``try_import``: a module writes ``ray = lazy_import("ray", extra="ray")``
with its other imports, so every dependency stays visible at the top, while the package is only
imported when an attribute is first read. That keeps ``medbench list`` and ``--help`` fast
(mlflow, optuna and ray take seconds to import) and turns a missing optional package into one
line that says what to install, instead of an ``ImportError`` traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import types
from typing import Any

from medbench.errors import MedbenchError


class MissingDependency(MedbenchError):
    """An optional package the requested feature needs is not installed."""


class LazyModule(types.ModuleType):
    """A module imported on first attribute access (see :func:`lazy_import`)."""

    def __init__(self, name: str, extra: str | None = None) -> None:
        super().__init__(name)
        self._lazy_extra = extra
        self._lazy_module: types.ModuleType | None = None

    def _load(self) -> types.ModuleType:
        if self._lazy_module is None:
            self._lazy_module = require(self.__name__, self._lazy_extra)
        return self._lazy_module

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_lazy_"):
            raise AttributeError(attr)
        return getattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())

    def __repr__(self) -> str:
        state = "loaded" if self._lazy_module is not None else "not loaded yet"
        return f"<lazy module {self.__name__!r} ({state})>"


def require(name: str, extra: str | None = None) -> types.ModuleType:
    """Import ``name`` now.

    Raises
    ------
    MissingDependency
        ``name`` (or a package it needs) is not installed; the message names the pip extra of
        medbench that installs it, when there is one.
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        hint = (
            f"pip install 'medbench[{extra}]'" if extra else f"pip install {name.partition('.')[0]}"
        )
        raise MissingDependency(f"{name} is not installed ({err}); install it with {hint}") from err


def lazy_import(name: str, extra: str | None = None) -> Any:
    """A stand-in for ``import name`` that imports the package on first use.

    Parameters
    ----------
    name : str
        Dotted module name, e.g. ``"optuna"`` or ``"mlflow.entities"``.
    extra : str, optional
        The pip extra of medbench that installs it (``"ray"``, ``"bench"``), for the message of
        :class:`MissingDependency`.
    """
    return LazyModule(name, extra)


def is_available(name: str) -> bool:
    """Whether ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
