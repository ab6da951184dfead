"""One colour per optimizer, the same in the report's tables and figures and in the MLflow UI.

The report draws with these colours, and every run gets its optimizer's colour as MLflow's run
colour tag when it is created (:mod:`medbench.tracking.view`), so that a bar of Adam is blue in
the report and in the UI's charts alike.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Okabe & Ito (2008), fixed per known optimizer so a colour means the same in every report.
OPTIMIZER_COLOURS = {
    "adam": "#0072B2",  # blue
    "sam": "#E69F00",  # orange
    "gcsam": "#009E73",  # bluish green
    "asam": "#CC79A7",  # reddish purple
    "sgd": "#D55E00",  # vermillion
    "adamw": "#56B4E9",  # sky blue
}
#: For other optimizers, in alphabetical order of their names (Paul Tol's muted scheme).
EXTRA_COLOURS = ("#882255", "#44AA99", "#332288", "#999933", "#117733", "#AA4499", "#DDCC77")


def optimizer_colours(names: Iterable[str]) -> dict[str, str]:
    """Fixed colours for known optimizers; unknown ones get the extra colours in name order."""
    names = list(names)
    out = {n: OPTIMIZER_COLOURS[n] for n in names if n in OPTIMIZER_COLOURS}
    unknown = sorted(n for n in names if n not in OPTIMIZER_COLOURS)
    for i, name in enumerate(unknown):
        out[name] = EXTRA_COLOURS[i % len(EXTRA_COLOURS)]
    return out
