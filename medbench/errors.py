"""User-facing errors.

A :class:`MedbenchError` is a mistake in the user's input (data, config, store): the CLI prints its
one-line message and exits non-zero without a traceback. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import difflib


class MedbenchError(Exception):
    """A problem with the user's input, reported as one line that names the file, row or key."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class DataError(MedbenchError):
    """The dataset folder, sheet or an image cannot be used."""


class ConfigError(MedbenchError):
    """The configuration has an unknown key, a bad value or an unknown name."""


class TrackingError(MedbenchError):
    """The MLflow tracking store cannot be reached or used."""


class StorageError(MedbenchError):
    """A folder or file medbench writes (cache, checkpoint, report) cannot be written."""


def closest(name: str, known: list[str] | tuple[str, ...]) -> str:
    """Return ' (did you mean X?)' for the closest known name, or '' when none is close."""
    match = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


class MedbenchWarning(UserWarning):
    """Something the user should know about their input that does not stop the run."""
