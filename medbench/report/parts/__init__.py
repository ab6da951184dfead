"""The parts of the report, one module per topic, in the order the report shows them.

Each module defines ``PART`` (:class:`~medbench.report.part.Part`): its analysis, its tables
(``table_{name}.csv``), its figures and its section(s). The report answers first (overview and
verdict), says how to read its numbers and how the runs were made, then gives the details; the
appendix comes last. Adding a topic is one module and one entry in :data:`PARTS`. A module
here without ``PART`` (``verdict_numbers``, ``verdict_wording``, ``comparisons_figures``,
``protocol_tuning``) is a helper of the part it is named after, not a part.
"""

from __future__ import annotations

from medbench.report.part import Part
from medbench.report.parts import (
    appendix,
    calibration,
    comparisons,
    confusion,
    cost,
    external,
    fidelity,
    flatness,
    performance,
    protocol,
    readers,
    reading,
    sites,
    time_to_target,
    training,
    verdict,
)

#: The report's parts, in the order of its sections.
PARTS: tuple[Part, ...] = (
    verdict.PART,  # overview, verdict, the table at a glance, the runs that did not finish
    reading.PART,  # how to read these numbers
    protocol.PART,  # cross-validation, selection, tuning and budgets
    performance.PART,  # test performance
    comparisons.PART,  # paired comparisons between optimizers
    external.PART,  # external validation
    training.PART,  # learning curves
    fidelity.PART,  # SAM's perturbation under the compute dtype
    cost.PART,  # training cost and compute
    time_to_target.PART,  # validation AUC by compute, time to target
    confusion.PART,  # confusion matrices
    calibration.PART,  # calibration
    sites.PART,  # per site
    readers.PART,  # the radiologists' calls
    flatness.PART,  # flatness of the minima
    appendix.PART,  # configuration, data card, environment, files
)
