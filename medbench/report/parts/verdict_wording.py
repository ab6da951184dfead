"""The verdict in words: the bold bottom line of each model and the numbers behind it (each
comparison's difference, interval and Holm-adjusted p, the Bayesian probabilities as a sentence).
Apart from the numbers they word (:mod:`medbench.report.parts.verdict_numbers`) and the verdict
part's sections (:mod:`medbench.report.parts.verdict`), so that each module stays small; a helper
of the verdict part, not a part itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from medbench.report.formatting import fnum, fp, fpercent, fsigned
from medbench.report.parts.verdict_numbers import ALPHA, GridState
from medbench.report.power import EQUIVALENCE_THRESHOLD

# -- the bottom line ------------------------------------------------------------------------------


def units_text(n: int, n_repeats: int = 1) -> str:
    """ "5 folds", "15 folds of 3 repeats"."""
    if n_repeats > 1:
        return f"{n} folds of {n_repeats} repeats"
    return "1 fold" if int(n) == 1 else f"{int(n)} folds"


def _span(values: Sequence[float], fmt) -> str:
    """ "0.031" or "0.031–0.052" (the range of the finite values)."""
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return "n/a"
    low, high = fmt(min(v)), fmt(max(v))
    return low if low == high else f"{low}–{high}"


def _percents(values: Sequence[float]) -> str:
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return "n/a"
    low, high = fpercent(min(v)), fpercent(max(v))
    return low if low == high else f"{low.rstrip('%')}–{high}"


def significant(c: Mapping) -> bool:
    p = c.get("p_holm", math.nan)
    return c.get("test_status", "tested") == "tested" and math.isfinite(p) and p < ALPHA


def equivalent(c: Mapping) -> bool:
    q = c.get("p_equivalent", math.nan)
    return (
        c.get("test_status", "tested") == "tested"
        and math.isfinite(q)
        and q >= EQUIVALENCE_THRESHOLD
    )


def direction(c: Mapping) -> str:
    """ "significantly better than" or "significantly worse than": the sign of the paired
    difference decides, never the order of the optimizers."""
    return "significantly better than" if c["diff"] > 0 else "significantly worse than"


def bottom_line(
    optimizers: Sequence[str],
    baseline: str,
    comps: Sequence[Mapping],
    n_units: int,
    n_repeats: int,
    grid: GridState,
    compute: str,
    rope: float,
    partial: bool = False,
) -> str:
    """The answer for one model (plain text; the report sets it in bold): the significant
    differences with their direction, the comparisons without spread, and what the others could
    not detect and whether equivalence was reachable; on the ``n_units`` units every optimizer
    finished (said when some optimizer had more: ``partial``), under which compute, and first
    whether the grid was unfinished."""
    lead = f"Unfinished grid, {grid.text()}: " if grid.unfinished else ""
    if len(optimizers) < 2:
        return f"{lead}only {optimizers[0]} has results, nothing to compare."
    if n_units < 2 or not comps:
        finished = "no fold" if n_units == 0 else "only one fold"
        return f"{lead}no verdict yet: {finished} finished under every optimizer."
    parts = []
    for c in comps:
        if significant(c):
            parts.append(
                f"{c['optimizer']} is {direction(c)} {c['reference']}: {fsigned(c['diff'])} AUC "
                f"(95% CI {fsigned(c['ci_low'])} to {fsigned(c['ci_high'])}, Holm-adjusted p "
                f"{fp(c['p_holm'])})"
            )
    for c in comps:
        if equivalent(c) and not significant(c):
            parts.append(
                f"{c['optimizer']} and {c['reference']} are practically equivalent "
                f"(P(|difference| ≤ {rope:g} AUC) {fpercent(c['p_equivalent'])})"
            )
    for c in comps:
        if c["test_status"] == "identical":
            parts.append(f"{c['optimizer']} is identical to {c['reference']} on every paired fold")
        elif c["test_status"] == "constant":
            parts.append(
                f"{c['optimizer']} − {c['reference']} is {fsigned(c['diff'])} AUC on every "
                "paired fold (no spread, so no test)"
            )
    rest = [
        c
        for c in comps
        if c["test_status"] == "tested" and not significant(c) and not equivalent(c)
    ]
    if rest:
        parts.append(_undetected(rest, comps, optimizers, baseline, n_repeats, rope))
    sentence = "; ".join(parts)
    where = f"the {units_text(n_units, n_repeats)} every optimizer finished"
    if grid.unfinished:
        sentence = f"{lead}provisional, on {where}: {sentence}"
    else:
        if sentence.startswith("no detectable"):  # optimizer names keep their case
            sentence = "N" + sentence[1:]
        if partial:
            sentence += f", on {where}"
    sentence += "."
    if compute:
        sentence += f" {compute}."
    return sentence


def _undetected(rest, comps, optimizers, baseline, n_repeats, rope) -> str:
    """ "no detectable difference from adam: these 5 folds cannot detect less than 0.04 AUC
    (80% power); P(equivalent within ±0.01) 52–59%, ..." for the comparisons in ``rest``."""
    with_baseline = [c for c in comps if baseline in (c["optimizer"], c["reference"])]
    if len(rest) == len(comps) and len(optimizers) > 2:
        scope = "between " + ", ".join(optimizers[:-1]) + f" and {optimizers[-1]}"
    elif rest == with_baseline and len(rest) == 1:
        scope = f"between {rest[0]['optimizer']} and {baseline}"
    elif rest == with_baseline:
        scope = f"from {baseline}"
    else:
        scope = "for " + ", ".join(f"{c['optimizer']} − {c['reference']}" for c in rest)
    units = units_text(min(c["n_units"] for c in rest), n_repeats)
    text = (
        f"no detectable difference {scope}: these {units} cannot detect less than "
        f"{_span([c['mdd'] for c in rest], fnum)} AUC (80% power); P(equivalent within "
        f"±{rope:g}) {_percents([c['p_equivalent'] for c in rest])}"
    )
    if not any(c["equivalence_reachable"] for c in rest):
        text += (
            f", at most {_percents([c['max_p_equivalent'] for c in rest])} with this spread, so "
            "equivalence cannot be shown either"
        )
    return text


# -- the numbers behind it ------------------------------------------------------------------------


def verdict_text(model: str, found: Mapping, grid: GridState, rope: float) -> str:
    """The numbers behind the bottom line: the means over the units every optimizer finished,
    each comparison's difference with its corrected interval, Holm-adjusted p and the smallest
    difference it could detect, the Bayesian probabilities in words, and the compute."""
    common, comps = found["common"], found["comparisons"]
    units = units_text(found["n_units"], found["n_repeats"])
    means = ", ".join(f"{r.optimizer} {fnum(r.auc_mean)}" for r in common.itertuples())
    text = [f"Mean test AUC over the {units} every optimizer finished (seeds averaged): {means}."]
    if not comps:
        return " ".join(text)
    tested = [c for c in comps if c["test_status"] == "tested"]
    family = int(max((c["family_size"] for c in comps), default=0))
    items = []
    for c in comps:
        name = f"{c['optimizer']} − {c['reference']}"
        if c["test_status"] != "tested":
            items.append(f"{name} {fsigned(c['diff'])}: {_status(c)}")
            continue
        items.append(
            f"{name} {fsigned(c['diff'])} ({_interval(c['ci_low'], c['ci_high'])}; Holm-adjusted "
            f"p {fp(c['p_holm'])}; detectable at 80% power: ≥ {fnum(c['mdd'])})"
        )
    untested = len(comps) - len(tested)
    family_text = (
        f"Holm's adjustment over the {_comparisons(family)} of this report that could be tested"
        if family
        else "no comparison could be tested"
    )
    text.append(
        f"Differences in test AUC over the units both optimizers finished, with the 95% interval "
        f"of the corrected t-test ({family_text}"
        + (f"; {untested} here had no spread and were not tested" if untested else "")
        + "): "
        + "; ".join(items)
        + "."
    )
    text += [_in_words(c, rope) for c in tested]
    if found["compute"].text:
        text.append(found["compute"].text)
    return " ".join(text)


def _status(c: Mapping) -> str:
    n = c["n_units"]
    if c["test_status"] == "identical":
        return f"identical on every one of the {n} paired folds, no test"
    if c["test_status"] == "constant":
        return f"the same difference on every one of the {n} paired folds, no test"
    if c["test_status"] == "one":
        return "only one paired fold, no test"
    return "no paired fold, no test"


def _comparisons(n: int) -> str:
    return "single AUC comparison" if n == 1 else f"{n} AUC comparisons"


def _in_words(c: Mapping, rope: float) -> str:
    """The Bayesian correlated t-test's probabilities as a sentence a clinician can read."""
    opt, ref = c["optimizer"], c["reference"]
    better, same, worse = c["p_better"], c["p_equivalent"], c["p_worse"]
    if not math.isfinite(float(better)):
        return f"Too few folds to weigh the evidence for {opt} against {ref}."
    odds = (
        f"chance {fpercent(better)} that {opt} is better than {ref} by more than {rope:g} "
        f"AUC, {fpercent(same)} that the two are practically equivalent (within ±{rope:g}), "
        f"{fpercent(worse)} that it is worse"
    )
    if better >= EQUIVALENCE_THRESHOLD:
        return f"{opt} is very probably better than {ref} ({odds})."
    if worse >= EQUIVALENCE_THRESHOLD:
        return f"{opt} is very probably worse than {ref} ({odds})."
    if same >= EQUIVALENCE_THRESHOLD:
        return f"{opt} and {ref} are very probably practically equivalent ({odds})."
    return f"For {opt} against {ref} the evidence is inconclusive: {odds}."


def _interval(low, high) -> str:
    """ "95% CI -0.009 to +0.021" for a difference."""
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return "no interval"
    return f"95% CI {fsigned(low)} to {fsigned(high)}"
