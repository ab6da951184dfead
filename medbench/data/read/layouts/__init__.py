"""Dataset layouts: one module per way a BUS dataset lies on disk, shared by the manifest reader
and the synthetic generator.

- ``busbra``: BUS-BRA (``bus_data.csv``, fold files, ``Images/``), patients and one reader;
- ``busi``: BUSI (``Dataset_BUSI_with_GT/{benign,malignant,normal}/`` with masks beside);
- ``breastmnist``: MedMNIST's BreastMNIST (one ``.npz`` with its official split);
- ``gdph_sysucc``: the GDPH&SYSUCC release (site folders, ``BIRADS&FOLD.xlsx``);
- ``flat``: your own data, a folder of images and a sheet of file names (with optional label,
  fold, site, patient and reader columns).

A layout module owns its detection and its reading (see ``base`` for the interface);
``listed`` holds the reading of layouts whose sheet lists image files. Adding a dataset is one
new module, one entry in ``LAYOUTS`` and, for a named dataset, its data card.
"""

from __future__ import annotations

from pathlib import Path

from medbench.data.read.layouts import breastmnist, busbra, busi, flat, gdph_sysucc
from medbench.data.read.layouts.base import Layout
from medbench.errors import DataError, closest

#: Every layout medbench reads, in the order ``detect`` tries them: those with files of their
#: own first (a BUS-BRA fold file would pass for a sheet with an ID column), the loosest last.
LAYOUTS: dict[str, Layout] = {
    layout.NAME: layout for layout in (busbra, busi, breastmnist, gdph_sysucc, flat)
}


def list_layouts() -> list[str]:
    """The names of the layouts medbench reads, in detection order."""
    return list(LAYOUTS)


def get_layout(name: str) -> Layout:
    """The layout module called ``name`` (for a ``layout`` argument or config key).

    Parameters
    ----------
    name : str
        A name from :func:`list_layouts`, e.g. ``"gdph_sysucc"``.

    Returns
    -------
    Layout
        The layout module.

    Raises
    ------
    DataError
        When no layout has that name; the message names the known ones.
    """
    if name not in LAYOUTS:
        raise DataError(
            f"unknown dataset layout {name!r}{closest(name, list(LAYOUTS))}; "
            f"medbench reads {', '.join(LAYOUTS)}"
        )
    return LAYOUTS[name]


def detect(root: str | Path, sheet: str | None = None) -> Layout:
    """The layout of a dataset folder, from what is on disk.

    Layouts are tried in the order of ``LAYOUTS``; the first whose ``detect`` recognises the
    folder is returned.

    Parameters
    ----------
    root : str or Path
        The dataset folder.
    sheet : str, optional
        The user's choice of label sheet, as for :func:`medbench.data.read.manifest.read_manifest`;
        layouts with a sheet detect on that one.

    Returns
    -------
    Layout
        The layout module (``NAME``, ``DESCRIPTION``, ``detect``, ``read``).

    Raises
    ------
    DataError
        When no layout recognises the folder (the message names every layout and what it
        reads), or when the folder cannot be listed.
    """
    root = Path(root)
    for layout in LAYOUTS.values():
        if layout.detect(root, sheet):
            return layout
    known = "; ".join(f"{name} ({layout.DESCRIPTION})" for name, layout in LAYOUTS.items())
    raise DataError(f"{root}: no dataset layout medbench knows fits this folder; it reads {known}")
