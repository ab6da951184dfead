import math

import pandas as pd
import pytest

from medbench.report.parts import comparisons
from medbench.report.parts.verdict import against_baseline
from tests.report.parts.seeded_units import seeded_units


def test_verdict_turns_a_comparison_round_when_the_baseline_is_b():
    units = seeded_units(optimizers=("sam", "adam"))  # adam is B in (sam, adam)
    diffs = comparisons.fold_differences(units, ["m"], ["sam", "adam"])
    tests = comparisons.paired(units, diffs, ["m"], ["sam", "adam"], rope=0.01)
    perf = pd.DataFrame(
        [
            {
                "model": "m",
                "optimizer": o,
                "auc_mean": units.query("optimizer == @o")["auc"].mean(),
                "auc_n": 5,
            }
            for o in ("sam", "adam")
        ]
    )
    verdict = against_baseline(perf, tests, ["sam", "adam"]).set_index("optimizer")
    t = tests[tests["metric"] == "auc"].iloc[0]
    assert verdict.loc["sam", "baseline"] == "adam"
    assert verdict.loc["sam", "diff"] == pytest.approx(-t["mean_diff"])
    assert verdict.loc["sam", "ci_low"] == pytest.approx(-t["corrected_ci_high"])
    assert verdict.loc["sam", "p_better"] == pytest.approx(t["p_a_better"])
    assert verdict.loc["sam", "p_worse"] == pytest.approx(t["p_b_better"])
    assert math.isnan(verdict.loc["adam", "diff"])
    assert verdict["best"].sum() == 1
