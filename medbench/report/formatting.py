"""Numbers as the report and the command line print them: fixed decimals, mean ± std, intervals,
p-values and durations, and the cells of summary rows; anything undefined prints as "n/a" (or
nothing, for a spread)."""

from __future__ import annotations

import math


def _number(x, spec: str) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return format(x, spec) if math.isfinite(x) else "n/a"


def fnum(x, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals; "n/a" when it is not a finite number."""
    return _number(x, f".{digits}f")


def fpm(mean, std, digits: int = 3) -> str:
    """ "mean ± std"; the mean alone when the std is undefined (a single fold)."""
    if not math.isfinite(float(mean)):
        return "n/a"
    return fnum(mean, digits) + ("" if not math.isfinite(float(std)) else f" ± {fnum(std, digits)}")


def fci(low, high, digits: int = 3) -> str:
    """ "[low, high]"; empty when a bound is undefined; "(no interval: no spread)" when the
    bounds are equal, never "[x, x]" (a degenerate interval says nothing about uncertainty)."""
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return ""
    if float(low) == float(high):
        return "(no interval: no spread)"
    return f"[{fnum(low, digits)}, {fnum(high, digits)}]"


def fsig(x, digits: int = 4) -> str:
    """Significant digits, for quantities of any scale (Hessian eigenvalues, traces)."""
    return _number(x, f".{digits}g")


def fp(p) -> str:
    """A p-value: three significant digits, "< 0.001" below that."""
    p = float(p)
    if not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def seconds(x) -> str:
    """A duration in s, min or h, whichever reads best."""
    x = float(x)
    if not math.isfinite(x):
        return "n/a"
    if x >= 3600:
        return f"{x / 3600:.2f} h"
    if x >= 120:
        return f"{x / 60:.1f} min"
    return f"{x:.2f} s"


def fsigned(x, digits: int = 3) -> str:
    """A difference with its sign: "+0.006", "-0.012"; "n/a" when undefined."""
    return _number(x, f"+.{digits}f")


def fpercent(p) -> str:
    """A probability in percent: "45%", "< 1%" and "> 99%" at the ends; "n/a" when undefined."""
    p = float(p)
    if not math.isfinite(p):
        return "n/a"
    if p < 0.005:
        return "< 1%"
    if p > 0.995:
        return "> 99%"
    return f"{100 * p:.0f}%"


def fquartiles(median, q25, q75, fmt=fnum) -> str:
    """ "median (q25–q75)": the summary of a positive quantity; the median alone when the
    quartiles coincide with it (a single fold)."""
    text = fmt(median)
    if text == "n/a" or (float(q25) == float(median) == float(q75)):
        return text
    return f"{text} ({fmt(q25)}–{fmt(q75)})"


def fcount(x) -> str:
    """A large count with thousands separators: "1,234,567"; "n/a" when undefined."""
    return _number(x, ",.0f")


# -- cells of a table row (a row of a summary table, as a dict) ------------------------------------


def fcell(row, metric: str, digits: int = 3) -> str:
    """ "mean ± std [low, high]" of ``metric`` in a summary row (``{metric}_mean`` etc.)."""
    text = fpm(row[f"{metric}_mean"], row[f"{metric}_std"], digits)
    ci = fci(row[f"{metric}_ci_low"], row[f"{metric}_ci_high"], digits)
    return f"{text} {ci}".strip()


def fquartile_cell(row, key: str, fmt=fsig) -> str:
    """:func:`fquartiles` of ``key`` in a summary row (``{key}_median``, ``_q25``, ``_q75``)."""
    return fquartiles(row[f"{key}_median"], row[f"{key}_q25"], row[f"{key}_q75"], fmt)


def fruns(row) -> str:
    """ "3/4 (incomplete)": the finished runs of a row against those expected."""
    done = f"{int(row['n_finished'])}/{int(row['n_expected'])}"
    return done if row["complete"] else f"{done} (incomplete)"
