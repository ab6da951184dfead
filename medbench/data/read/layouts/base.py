"""What a layout module provides, and what its reader returns.

A layout module (one per way a dataset lies on disk) has:

- ``NAME``: the name ``read_manifest(layout=...)`` takes and ``df.attrs["layout"]`` records;
- ``DESCRIPTION``: what it reads, for the message when no layout fits a folder;
- ``CARD``: the name of the data card of the dataset it reads (None for generic layouts);
- ``detect(root, sheet) -> bool``: whether ``root`` looks like this layout. It is cheap, and it
  answers False for a folder that is not its own (it raises only when the folder cannot be
  listed);
- ``read(root, sheet, options) -> Found``: one record per usable image and every problem on
  the way. Problems that leave nothing to read raise a one-line DataError.

Nothing here assumes a label sheet or one file per image: a layout may read a csv of its own,
class subfolders, or a single array file. ``sheet`` is the user's choice of sheet (or of the
file to read); layouts without one ignore it. ``options`` (:class:`ReadOptions`) holds the
choices some datasets offer; a layout ignores those it has no use for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ReadOptions:
    """Choices a dataset may offer beyond its sheet (config keys ``data.*``)."""

    #: Normal (lesion-free) images, as BUSI has, are left out of the benign/malignant task
    #: unless this folds them into benign.
    include_normal: bool = False


@dataclass
class Found:
    """What a layout read: the manifest's records, where they came from, and the problems."""

    #: One dict per usable image, keyed by manifest column; a missing key is a missing value.
    records: list[dict[str, object]]
    #: Where the records were read from, as messages name it (a sheet, a folder, a file).
    source: str
    #: (severity, message) pairs, "error" or "warning", in the order they are reported.
    problems: list[tuple[str, str]] = field(default_factory=list)
    sheet_file: Path | None = None
    sheet_name: str | None = None
    #: For layouts with a sheet: the sheet row of each record, and the label its file name
    #: gives (the audit compares it with a label column).
    sheet_rows: list[int] = field(default_factory=list)
    name_labels: list[int | None] = field(default_factory=list)
    #: Files or rows that are not images of the task, and why, with their count: the audit
    #: prints them ({"normal images (data.include_normal: false)": 133, "masks": 798}).
    left_out: dict[str, int] = field(default_factory=dict)


class Layout(Protocol):
    """The interface of a layout module (modules satisfy it by their module-level names)."""

    NAME: str
    DESCRIPTION: str
    CARD: str | None

    def detect(self, root: Path, sheet: str | None = None) -> bool: ...

    def read(
        self, root: Path, sheet: str | None = None, options: ReadOptions | None = None
    ) -> Found: ...
