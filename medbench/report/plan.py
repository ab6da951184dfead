"""``medbench plan``: how many repeats of the cross-validation a pilot experiment says are needed
to detect a given difference, and what they cost.

From a finished (pilot) experiment, per comparison the report makes (every later optimizer
against every earlier one, per model): the variance of the differences B − A over its (repeat,
fold) units and their ``n_test / n_train`` give the minimum detectable difference of the
corrected repeated k-fold t-test for any number of repeats
(:func:`~medbench.report.power.mdd_by_repeats`) and the repeats that detect ``delta`` with the
asked power (:func:`~medbench.report.power.repeats_needed`), or say that no number does: repeats
re-partition the same images, so the detectable difference has a floor that only more data
(sets) can pass. The pilot's measured time per fold run, per optimizer, prices the repeats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from medbench.config import config_from_logged
from medbench.errors import ConfigError, TrackingError
from medbench.report.build import read_experiment
from medbench.report.differences import paired_difference, pairs, unit_scores
from medbench.report.formatting import fnum, seconds
from medbench.report.power import MAX_REPEATS, mdd_by_repeats, repeats_needed
from medbench.report.vocab import KNOWN_OPTIMIZERS, ordered
from medbench.tracking import ExperimentRecord

#: Repeats the planning table shows (besides the pilot's own and the floor).
SHOWN_REPEATS = (1, 2, 3, 5, 10, 20)


@dataclass
class RepeatsPlan:
    """What a pilot says about repeats: per comparison, and the compute they cost."""

    experiment: str
    delta: float
    power: float
    alpha: float
    pilot_repeats: int
    k: int  # folds per repeat
    n_seeds: int
    comparisons: pd.DataFrame  # one row per (model, pair): pilot's numbers and repeats needed
    mdd: pd.DataFrame  # per comparison x repeats: the minimum detectable difference
    cost: pd.DataFrame  # per optimizer: fold runs per repeat and measured seconds per run
    repeats: int | None  # the most repeats any comparison needs (None: some never get there)

    def compute(self, repeats: int) -> pd.DataFrame:
        """Per optimizer (and in total): the fold runs and seconds of ``repeats`` repeats, and
        what they add to the pilot's."""
        more = max(repeats - self.pilot_repeats, 0)
        out = self.cost.assign(
            runs=self.cost["runs_per_repeat"] * repeats,
            seconds=self.cost["runs_per_repeat"] * repeats * self.cost["seconds_per_run"],
            more_runs=self.cost["runs_per_repeat"] * more,
            more_seconds=self.cost["runs_per_repeat"] * more * self.cost["seconds_per_run"],
        )
        total = {
            "optimizer": "total",
            **{c: out[c].sum() for c in ("runs", "seconds", "more_runs", "more_seconds")},
        }
        return pd.concat([out, pd.DataFrame([total])], ignore_index=True)


def plan_repeats(
    record: ExperimentRecord, delta: float = 0.01, power: float = 0.8, alpha: float = 0.05
) -> RepeatsPlan:
    """Plan the repeats of the cross-validation from the pilot experiment ``record``.

    Parameters
    ----------
    record : ExperimentRecord
        The pilot's runs (any number of repeats and seeds; its finished fold runs count).
    delta : float
        The true difference in test AUC to detect (> 0).
    power, alpha : float
        The probability of detecting ``delta`` and the two-sided level of the test.

    Returns
    -------
    RepeatsPlan
        Per comparison the pilot's variance, its minimum detectable difference now and with more
        repeats, the repeats needed (or why none suffice); per optimizer the measured seconds per
        fold run.
    """
    if not delta > 0 or not 0 < power < 1 or not 0 < alpha < 1:
        raise ConfigError(
            f"plan: --delta must be > 0 and --power in (0, 1); got {delta:g} and {power:g}"
        )
    config = config_from_logged(record.config)
    scores = unit_scores(record)
    if scores.empty:
        raise TrackingError(
            f"plan: experiment {record.name!r} has no finished fold run to plan from"
        )
    pilot_r = int(scores["repeat"].nunique())
    k = int(scores.groupby("repeat")["fold"].nunique().max())
    shown = sorted({*SHOWN_REPEATS, pilot_r})
    models = ordered(scores["model"], config.models)
    optimizers = ordered(scores["optimizer"], [*config.optimizers, *KNOWN_OPTIMIZERS])
    rows, mdd = [], []
    for model in models:
        for opt_a, opt_b in pairs(optimizers):
            pair = paired_difference(scores, model, opt_a, opt_b)
            var_d, ratio = pair.var_d, pair.ratio
            plan = repeats_needed(var_d, k, ratio, delta, alpha, power)
            table = mdd_by_repeats(var_d, k, ratio, shown, alpha, power)
            now = table.loc[table["repeats"] == pilot_r, "mdd"]
            name = f"{model} {opt_b} − {opt_a}"
            rows.append(
                {
                    "comparison": name,
                    "n_units": pair.test.n_folds,
                    "mean_diff": pair.test.mean_diff,
                    "sd_diff": math.sqrt(var_d) if math.isfinite(var_d) else math.nan,
                    "test_train_ratio": ratio,
                    "mdd_pilot": float(now.iloc[0]) if len(now) else math.nan,
                    "repeats_needed": plan.repeats,
                    "mdd_then": plan.mdd,
                    "floor": plan.floor,
                    "note": plan.note,
                }
            )
            mdd.append(table.assign(comparison=name))
    if not rows:
        raise TrackingError(
            f"plan: experiment {record.name!r} has no two optimizers of one model to compare"
        )
    comparisons = pd.DataFrame(rows)
    needed = comparisons["repeats_needed"]
    repeats = None if needed.isna().any() else int(needed.max())
    finished = scores[scores["model"].isin(models)]
    n_seeds = int(finished["seed"].nunique())
    cost = pd.DataFrame(
        [
            {
                "optimizer": opt,
                "runs_per_repeat": len(models) * k * n_seeds,
                "seconds_per_run": float(part["seconds"].mean()),
                "measured_runs": int(part["seconds"].notna().sum()),
            }
            for opt, part in finished.groupby("optimizer", sort=False)
        ]
    )
    order = {o: i for i, o in enumerate(optimizers)}
    cost = cost.sort_values("optimizer", key=lambda s: s.map(order)).reset_index(drop=True)
    return RepeatsPlan(
        experiment=record.name,
        delta=delta,
        power=power,
        alpha=alpha,
        pilot_repeats=pilot_r,
        k=k,
        n_seeds=n_seeds,
        comparisons=comparisons,
        mdd=pd.concat(mdd, ignore_index=True),
        cost=cost,
        repeats=repeats,
    )


def render_plan(plan: RepeatsPlan) -> str:
    """The plan as the terminal shows it: the comparisons, the minimum detectable difference by
    repeats, and the compute of the repeats needed."""
    c = plan.comparisons
    pilot = f"{plan.pilot_repeats} repeat(s) x {plan.k} folds, {plan.n_seeds} seed(s)"
    lines = [
        f"pilot: {plan.experiment} ({pilot})",
        f"goal: detect a true difference of {plan.delta:g} in test AUC with {plan.power:.0%} "
        f"power (two-sided alpha {plan.alpha:g}, corrected repeated k-fold t-test)",
        "",
        pd.DataFrame(
            {
                "comparison": c["comparison"],
                "units": c["n_units"],
                "mean B - A": c["mean_diff"].map(lambda x: fnum(x, 4)),
                "sd(B - A)": c["sd_diff"].map(lambda x: fnum(x, 4)),
                "MDD now": c["mdd_pilot"].map(lambda x: fnum(x, 4)),
                "repeats needed": c["repeats_needed"].map(
                    lambda r: "never" if pd.isna(r) else str(int(r))
                ),
                "floor": c["floor"].map(lambda x: fnum(x, 4)),
            }
        ).to_string(index=False),
        "",
    ]
    lines += [f"{r.comparison}: {r.note}" for r in c.itertuples()]
    wide = plan.mdd.pivot(index="comparison", columns="repeats", values="mdd")
    wide = wide.loc[list(c["comparison"])]
    wide.columns = ["inf" if math.isinf(r) else str(int(r)) for r in wide.columns]
    lines += [
        "",
        "minimum detectable difference by repeats (inf: the floor no number of repeats passes):",
        wide.map(lambda x: fnum(x, 4)).to_string(),
        "",
    ]
    repeats = plan.repeats
    what = f"compute of {repeats} repeats (cv.repeats: {repeats})"
    if repeats is None:
        never = c.loc[c["repeats_needed"].isna(), "comparison"]
        lines.append(
            f"no number of repeats (up to {MAX_REPEATS}) detects {plan.delta:g} for "
            f"{', '.join(never)}: more data sets (medbench compare) or a larger delta are needed"
        )
        finite = c["repeats_needed"].dropna()
        repeats = int(finite.max()) if len(finite) else plan.pilot_repeats + 1
        what = (
            f"the other comparisons need {repeats} repeats: compute of cv.repeats: {repeats}"
            if len(finite)
            else f"what one more repeat costs (cv.repeats: {repeats})"
        )
    compute = plan.compute(repeats)
    lines += [
        f"{what}; seconds per fold run as measured in the pilot (training, tuning and "
        "flatness; loading data and tracking come on top):",
        pd.DataFrame(
            {
                "optimizer": compute["optimizer"],
                "fold runs": compute["runs"].astype(int),
                "per run": compute["seconds_per_run"].map(seconds),
                "total": compute["seconds"].map(seconds),
                "beyond the pilot": [
                    f"{int(n)} runs, {seconds(t)}"
                    for n, t in zip(compute["more_runs"], compute["more_seconds"], strict=True)
                ],
            }
        ).to_string(index=False),
    ]
    return "\n".join(lines)


def plan_experiment(
    experiment: str,
    tracking_uri: str | None = None,
    delta: float = 0.01,
    power: float = 0.8,
) -> RepeatsPlan:
    """``medbench plan``: read the pilot experiment and plan its repeats (:func:`plan_repeats`)."""
    return plan_repeats(read_experiment(experiment, tracking_uri), delta, power)
