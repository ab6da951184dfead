"""A report built from runs with several seeds (``seeded_store``): every per-comparison number is
recomputed independently from ``table_per_fold.csv`` and the published formulas, and the report
answers first, with possible intervals only and one optimizer order everywhere."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from tests.report.seeded_store import CONFIG, EXPERIMENT, FOLDS, OPTIMIZERS, SEEDS, split_sizes

pytestmark = pytest.mark.e2e  # grids, reports or generated datasets end to end

ROPE = CONFIG["report"]["rope"]
PAIRS = [(a, b) for i, a in enumerate(OPTIMIZERS) for b in OPTIMIZERS[i + 1 :]]


@pytest.fixture(scope="module")
def seeded(_empty_store, tmp_path_factory):
    import shutil

    from medbench.report.build import build_report
    from tests.report.seeded_store import make_seeded_store

    root = tmp_path_factory.mktemp("seeded")
    shutil.copy(_empty_store, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        store = make_seeded_store(uri)
        out = build_report(EXPERIMENT, tracking_uri=uri, out_dir=root / "out", log=False)
    return store, out


def fold_means(per_fold: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Optimizer columns, fold rows: the mean over seeds."""
    return per_fold.pivot_table(index="fold", columns="optimizer", values=metric, aggfunc="mean")


def test_per_fold_table_holds_every_run_with_its_split(seeded):
    _, out = seeded
    per_fold = pd.read_csv(out / "table_per_fold.csv")
    assert len(per_fold) == len(OPTIMIZERS) * len(FOLDS) * len(SEEDS)
    for row in per_fold.itertuples():
        sizes = split_sizes(row.fold)
        assert (row.n_train, row.n_val, row.n_test) == (
            sizes["n_train"],
            sizes["n_val"],
            sizes["n_test"],
        )


def test_every_comparison_recomputed_from_the_per_fold_table(seeded):
    _, out = seeded
    per_fold = pd.read_csv(out / "table_per_fold.csv")
    paired = pd.read_csv(out / "table_paired_tests.csv")
    assert list(zip(paired["optimizer_a"], paired["optimizer_b"], strict=True)) == [
        pair for pair in PAIRS for _ in ("auc", "accuracy")
    ]
    for metric in ("auc", "accuracy"):
        means = fold_means(per_fold, metric)
        ratio_per_fold = (per_fold["n_test"] / per_fold["n_train"]).groupby(per_fold["fold"]).mean()
        ratio = ratio_per_fold.mean()
        rows, p_corrected = [], []
        for a, b in PAIRS:
            d = (means[b] - means[a]).to_numpy()
            k = len(d)
            scale = math.sqrt((1 / k + ratio) * d.var(ddof=1))
            t = d.mean() / scale
            p = 2 * sps.t.sf(abs(t), k - 1)
            half = sps.t.ppf(0.975, k - 1) * scale
            posterior = sps.t(k - 1, loc=d.mean(), scale=scale)
            r = paired[
                (paired["metric"] == metric)
                & (paired["optimizer_a"] == a)
                & (paired["optimizer_b"] == b)
            ].iloc[0]
            want = {
                "n_folds": k,
                "n_pairs": k * len(SEEDS),
                "mean_a": means[a].mean(),
                "mean_b": means[b].mean(),
                "mean_diff": d.mean(),
                "t_p": sps.ttest_rel(means[b], means[a]).pvalue,
                "test_train_ratio": ratio,
                "corrected_t": t,
                "corrected_t_p": p,
                "corrected_ci_low": d.mean() - half,
                "corrected_ci_high": d.mean() + half,
                "rope": ROPE,
                "p_a_better": posterior.cdf(-ROPE),
                "p_equivalent": posterior.cdf(ROPE) - posterior.cdf(-ROPE),
                "p_b_better": posterior.sf(ROPE),
            }
            for key, value in want.items():
                assert r[key] == pytest.approx(value, abs=1e-6), (metric, a, b, key)
            rows.append(r)
            p_corrected.append(p)
        # Holm by hand over the family of this metric: the three pairs
        order = np.argsort(p_corrected)
        holm = np.empty(3)
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, (3 - rank) * p_corrected[i])
            holm[i] = min(1.0, running)
        for r, want in zip(rows, holm, strict=True):
            assert r["family_size"] == 3
            assert r["p_holm"] == pytest.approx(want, abs=1e-6)


def test_seeds_are_not_counted_as_independent_folds(seeded):
    _, out = seeded
    per_fold = pd.read_csv(out / "table_per_fold.csv")
    paired = pd.read_csv(out / "table_paired_tests.csv")
    wide = per_fold.pivot_table(index=["fold", "seed"], columns="optimizer", values="auc")
    per_run = sps.ttest_rel(wide["adam"], wide["sam"])  # 15 "pairs"
    folds = wide.groupby(level="fold").mean()
    per_folds = sps.ttest_rel(folds["adam"], folds["sam"])
    assert per_run.pvalue < 0.01 and per_folds.pvalue > 0.05
    r = paired[(paired["metric"] == "auc") & (paired["optimizer_a"] == "sam")]
    r = r[r["optimizer_b"] == "adam"].iloc[0]
    assert r["t_p"] == pytest.approx(per_folds.pvalue, abs=1e-9)
    assert r["corrected_t_p"] > r["t_p"] > 0.05  # and the correction widens it further


def test_seed_spread_is_reported_apart(seeded):
    _, out = seeded
    per_fold = pd.read_csv(out / "table_per_fold.csv")
    spread = pd.read_csv(out / "table_seed_spread.csv")
    r = spread[(spread["optimizer"] == "sam") & (spread["metric"] == "auc")].iloc[0]
    mine = per_fold[per_fold["optimizer"] == "sam"]
    within = mine.groupby("fold")["auc"].var(ddof=1)
    assert r["n_seeds"] == 3 and r["n_folds"] == 5
    assert r["seed_std"] == pytest.approx(math.sqrt(within.mean()))
    assert r["fold_std"] == pytest.approx(mine.groupby("fold")["auc"].mean().std(ddof=1))
    assert r["seed_std"] < r["fold_std"]
    md = (out / "report.md").read_text()
    assert "### Seed-to-seed spread" in md and "The 3 seeds of a fold" in md


def test_the_report_answers_first(seeded):
    _, out = seeded
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    paired = pd.read_csv(out / "table_paired_tests.csv")
    # the verdict opens with the bottom line, then gives each difference from adam, turned round
    # here because adam is B of (sam, adam); it names no winner that no test supports
    r = paired[(paired["metric"] == "auc") & (paired["optimizer_a"] == "sam")]
    r = r[r["optimizer_b"] == "adam"].iloc[0]
    verdict = md[md.index("## Verdict") : md.index("## How to read")]
    assert verdict.split("\n\n")[1].startswith("**tiny: ")
    assert "highest mean" not in verdict
    lo, hi = -r["corrected_ci_high"], -r["corrected_ci_low"]
    assert f"sam − adam {-r['mean_diff']:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}" in verdict
    assert "Holm's adjustment over the 3 AUC comparisons" in verdict
    assert f"{100 * r['p_a_better']:.0f}% that sam is better than adam" in verdict
    assert md.index("SYNTHETIC DATA") < md.index("## Verdict") < md.index("fig_roc_tiny.png")
    assert md.index("fig_differences.png") < md.index("## How to read these numbers")
    assert "## Appendix\n\n<details>" in md and md.rstrip().endswith("</details>")
    # HTML: a table of contents whose links resolve, the appendix folded, CSV links kept
    assert '<nav class="toc">' in html and html.index("<nav") < html.index('id="verdict"')
    anchors = re.findall(r'href="#([^"]+)"', html)
    assert set(anchors) <= set(re.findall(r'\bid="([^"]+)"', html))
    assert {"verdict", "how-to-read-these-numbers", "appendix"} <= set(anchors)
    details = html[html.index("<details>") : html.index("</details>")]
    assert "Configuration" in details and "Environment" in details
    assert 'href="table_paired_tests.csv"' in html
    how = md[md.index("## How to read these numbers") : md.index("## Protocol")]
    for words in ("The unit is the fold", "Holm", "family", "non-significant result", "±0.02"):
        assert words in how


#: CSVs of differences (may be negative) and their columns left out of the [0, 1] check.
DIFFERENCE_TABLES = {"table_paired_tests.csv", "table_paired_fold_auc.csv"}
POSITIVE_TABLES = {
    "table_cost.csv",
    "table_flatness.csv",
    "table_time_to_target.csv",
    "table_total_cost.csv",
    "table_equal_compute.csv",
}


def test_every_interval_in_every_csv_is_possible(seeded):
    _, out = seeded
    checked = 0
    for path in sorted(out.glob("table_*.csv")):
        frame = pd.read_csv(path)
        bounds = [c for c in frame if re.search(r"(ci_low|ci_high|q25|q75)$", c)]
        if path.name in DIFFERENCE_TABLES or not bounds:
            continue
        for col in bounds:
            values = frame[col].dropna()
            if col.startswith("kappa"):
                assert values.between(-1, 1).all(), (path.name, col)
            elif path.name in POSITIVE_TABLES:
                assert (values >= 0).all(), (path.name, col)
                if col.startswith("auc"):
                    assert (values <= 1).all(), (path.name, col)
            elif path.name == "table_learning_curves.csv":
                continue  # losses, AUCs and times together: checked per metric below
            else:
                assert values.between(0, 1).all(), (path.name, col)
            checked += 1
        lows = [c for c in bounds if c.endswith("ci_low")]
        for low in lows:
            high = low[: -len("low")] + "high"
            ok = frame[[low, high]].dropna()
            assert (ok[low] <= ok[high]).all(), (path.name, low)
    assert checked >= 20
    curves = pd.read_csv(out / "table_learning_curves.csv")
    assert (curves["q25"] >= 0).all() and (curves["q25"] <= curves["q75"]).all()


def test_one_optimizer_order_in_every_table(seeded):
    _, out = seeded
    order = list(OPTIMIZERS)
    for path in sorted(out.glob("table_*.csv")):
        frame = pd.read_csv(path)
        for col in ("optimizer", "optimizer_a"):
            if col in frame:
                seen = list(dict.fromkeys(frame[col]))
                assert seen == [o for o in order if o in seen], (path.name, seen)
    md = (out / "report.md").read_text()
    for block in re.findall(r"(?:^\|.*\|\n)+", md, flags=re.M):
        header, *rows = block.splitlines()
        cols = [c.strip() for c in header.strip("|").split("|")]
        if "Optimizer" in cols:
            i = cols.index("Optimizer")
            seen = list(dict.fromkeys(r.strip("|").split("|")[i].strip() for r in rows[1:]))
            assert seen == [o for o in order if o in seen], (header, seen)
    glance = md[md.index("### At a glance") : md.index("All 45 fold runs finished")]
    assert glance.index("sam AUC") < glance.index("adam AUC") < glance.index("gcsam AUC")


def test_fidelity_and_compute_are_shown(seeded):
    _, out = seeded
    md = (out / "report.md").read_text()
    fidelity = pd.read_csv(out / "table_fidelity.csv")
    assert list(fidelity["optimizer"]) == ["sam", "gcsam"]
    assert list(fidelity["fidelity_min"]) == pytest.approx([1.0, 0.62])
    assert "**Warning: fidelity fell below 0.9** for tiny/gcsam (min 0.620)" in md
    assert (out / "fig_auc_vs_compute.png").is_file() and "fig_auc_vs_compute.png" in md
    cost = pd.read_csv(out / "table_cost.csv").set_index("optimizer")
    assert cost.loc["sam", "gradient_evals_median"] == 2 * cost.loc["adam", "gradient_evals_median"]
