"""Data cards: Markdown files in ``data_cards/`` whose YAML front matter code can read."""

from __future__ import annotations

from pathlib import Path

import yaml

from medbench.errors import DataError
from medbench.paths import project_root


def card_path(name: str) -> Path:
    """The card file for dataset ``name`` (e.g. ``gdph_sysucc_bus``, ``synthetic_bus``)."""
    return project_root() / "data_cards" / f"{name}.md"


def read_card(path: str | Path) -> tuple[dict, str]:
    """Return (front matter, Markdown body) of a data card."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise DataError(f"{path}: data card has no YAML front matter (must start with '---')")
    end = text.find("\n---", 4)
    if end < 0:
        raise DataError(f"{path}: data card front matter is not closed by '---'")
    meta = yaml.safe_load(text[4:end]) or {}
    if not isinstance(meta, dict):
        raise DataError(f"{path}: data card front matter must be a mapping")
    return meta, text[end + 4 :].lstrip("\n")
