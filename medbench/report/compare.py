"""``medbench compare``: one report over several experiments, one data set each, for the models and
optimizers they share.

One data set answers "is B better than A *here*"; the question is usually "on BUS data", which
several data sets answer better than any number of repeats on one (Demšar 2006; Benavoli et al.
2017). Per model and pair of optimizers the report gives, per data set, the mean difference B − A
in test AUC over its (repeat, fold) units with the interval of the corrected repeated k-fold
t-test (:mod:`medbench.report.differences`); a forest plot of those rows and of the pooled
estimate; the pooled estimate of a random-effects meta-analysis (REML, with tau², I² and Q;
:func:`~medbench.report.meta.random_effects`); a Bayesian test across data sets
(:func:`~medbench.report.meta.bayesian_across_datasets`, naming the test it used and what that
many data sets can say); and a verdict sentence: how many data sets, which, what can and cannot
be concluded.

Experiments whose settings differ beyond their data (models' training, image size, budget,
epochs...) are refused with one line naming the difference, unless ``allow_different``, which the
report then states.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medbench.config import Config, config_from_logged, hashed_settings
from medbench.errors import ConfigError, TrackingError
from medbench.paths import atomic_folder, ensure_folder, storage_error
from medbench.report import document as d
from medbench.report.build import read_experiment
from medbench.report.differences import PairedDifference, paired_difference, pairs, unit_scores
from medbench.report.figures import FigureFiles, safe_name, save, styled, subplots
from medbench.report.formatting import fnum, fp, fpercent, fsigned
from medbench.report.meta import (
    SIGNED_RANK,
    AcrossDatasets,
    MetaAnalysis,
    bayesian_across_datasets,
    random_effects,
)
from medbench.report.vocab import KNOWN_OPTIMIZERS, ordered
from medbench.tracking import ExperimentRecord, resolve_tracking_uri, schema
from medbench.tracking.reader import tag_column

#: Settings that say which data an experiment ran on (or are tuned to it), or where it ran: they
#: may differ between the experiments of a comparison. Every other setting that changes results
#: must match.
DATASET_KEYS = (
    "data.root",
    "data.layout",
    "data.sheet",
    "data.include_normal",
    "data.labels",
    "data.folds",
    "data.n_folds",
    "data.folds_keep",
    "data.synthetic.",
    "data.external",
    "report.target_val_auc",
    # how the runs were executed (their last digits on a CPU), not what is compared
    "train.device",
    "train.threads",
    "train.channels_last",
    "train.compile",
)

#: The metric compared (the report's primary one).
METRIC = "auc"


@dataclass
class Source:
    """One experiment of the comparison: where it is, what data it ran on, its scores."""

    label: str  # its name in the report: the experiment's (numbered when two share it)
    experiment: str
    uri: str
    dataset: str  # what data it ran on, in words
    record: ExperimentRecord
    config: Config
    scores: pd.DataFrame  # :func:`~medbench.report.differences.unit_scores`


@dataclass
class PairComparison:
    """B − A of one model across the data sets."""

    model: str
    optimizer_a: str
    optimizer_b: str
    per_dataset: pd.DataFrame  # one row per data set: its test, n of units, weight
    units: pd.DataFrame  # every data set's (repeat, fold) differences
    meta: MetaAnalysis
    across: AcrossDatasets
    verdict: str  # the bottom line: how many data sets, which, what can be concluded
    details: str  # what the bottom line rests on, and what cannot be concluded

    @property
    def name(self) -> str:
        return f"{self.model}: {self.optimizer_b} − {self.optimizer_a}"


@dataclass
class Comparison:
    """Everything the comparison report shows."""

    sources: list[Source]
    models: list[str]
    optimizers: list[str]
    rope: float
    differences: list[str]  # settings that differ (compared anyway: allow_different)
    pairs: list[PairComparison] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.sources]


# -- reading -----------------------------------------------------------------------------------


def _uris(experiments: Sequence[str], uris: Sequence[str | None]) -> list[str | None]:
    """One store per experiment: none given (the default store), one for all, or one each."""
    if not uris:
        return [None] * len(experiments)
    if len(uris) == 1:
        return list(uris) * len(experiments)
    if len(uris) != len(experiments):
        raise ConfigError(
            f"--tracking-uri: {len(uris)} stores for {len(experiments)} experiments; give one "
            "store for all, or one per experiment in the same order"
        )
    return list(uris)


def dataset_name(record: ExperimentRecord, config: Config) -> str:
    """The data an experiment ran on, in words: its data card, else its folder's name, else the
    synthetic dataset's settings."""
    column = tag_column(schema.TAG_DATASET_CARD)
    cards = sorted(set(record.parents[column].dropna())) if column in record.parents else []
    if cards:
        return ", ".join(cards)
    if config.data.root:
        return Path(config.data.root).name or str(config.data.root)
    synth = config.data.synthetic
    return f"synthetic BUS (n={synth.n}, seed {synth.seed})"


def read_sources(experiments: Sequence[str], uris: Sequence[str | None] = ()) -> list[Source]:
    """Each experiment's record, config and unit scores (one line for a missing one or store)."""
    if len(experiments) < 2:
        raise ConfigError("compare: name at least two experiments (one per data set)")
    stores = [resolve_tracking_uri(u) for u in _uris(experiments, uris)]
    seen = [(e, u) for e, u in zip(experiments, stores, strict=True)]
    twice = next((p for i, p in enumerate(seen) if p in seen[:i]), None)
    if twice:
        raise ConfigError(f"compare: experiment {twice[0]!r} in {twice[1]} is named twice")
    names = list(experiments)
    sources = []
    for experiment, uri in seen:
        record = read_experiment(experiment, uri)
        config = config_from_logged(record.config)
        label = experiment if names.count(experiment) == 1 else f"{experiment} ({uri})"
        scores = unit_scores(record)
        if scores.empty:
            raise TrackingError(f"experiment {experiment!r} in {uri} has no finished fold run")
        sources.append(
            Source(label, experiment, uri, dataset_name(record, config), record, config, scores)
        )
    return sources


def config_differences(sources: Sequence[Source]) -> list[str]:
    """The settings that change results (:func:`~medbench.config.hashed_settings`) and differ
    between the experiments, data settings (:data:`DATASET_KEYS`) aside; one text each."""
    settings = [hashed_settings(s.config) for s in sources]
    keys = sorted(set().union(*settings))
    out = []
    for key in keys:
        if key.startswith(DATASET_KEYS):
            continue
        values = [st.get(key) for st in settings]
        if any(v != values[0] for v in values[1:]):
            each = ", ".join(f"{v!r} in {s.label}" for v, s in zip(values, sources, strict=True))
            out.append(f"{key} ({each})")
    return out


# -- the numbers ---------------------------------------------------------------------------------


def _shared(sources: Sequence[Source]) -> tuple[list[str], list[str]]:
    """The models and optimizers every experiment has results for, in the first one's order
    (its config's, as the report orders them)."""
    first = sources[0]
    models = ordered(first.scores["model"], first.config.models)
    optimizers = ordered(first.scores["optimizer"], [*first.config.optimizers, *KNOWN_OPTIMIZERS])
    return (
        [m for m in models if all((s.scores["model"] == m).any() for s in sources)],
        [o for o in optimizers if all((s.scores["optimizer"] == o).any() for s in sources)],
    )


def _pooled(rows: pd.DataFrame) -> MetaAnalysis:
    """REML random effects over the data sets with a spread: the wider of the z and the
    Knapp–Hartung intervals (the z interval is too narrow with few data sets, the Knapp–Hartung
    one too narrow when they happen to agree; IntHout et al. 2014, Jackson et al. 2017)."""
    usable = rows[np.isfinite(rows["se"]) & (rows["se"] > 0)]
    args = (usable["mean_diff"], usable["se"], "REML", list(usable["dataset_label"]))
    z = random_effects(*args)
    hk = random_effects(*args, knapp_hartung=True)
    return hk if hk.ci_high - hk.ci_low > z.ci_high - z.ci_low else z


def compare(
    sources: Sequence[Source], allow_different: bool = False, rope: float | None = None
) -> Comparison:
    """Compare the shared models and optimizers across the experiments of ``sources``.

    Raises ConfigError when their settings differ beyond their data (unless ``allow_different``)
    or when they share no model with two optimizers. ``rope`` defaults to the first experiment's
    ``report.rope``.
    """
    differences = config_differences(sources)
    if differences and not allow_different:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        raise ConfigError(
            f"compare: the experiments differ in {differences[0]}{more}; compare like with like, "
            "or pass --allow-different (the report then says so)"
        )
    models, optimizers = _shared(sources)
    if not models or len(optimizers) < 2:
        raise ConfigError(
            "compare: the experiments share "
            + (f"only the optimizer(s) {optimizers}" if models else "no model")
            + " with results; a comparison needs one model and two optimizers in every one"
        )
    rope = float(sources[0].config.report.rope if rope is None else rope)
    out = Comparison(list(sources), models, optimizers, rope, differences)
    for model in models:
        for opt_a, opt_b in pairs(optimizers):
            found = [paired_difference(s.scores, model, opt_a, opt_b) for s in sources]
            out.pairs.append(_pair(sources, found, rope))
    return out


def _pair(sources: Sequence[Source], found: Sequence[PairedDifference], rope: float):
    first = found[0]
    rows = pd.DataFrame(
        [
            {
                "model": p.model,
                "optimizer_a": p.optimizer_a,
                "optimizer_b": p.optimizer_b,
                "dataset_label": s.label,
                "dataset": s.dataset,
                "n_repeats": p.n_repeats,
                "k": p.k,
                "n_units": p.test.n_folds,
                "mean_diff": p.test.mean_diff,
                "se": p.test.scale,
                "df": p.test.df,
                "ci_low": p.test.ci_low,
                "ci_high": p.test.ci_high,
                "p": p.test.p,
                "test_train_ratio": p.ratio,
            }
            for s, p in zip(sources, found, strict=True)
        ]
    )
    meta = _pooled(rows)
    weights = dict(zip(meta.names, meta.weights, strict=True))
    rows["weight"] = [weights.get(label, math.nan) for label in rows["dataset_label"]]
    units = pd.concat(
        [p.units.assign(dataset_label=s.label) for s, p in zip(sources, found, strict=True)],
        ignore_index=True,
    )
    repeats = {p.n_repeats for p in found}
    across = bayesian_across_datasets(
        [p.units["diff"].to_numpy(float) for p in found],
        rope,
        runs=repeats.pop() if len(repeats) == 1 else 1,
    )
    verdict, details = verdict_sentence(first, rows, meta, across, rope)
    return PairComparison(
        first.model,
        first.optimizer_a,
        first.optimizer_b,
        rows,
        units,
        meta,
        across,
        verdict,
        details,
    )


def verdict_sentence(
    pair: PairedDifference,
    rows: pd.DataFrame,
    meta: MetaAnalysis,
    across: AcrossDatasets,
    rope: float,
) -> tuple[str, str]:
    """What the data sets together say about B − A, and what they cannot: the bottom line (how
    many data sets, which, the pooled estimate and what it allows to conclude), then the
    details (data sets left out of the pooling, those that show a difference on their own, the
    Bayesian test across data sets and its limits, the spread between data sets)."""
    a, b = pair.optimizer_a, pair.optimizer_b
    n = len(rows)
    head = f"Across {n} data sets ({', '.join(rows['dataset_label'])})"
    pooled = f"pooled {b} − {a} {_estimate(meta.estimate, meta.ci_low, meta.ci_high)}"
    if not math.isfinite(meta.estimate):
        bottom = (
            f"{head}: no data set has paired units with a spread, so nothing can be pooled or "
            f"concluded about {b} against {a}."
        )
    elif meta.ci_low > 0 or meta.ci_high < 0:
        better, worse = (b, a) if meta.ci_low > 0 else (a, b)
        bottom = (
            f"{head}: {better} scores higher than {worse} in test AUC on these data sets taken "
            f"together ({pooled}); whether it does on other BUS data sets cannot be concluded "
            f"from {n}."
        )
    elif -rope <= meta.ci_low and meta.ci_high <= rope:
        bottom = (
            f"{head}: {b} and {a} are equivalent within ±{rope:g} in test AUC on these data "
            f"sets taken together ({pooled}); other BUS data sets may differ."
        )
    else:
        reach = max(abs(meta.ci_low), abs(meta.ci_high))
        bottom = (
            f"{head}: no difference in test AUC between {b} and {a} is detectable ({pooled}); "
            + (
                f"differences up to {fnum(reach)} either way are not excluded."
                if math.isfinite(reach)
                else "one data set's point estimate has no interval."
            )
        )
    details = []
    out = [x for x in rows["dataset_label"] if x not in meta.names]
    if out and math.isfinite(meta.estimate):
        details.append(
            f"Left out of the pooled estimate (fewer than two paired units, or no spread): "
            f"{', '.join(out)}."
        )
    alone = rows[(rows["ci_low"] > 0) | (rows["ci_high"] < 0)]
    details.append(
        f"{len(alone)} of {n} data sets show a difference on their own "
        f"({', '.join(alone['dataset_label'])})."
        if len(alone)
        else f"None of the {n} data sets shows a difference on its own."
    )
    if math.isfinite(across.p_b_better):
        bayes = (
            f"The {across.test} across data sets gives P({a} better) "
            f"{fpercent(across.p_a_better)}, P(equivalent within ±{rope:g}) "
            f"{fpercent(across.p_equivalent)}, P({b} better) {fpercent(across.p_b_better)}"
        )
        if across.test == SIGNED_RANK:
            bayes += (
                "; it weighs each data set's mean difference, not how uncertain it is, and "
                f"with {across.n_datasets} data sets can never exceed P = {across.max_p:.2f} for "
                "either optimizer"
            )
        details.append(bayes + ".")
    else:
        details.append("No Bayesian test across data sets could be made.")
    if math.isfinite(meta.tau2):
        details.append(
            f"The spread between data sets (tau² {meta.tau2:.2g}, I² {fpercent(meta.i2)}) rests "
            f"on {meta.n_datasets} values."
        )
    return bottom, " ".join(details)


# -- the report ------------------------------------------------------------------------------------


def forest_figure(pair: PairComparison, rope: float) -> Figure:
    """One row per data set (mean difference and corrected 95% interval, the marker's area the
    meta-analysis weight) and the pooled estimate (a diamond), with 0 and the ROPE marked."""
    rows = pair.per_dataset
    n = len(rows)
    fig, axes = subplots(1, 1, 6.4, 1.2 + 0.45 * (n + 1))
    ax = axes[0, 0]
    with styled():
        ax.axvspan(-rope, rope, color="#cccccc", alpha=0.35, lw=0, label=f"ROPE ±{rope:g}")
        ax.axvline(0, color="#555555", lw=0.8)
        for i, r in enumerate(rows.itertuples(index=False)):
            y = n - i
            if math.isfinite(r.ci_low):
                ax.plot([r.ci_low, r.ci_high], [y, y], color="#0072B2", lw=1.4)
            size = 30 + 170 * (r.weight if math.isfinite(r.weight) else 0.0)
            ax.scatter([r.mean_diff], [y], s=size, marker="s", color="#0072B2", zorder=3)
        m = pair.meta
        if math.isfinite(m.estimate):
            low, high = (m.ci_low, m.ci_high) if math.isfinite(m.ci_low) else (m.estimate,) * 2
            ax.fill(
                [low, m.estimate, high, m.estimate],
                [0, 0.22, 0, -0.22],
                color="#D55E00",
                zorder=3,
                label=f"pooled ({m.method}, {m.ci_method} interval)",
            )
        positions = list(range(n, -1, -1))
        ax.set_yticks(positions, [*rows["dataset_label"], "pooled"])
        ax.set_ylim(-0.8, n + 0.8)
        ax.set_xlabel(f"test AUC difference {pair.optimizer_b} − {pair.optimizer_a}")
        ax.set_title(f"{pair.model}: {pair.optimizer_b} − {pair.optimizer_a} per data set")
        ax.grid(axis="y", visible=False)
        # the numbers beside their rows, as forest plots print them
        numbers = ax.twinx()
        numbers.set_ylim(ax.get_ylim())
        texts = [_estimate(r.mean_diff, r.ci_low, r.ci_high) for r in rows.itertuples()]
        numbers.set_yticks(positions, [*texts, _estimate(m.estimate, m.ci_low, m.ci_high)])
        numbers.tick_params(axis="y", length=0)
        numbers.grid(False)
        numbers.spines["right"].set_visible(False)
        fig.legend(loc="outside lower center", ncols=2, frameon=False)
    return fig


def _estimate(mean: float, low: float, high: float) -> str:
    """ "+0.012 [-0.010, +0.034]"; the mean alone without an interval."""
    if math.isfinite(low) and math.isfinite(high):
        return f"{fsigned(mean)} [{fsigned(low)}, {fsigned(high)}]"
    return fsigned(mean)


def _stem(pair: PairComparison) -> str:
    return safe_name(f"fig_forest_{pair.model}_{pair.optimizer_b}_vs_{pair.optimizer_a}")


def tables(c: Comparison) -> dict[str, pd.DataFrame]:
    """The comparison's CSV tables, by name (``table_{name}.csv``)."""
    experiments = pd.DataFrame(
        [
            {
                "dataset_label": s.label,
                "experiment": s.experiment,
                "tracking_uri": s.uri,
                "dataset": s.dataset,
                "n_repeats": int(s.scores["repeat"].nunique()),
                "n_folds": int(s.scores.groupby("repeat")["fold"].nunique().max()),
                "n_seeds": int(s.scores["seed"].nunique()),
                "n_runs": len(s.scores),
            }
            for s in c.sources
        ]
    )
    pooled = pd.DataFrame(
        [
            {
                "model": p.model,
                "optimizer_a": p.optimizer_a,
                "optimizer_b": p.optimizer_b,
                "n_datasets": p.meta.n_datasets,
                "method": p.meta.method,
                "ci_method": p.meta.ci_method,
                "estimate": p.meta.estimate,
                "se": p.meta.se,
                "ci_low": p.meta.ci_low,
                "ci_high": p.meta.ci_high,
                "tau2": p.meta.tau2,
                "i2": p.meta.i2,
                "q": p.meta.q,
                "q_df": p.meta.q_df,
                "q_p": p.meta.q_p,
                "bayes_test": p.across.test,
                "rope": p.across.rope,
                "p_a_better": p.across.p_a_better,
                "p_equivalent": p.across.p_equivalent,
                "p_b_better": p.across.p_b_better,
                "bayes_max_p": p.across.max_p,
            }
            for p in c.pairs
        ]
    )
    units = pd.concat(
        [
            p.units.assign(model=p.model, optimizer_a=p.optimizer_a, optimizer_b=p.optimizer_b)
            for p in c.pairs
        ],
        ignore_index=True,
    )
    lead = ["model", "optimizer_a", "optimizer_b", "dataset_label"]
    return {
        "compare_experiments": experiments,
        "compare_datasets": pd.concat([p.per_dataset for p in c.pairs], ignore_index=True),
        "compare_pooled": pooled,
        "compare_unit_differences": units[[*lead, *(x for x in units if x not in lead)]],
    }


def _dataset_rows(pair: PairComparison) -> pd.DataFrame:
    rows = [
        {
            "Data set": r.dataset_label,
            "Units (repeats × folds)": f"{r.n_units} ({r.n_repeats} × {r.k})",
            "B − A [95% CI]": _estimate(r.mean_diff, r.ci_low, r.ci_high),
            "p (corrected t)": fp(r.p),
            "Weight": fpercent(r.weight),
        }
        for r in pair.per_dataset.itertuples(index=False)
    ]
    m = pair.meta
    rows.append(
        {
            "Data set": f"**pooled** ({m.method}, {m.ci_method})",
            "Units (repeats × folds)": f"{m.n_datasets} data set(s)",
            "B − A [95% CI]": _estimate(m.estimate, m.ci_low, m.ci_high),
            "p (corrected t)": "",
            "Weight": "100%" if m.n_datasets else "",
        }
    )
    return pd.DataFrame(rows)


def _csv(written: dict[str, Path], name: str) -> str | None:
    return written[name].name if name in written else None


def compose(c: Comparison, figs: dict[str, FigureFiles], written: dict[str, Path]) -> d.Document:
    """The comparison report: what was compared, then per model and pair the verdict, the data
    sets' rows, the forest plot, the pooled estimate and the Bayesian test; then how to read it."""
    doc = d.Document(f"medbench comparison: {', '.join(c.labels)}")
    units = {
        s.label: f"{s.scores['repeat'].nunique()} × {s.scores['fold'].nunique()}" for s in c.sources
    }
    doc.add(
        d.Paragraph(
            f"{len(c.sources)} experiments, one data set each, compared on the models "
            f"({', '.join(c.models)}) and optimizers ({', '.join(c.optimizers)}) they all have "
            "results for. Within a data set the unit is one fold of one repeat of its "
            "cross-validation (seeds averaged within it); its difference B − A in test AUC "
            "(recomputed from the runs' predictions) is tested with the corrected repeated "
            "k-fold t-test. The data sets are pooled by a random-effects meta-analysis and "
            "judged together by a Bayesian test across data sets."
        ),
        d.Contents(),
    )
    if c.differences:
        doc.add(
            d.Banner(
                "Different settings.",
                "These experiments differ in settings other than their data, compared anyway "
                "(--allow-different): " + "; ".join(c.differences) + ". A difference between "
                "data sets may come from these settings, not from the data.",
            )
        )
    doc.add(
        d.Table(
            pd.DataFrame(
                {
                    "Data set": [s.label for s in c.sources],
                    "Data": [s.dataset for s in c.sources],
                    "Repeats × folds": [units[s.label] for s in c.sources],
                    "Fold runs": [len(s.scores) for s in c.sources],
                    "Store": [f"`{s.uri}`" for s in c.sources],
                }
            ),
            "The experiments compared.",
            _csv(written, "compare_experiments"),
        )
    )
    for pair in c.pairs:
        doc.add(d.Heading(pair.name))
        doc.add(d.Paragraph(f"**{pair.verdict}** {pair.details}"))
        doc.add(
            d.Table(
                _dataset_rows(pair),
                "Per data set: the mean difference over its units with the corrected repeated "
                "k-fold t-test's 95% interval and p; the pooled row is the random-effects "
                "estimate, each data set weighted by 1/(its variance + tau²).",
                _csv(written, "compare_datasets"),
            )
        )
        f = figs.get(_stem(pair))
        if f is not None:
            doc.add(
                d.Image(
                    f.png.name,
                    f.svg.name,
                    "Forest plot: each data set's mean difference and corrected 95% interval "
                    "(marker area: its weight in the pooled estimate), the pooled estimate (diamond) "
                    f"and the region of practical equivalence ±{c.rope:g} (grey).",
                )
            )
        m, b = pair.meta, pair.across
        heterogeneity = (
            f"tau² = {m.tau2:.3g} (spread of the true differences between data sets), "
            f"I² = {fpercent(m.i2)}, Cochran's Q = {m.q:.3g} on {m.q_df} df (p {fp(m.q_p)})"
            if math.isfinite(m.tau2)
            else "no spread between data sets can be estimated"
        )
        doc.add(
            d.Paragraph(
                f"Pooled estimate ({m.method} random effects, {m.ci_method} interval): "
                f"{fsigned(m.estimate)} [{fsigned(m.ci_low)}, {fsigned(m.ci_high)}]; "
                f"{heterogeneity}. {m.note}"
            ),
            d.Paragraph(
                f"Across data sets, {b.test}: P({pair.optimizer_a} better) "
                f"{fpercent(b.p_a_better)}, P(equivalent within ±{b.rope:g}) "
                f"{fpercent(b.p_equivalent)}, P({pair.optimizer_b} better) "
                f"{fpercent(b.p_b_better)}. {b.note}"
            ),
        )
    doc.add(
        d.Heading("How to read this comparison"),
        d.Bullets(
            [
                "Each data set's interval is that of the corrected repeated k-fold t-test "
                "(Nadeau & Bengio 2003; Bouckaert & Frank 2004): repeats narrow it, but never "
                "below what the re-partitioned images themselves allow.",
                "The pooled estimate is the mean of the data sets' true differences under a "
                "random-effects model: it speaks for data sets like these, and with few of them "
                "its interval and tau² rest on few values.",
                "The Bayesian test across data sets treats each data set as one observation: "
                "with few data sets it cannot give a high probability, whatever the results.",
                "A difference that none of these shows is not shown to be absent: the intervals "
                "say how large a difference is still compatible with the data.",
            ]
        ),
    )
    return doc


def write_comparison(c: Comparison, out_dir: str | Path) -> Path:
    """Write the comparison's tables, forest plots, ``report.md`` and ``report.html`` into
    ``out_dir`` (a crash leaves the previous report there)."""
    out = Path(out_dir)
    ensure_folder(out)

    def fill(tmp: Path) -> list[str]:
        written: dict[str, Path] = {}
        for name, frame in tables(c).items():
            if not frame.empty:
                path = tmp / f"table_{name}.csv"
                frame.to_csv(path, index=False)
                written[name] = path
        figs = {}
        for pair in c.pairs:
            figs[_stem(pair)] = save(forest_figure(pair, c.rope), tmp, _stem(pair))
        doc = compose(c, figs, written)
        (tmp / "report.md").write_text(d.to_markdown(doc), encoding="utf-8")
        (tmp / "report.html").write_text(d.to_html(doc, tmp), encoding="utf-8")
        return [p.name for p in written.values()]

    try:
        atomic_folder(out, fill, last="report.html", stage="building")
    except OSError as err:
        raise storage_error(out, err, "cannot write the comparison") from err
    return out


def default_out_dir(experiments: Sequence[str]) -> Path:
    """``reports/compare-A-B`` in the working folder."""
    return Path("reports") / safe_name("compare-" + "-".join(experiments))


def build_comparison(
    experiments: Sequence[str],
    tracking_uris: Sequence[str | None] = (),
    out_dir: str | Path | None = None,
    allow_different: bool = False,
    rope: float | None = None,
) -> Path:
    """``medbench compare``: read the experiments, compare them and write the report; returns
    its folder (by default ``reports/compare-...``)."""
    sources = read_sources(experiments, tracking_uris)
    comparison = compare(sources, allow_different, rope)
    return write_comparison(comparison, out_dir or default_out_dir(experiments))
