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

The reading of the experiments and the numbers (the verdict sentence included) are in
:mod:`medbench.report.compare_analysis`; this module writes the report (tables, forest plots,
Markdown and HTML) and is the command's entry point (:func:`build_comparison`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from medbench.paths import atomic_folder, ensure_folder, storage_error
from medbench.report import document as d
from medbench.report.compare_analysis import (
    Comparison,
    PairComparison,
    compare,
    estimate_text,
    read_sources,
)
from medbench.report.figures import FigureFiles, safe_name, save, styled, subplots
from medbench.report.formatting import fp, fpercent, fsigned

# -- the report -----------------------------------------------------------------------------------


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
        texts = [estimate_text(r.mean_diff, r.ci_low, r.ci_high) for r in rows.itertuples()]
        numbers.set_yticks(positions, [*texts, estimate_text(m.estimate, m.ci_low, m.ci_high)])
        numbers.tick_params(axis="y", length=0)
        numbers.grid(False)
        numbers.spines["right"].set_visible(False)
        fig.legend(loc="outside lower center", ncols=2, frameon=False)
    return fig


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
            "B − A [95% CI]": estimate_text(r.mean_diff, r.ci_low, r.ci_high),
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
            "B − A [95% CI]": estimate_text(m.estimate, m.ci_low, m.ci_high),
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
