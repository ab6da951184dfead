"""The contract of a part of the report, and what parts are given.

A :class:`Part` is one topic (performance, comparisons, calibration, ...): it computes its
numbers from the common inputs (``analyse``), names its tables (``tables``: each becomes
``table_{name}.csv``), draws its figures (``figures``) and writes its section(s) of
``report.md``/``report.html`` (``sections``). The report is an ordered list of parts
(``medbench.report.parts.PARTS``): adding a topic is one module that defines its ``PART`` and one
entry in that list.

:class:`Analysis` holds the common inputs and every part's result; a part that needs another
part's numbers asks for them with :meth:`Analysis.result` (the verdict reads the performance and
the comparisons), whatever their places in the list. :class:`Writer` is what ``sections`` write
with: the document, the files beside it and the analysis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from medbench.report import document as d
from medbench.report.figures import FigureFiles
from medbench.report.inputs import Inputs
from medbench.tracking import ExperimentRecord


def no_tables(result: Any) -> dict[str, pd.DataFrame]:
    return {}


def no_figures(result: Any, a: Analysis, out: Path) -> dict[str, FigureFiles]:
    return {}


def no_sections(result: Any, w: Writer) -> None:
    return None


@dataclass(frozen=True)
class Part:
    """One topic of the report.

    Attributes
    ----------
    name : str
        Names the part's result (:meth:`Analysis.result`); unique in the report.
    analyse : callable ``(Analysis) -> result``
        The part's numbers, from ``a.inputs`` (and other parts' results).
    tables : callable ``(result) -> {name: DataFrame}``
        Each non-empty table is written as ``table_{name}.csv`` at full precision; sections link
        to it by that name.
    figures : callable ``(result, Analysis, out folder) -> {key: FigureFiles}``
        Draws into the folder (:func:`medbench.report.figures.save`); sections show a figure by
        its key.
    sections : callable ``(result, Writer) -> None``
        Adds the part's blocks to the document, in the place of the part in the list.
    """

    name: str
    analyse: Callable[[Analysis], Any]
    tables: Callable[[Any], Mapping[str, pd.DataFrame]] = no_tables
    figures: Callable[[Any, Analysis, Path], Mapping[str, FigureFiles]] = no_figures
    sections: Callable[[Any, Writer], None] = no_sections


@dataclass
class Analysis:
    """Every number of the report: the common inputs and each part's result, computed once.

    Made by :func:`medbench.report.analysis.analyse`; figures, documents and the closing summary
    only format and draw these numbers.
    """

    inputs: Inputs
    parts: Sequence[Part]
    results: dict[str, Any] = field(default_factory=dict)
    _busy: set[str] = field(default_factory=set, repr=False)

    def __repr__(self) -> str:
        parts = ", ".join(p.name for p in self.parts)
        return f"Analysis(experiment={self.inputs.record.name!r}, parts=[{parts}])"

    def result(self, name: str) -> Any:
        """The result of part ``name``, analysed on first use."""
        if name not in self.results:
            part = next((p for p in self.parts if p.name == name), None)
            if part is None:
                known = ", ".join(p.name for p in self.parts)
                raise KeyError(f"no part {name!r} in this report; its parts: {known}")
            if name in self._busy:
                raise RuntimeError(f"part {name!r} needs its own result to analyse itself")
            self._busy.add(name)
            try:
                self.results[name] = part.analyse(self)
            finally:
                self._busy.discard(name)
        return self.results[name]


@dataclass
class Writer:
    """Where a part's ``sections`` write: the document (or the appendix folded in it), the tables
    and figures written beside it by name, and the analysis."""

    a: Analysis
    figs: Mapping[str, FigureFiles]
    tables: Mapping[str, Path]
    doc: d.Document | d.Details  # where sections add their blocks

    @property
    def inputs(self) -> Inputs:
        return self.a.inputs

    @property
    def record(self) -> ExperimentRecord:
        return self.a.inputs.record

    def image(self, key: str, caption: str) -> None:
        """The figure ``key`` with its caption, if it was drawn."""
        f = self.figs.get(key)
        if f is not None:
            self.doc.add(d.Image(f.png.name, f.svg.name, caption))

    def table(
        self,
        frame: pd.DataFrame,
        caption: str = "",
        csv: str | None = None,
        keep: tuple[str, ...] = ("Optimizer",),
    ) -> None:
        """A table, linked to the CSV ``table_{csv}.csv`` when it was written; columns holding
        one value in every row (but those in ``keep``) move into the caption, so that no column
        repeats a constant, and columns undefined in every row go."""
        path = self.tables.get(csv) if csv else None
        undefined = [
            c for c in frame.columns if len(frame) and (frame[c].astype(str) == "n/a").all()
        ]
        frame = frame.drop(columns=undefined)  # nothing measured there (e.g. not logged)
        if len(frame) > 1:
            constant = [
                col
                for col in frame.columns
                if col not in keep and frame[col].astype(str).nunique() == 1 and str(col).strip()
            ]
            if constant and len(constant) < len(frame.columns):
                same = "; ".join(f"{col} {frame[col].iloc[0]}" for col in constant)
                caption = f"{caption} Same in every row: {same}.".strip()
                frame = frame.drop(columns=constant)
        self.doc.add(d.Table(frame, caption, path.name if path else None))
