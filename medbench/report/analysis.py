"""Every number of the report, computed once from an :class:`~medbench.tracking.ExperimentRecord`
(:func:`analyse`): the common inputs (:func:`medbench.report.inputs.gather`), then the result of
each part of the report (:data:`medbench.report.parts.PARTS`). Figures, documents and the
command line's closing summary only format and draw these numbers."""

from __future__ import annotations

from collections.abc import Sequence

from medbench.report import stats
from medbench.report.inputs import gather
from medbench.report.part import Analysis, Part
from medbench.report.parts import PARTS
from medbench.tracking import ExperimentRecord

__all__ = ["Analysis", "analyse"]


def analyse(
    record: ExperimentRecord,
    rope: float | None = None,
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
    parts: Sequence[Part] = PARTS,
) -> Analysis:
    """Compute every number of the report of ``record``.

    Parameters
    ----------
    record : ExperimentRecord
        The runs, metrics, predictions and artifacts of one experiment, as read by
        :func:`medbench.tracking.load_experiment`.
    rope : float, optional
        Half-width of the region of practical equivalence of the Bayesian correlated t-test, in
        the metric's units; by default the config's ``report.rope``.
    n_resamples : int
        Resamples of the stratified bootstrap over test images (seed
        :data:`~medbench.report.stats.BOOTSTRAP_SEED`).
    parts : sequence of Part
        The parts of the report, in order; by default :data:`~medbench.report.parts.PARTS`.

    Returns
    -------
    Analysis
        The common inputs and every part's result (:meth:`Analysis.result`); metrics are
        recomputed from the runs' ``predictions.csv``, never taken from the metrics the runs
        logged. Rows follow the config's order of models and optimizers.
    """
    names = [p.name for p in parts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"parts named twice: {', '.join(twice)}")
    a = Analysis(gather(record, rope, n_resamples), tuple(parts))
    for part in parts:
        a.result(part.name)
    return a
