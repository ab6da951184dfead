"""The reading and the numbers of ``medbench compare`` (:mod:`medbench.report.compare`): each
experiment's record, config and unit scores, the settings that differ between them, and per model
and pair of optimizers the data sets' differences, their random-effects pooling, the Bayesian test
across data sets and the verdict sentence. Apart from the report that shows them
(:mod:`medbench.report.compare`), so that each module stays small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.config import Config, config_from_logged, hashed_settings
from medbench.errors import ConfigError, TrackingError
from medbench.report.build import read_experiment
from medbench.report.differences import PairedDifference, paired_difference, pairs, unit_scores
from medbench.report.formatting import fnum, fpercent, fsigned
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


# -- reading --------------------------------------------------------------------------------------


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


# -- the numbers ----------------------------------------------------------------------------------


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
    pooled = f"pooled {b} − {a} {estimate_text(meta.estimate, meta.ci_low, meta.ci_high)}"
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


def estimate_text(mean: float, low: float, high: float) -> str:
    """ "+0.012 [-0.010, +0.034]"; the mean alone without an interval."""
    if math.isfinite(low) and math.isfinite(high):
        return f"{fsigned(mean)} [{fsigned(low)}, {fsigned(high)}]"
    return fsigned(mean)
