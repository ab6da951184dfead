"""Wording shared by the data layer's messages: a count with its noun, and a short list.

Messages stay one line however many rows are at fault: they name the first few culprits and
count the rest.
"""

from __future__ import annotations

SHOWN = 5  # culprits named in one message before "... and N more"


def plural(count: int, noun: str) -> str:
    """'1 image', '2 images'."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def listing(items: list[str]) -> str:
    """'a, b, c' with at most a few shown, then '... and N more'."""
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def problem(severity: str, culprits: list[str], template: str, noun: str) -> list[tuple[str, str]]:
    """``[(severity, message)]`` when there are culprits, else ``[]``; in ``template``, ``{n}``
    is their count with ``noun`` and ``{c}`` their listing."""
    if not culprits:
        return []
    return [(severity, template.format(n=plural(len(culprits), noun), c=listing(culprits)))]
