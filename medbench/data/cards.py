"""Data cards: one Markdown file per supported dataset, shipped as package data in
``medbench/data_cards`` (the checkout's ``data_cards/`` links there), whose YAML front matter
code can read: the report quotes it, and tests check it against the reader and the generator.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

import yaml

from medbench.errors import DataError, closest

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def card_folder() -> Traversable:
    """The folder of the shipped cards, wherever medbench is installed."""
    return files("medbench") / "data_cards"


def list_cards() -> list[str]:
    """The names of the shipped cards, e.g. ``gdph_sysucc_bus``, ``synthetic_bus``."""
    return sorted(p.name[: -len(".md")] for p in card_folder().iterdir() if p.name.endswith(".md"))


def read_card(name: str) -> tuple[dict, str]:
    """Read a data card.

    Parameters
    ----------
    name : str
        The card's name, one of :func:`list_cards` (the runs' ``medbench.dataset_card`` tag).

    Returns
    -------
    meta : dict
        The YAML front matter.
    body : str
        The Markdown after it.

    Raises
    ------
    DataError
        For an unknown name (the message names the known cards), or a card whose front matter
        is missing, unclosed or not a mapping.
    """
    known = list_cards()
    if name not in known:
        raise DataError(
            f"no data card {name!r}{closest(name, known)}; medbench ships {', '.join(known)}"
        )
    card = card_folder() / f"{name}.md"
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise DataError(f"{card}: data card has no YAML front matter (must start with '---')")
    end = text.find("\n---", 4)
    if end < 0:
        raise DataError(f"{card}: data card front matter is not closed by '---'")
    meta = yaml.safe_load(text[4:end]) or {}
    if not isinstance(meta, dict):
        raise DataError(f"{card}: data card front matter must be a mapping")
    return meta, text[end + 4 :].lstrip("\n")
