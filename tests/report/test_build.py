"""The report built from a small store: files, every table number recomputed with scikit-learn /
SciPy from the predictions written to MLflow, self-contained HTML, links, failures, logging."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from tests.report.mlflow_store import (
    FAILED,
    FAILURE,
    FOLDS,
    MODEL,
    OPTIMIZERS,
    READER_OVERRIDES,
    THRESHOLD,
    split_sizes,
)

POSITIVE = {"4", "4a", "4b", "4c", "5", "6"}
VALID = {"1", "2", "3", *POSITIVE}


def finished(store, opt):
    return [f for f in FOLDS if (opt, f) in store.predictions]


def sk_metrics(pred: pd.DataFrame) -> dict[str, float]:
    y, p = pred["label"].to_numpy(), pred["prob_malignant"].to_numpy()
    c = (p >= THRESHOLD).astype(int)
    return {
        "auc": roc_auc_score(y, p),
        "accuracy": accuracy_score(y, c),
        "sensitivity": recall_score(y, c),
        "specificity": recall_score(1 - y, 1 - c),
        "f1": f1_score(y, c),
        "balanced_accuracy": balanced_accuracy_score(y, c),
        "brier": brier_score_loss(y, p),
        "ece": ece(y, p),
    }


def ece(y, p, n_bins=10):
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    return sum(
        (idx == b).sum() / len(p) * abs(y[idx == b].mean() - p[idx == b].mean())
        for b in range(n_bins)
        if (idx == b).any()
    )


def t_ci(values):
    v = np.asarray(values, dtype=float)
    lo, hi = sps.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=sps.sem(v))
    return v.mean(), v.std(ddof=1), lo, hi


def table(out, name):
    return pd.read_csv(out / name)


def row(df, **where):
    mask = np.ones(len(df), bool)
    for k, v in where.items():
        mask &= (df[k] == v).to_numpy()
    assert mask.sum() == 1, where
    return df[mask].iloc[0]


def test_every_figure_written(built):
    _, out = built
    stems = [
        f"fig_roc_{MODEL}",
        "fig_auc_accuracy_ci",
        "fig_paired_folds_auc",
        "fig_differences",
        "fig_learning_curves",
        "fig_training_cost",
        f"fig_confusion_{MODEL}",
        f"fig_reliability_{MODEL}",
        f"fig_flatness_{MODEL}",
        "fig_tuning",
        "fig_val_auc_by_compute",
    ]
    for stem in stems:
        for ext in ("png", "svg"):
            path = out / f"{stem}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # print resolution: pHYs chunk holds pixels per metre (200 dpi = 7874)
        png = (out / f"{stem}.png").read_bytes()
        ppm = int.from_bytes(png[png.index(b"pHYs") + 4 : png.index(b"pHYs") + 8], "big")
        assert ppm >= 7870


def test_performance_matches_sklearn(built):
    store, out = built
    perf = table(out, "table_performance.csv")
    per_fold = table(out, "table_per_fold.csv")
    for opt in OPTIMIZERS:
        folds = finished(store, opt)
        per = [sk_metrics(store.predictions[(opt, f)]) for f in folds]
        r = row(perf, model=MODEL, optimizer=opt)
        assert r["n_finished"] == len(folds) and r["n_expected"] == len(FOLDS)
        assert r["n_folds"] == len(folds) and r["n_seeds"] == 1
        assert bool(r["complete"]) == (opt != FAILED[0])
        for m in ("auc", "accuracy", "sensitivity", "specificity", "f1", "balanced_accuracy"):
            mean, std, _, _ = t_ci([p[m] for p in per])
            assert r[f"{m}_mean"] == pytest.approx(mean, abs=1e-12), m
            assert r[f"{m}_std"] == pytest.approx(std, abs=1e-12), m
            # a bootstrap interval over images: possible values only, around the mean
            assert 0 <= r[f"{m}_ci_low"] <= r[f"{m}_mean"] <= r[f"{m}_ci_high"] <= 1, m
        for f, p in zip(folds, per, strict=True):
            fr = row(per_fold, optimizer=opt, fold=f)
            for m, v in p.items():
                assert fr[m] == pytest.approx(v, abs=1e-12), (opt, f, m)
            sizes = split_sizes(f)
            assert (fr["n_train"], fr["n_val"], fr["n_test"]) == (
                sizes["n_train"],
                sizes["n_val"],
                sizes["n_test"],
            )


def test_calibration_matches_sklearn(built):
    store, out = built
    cal = table(out, "table_calibration.csv")
    for opt in OPTIMIZERS:
        per = [sk_metrics(store.predictions[(opt, f)]) for f in finished(store, opt)]
        r = row(cal, optimizer=opt)
        mean, std, _, _ = t_ci([p["brier"] for p in per])
        assert (r["brier_mean"], r["brier_std"]) == pytest.approx((mean, std), abs=1e-12)
        assert 0 <= r["brier_ci_low"] <= r["brier_mean"] <= r["brier_ci_high"] <= 1
        # ECE: median and quartiles over folds (its bootstrap would lie above the estimate)
        q25, median, q75 = np.quantile([p["ece"] for p in per], [0.25, 0.5, 0.75])
        assert (r["ece_median"], r["ece_q25"], r["ece_q75"]) == pytest.approx((median, q25, q75))
        assert "ece_ci_low" not in cal


def pooled_predictions(store, opt):
    frames = [store.predictions[(opt, f)] for f in finished(store, opt)]
    return pd.concat(frames).sort_values(["fold", "id"], kind="stable")


def test_pooled_auc_matches_sklearn(built):
    from medbench.report.stats import stratified_counts

    store, out = built
    pooled = table(out, "table_pooled_auc.csv")
    # the resamples: every test image of the model, by id, stratified by fold, site and label
    images = pd.concat(store.predictions.values()).drop_duplicates("id").sort_values("id")
    strata = images["fold"].astype(str) + "|" + images["site"] + "|" + images["label"].astype(str)
    for opt in OPTIMIZERS:
        pred = pooled_predictions(store, opt)
        y, p = pred["label"].to_numpy(), pred["prob_malignant"].to_numpy()
        r = row(pooled, optimizer=opt)
        assert r["n_images"] == len(y) and r["n_folds"] == len(finished(store, opt))
        assert r["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        counts = stratified_counts(
            strata.to_numpy(), int(r["n_resamples"]), int(r["bootstrap_seed"])
        )
        cols = pd.Index(images["id"]).get_indexer(pred["id"])
        aucs = [roc_auc_score(y, p, sample_weight=w) for w in counts[:, cols]]
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(
            tuple(np.percentile(aucs, [2.5, 97.5])), abs=1e-12
        )
        assert r["ci_low"] < r["auc"] < r["ci_high"]


def test_paired_tests_match_scipy(built):
    store, out = built
    paired = table(out, "table_paired_tests.csv")
    common = [f for f in FOLDS if all((o, f) in store.predictions for o in OPTIMIZERS)]
    a, b = OPTIMIZERS
    ratio = np.mean([split_sizes(f)["n_test"] / split_sizes(f)["n_train"] for f in common])
    for metric in ("auc", "accuracy"):
        va = np.array([sk_metrics(store.predictions[(a, f)])[metric] for f in common])
        vb = np.array([sk_metrics(store.predictions[(b, f)])[metric] for f in common])
        r = row(paired, metric=metric, optimizer_a=a, optimizer_b=b)
        assert r["n_pairs"] == r["n_folds"] == len(common) and r["n_unpaired"] == 1
        mean, _, lo, hi = t_ci(vb - va)
        assert (r["mean_diff"], r["diff_ci_low"], r["diff_ci_high"]) == pytest.approx(
            (mean, lo, hi), abs=1e-12
        )
        t = sps.ttest_rel(vb, va)
        assert (r["t_statistic"], r["t_p"]) == pytest.approx((t.statistic, t.pvalue), abs=1e-12)
        w = sps.wilcoxon(vb - va)
        assert (r["wilcoxon_statistic"], r["wilcoxon_p"]) == pytest.approx(
            (w.statistic, w.pvalue), abs=1e-12
        )
        assert "cannot go below" in r["caveat"]  # 3 pairs: Wilcoxon can never reach 0.05
        scale = np.sqrt((1 / len(common) + ratio) * np.var(vb - va, ddof=1))
        assert r["test_train_ratio"] == pytest.approx(ratio)
        assert r["corrected_t_p"] == pytest.approx(2 * sps.t.sf(abs(mean / scale), len(common) - 1))
        assert r["family_size"] == 1 and r["p_holm"] == pytest.approx(r["corrected_t_p"])


def test_confusion_and_sites_match_sklearn(built):
    store, out = built
    conf = table(out, "table_confusion.csv")
    sites = table(out, "table_sites.csv")
    for opt in OPTIMIZERS:
        pred = pooled_predictions(store, opt)
        c = (pred["prob_malignant"] >= THRESHOLD).astype(int)
        tn, fp, fn, tp = confusion_matrix(pred["label"], c, labels=[0, 1]).ravel()
        r = row(conf, optimizer=opt)
        assert (r["tn"], r["fp"], r["fn"], r["tp"]) == (tn, fp, fn, tp)
        for site in ("GDPH", "SYSUCC"):
            per = [
                sk_metrics(by_site(store.predictions[(opt, f)], site)) for f in finished(store, opt)
            ]
            r = row(sites, optimizer=opt, site=site)
            assert r["n_units"] == r["n_folds"] == len(per)
            for m in ("auc", "accuracy", "sensitivity", "specificity"):
                mean, std, _, _ = t_ci([p[m] for p in per])
                assert (r[f"{m}_mean"], r[f"{m}_std"]) == pytest.approx((mean, std), abs=1e-12)
                assert 0 <= r[f"{m}_ci_low"] <= r[f"{m}_ci_high"] <= 1


def by_site(pred, site):
    return pred[pred["site"] == site]


def norm(v):
    v = str(v).strip().lower() if isinstance(v, str) else ""
    return v if v in VALID else None


def test_readers_and_kappa_match_sklearn(built):
    store, out = built
    images = (
        pd.concat(store.predictions.values()).drop_duplicates("id").sort_values("id")
    )  # every image is in some finished run here
    readers = table(out, "table_readers.csv")
    for reader in ("birads_reader1", "birads_reader2"):
        cats = images[reader].map(norm)
        keep = cats.notna()
        calls = cats[keep].isin(POSITIVE).astype(int)
        y = images.loc[keep, "label"]
        r = row(readers, reader=reader)
        raw = images[reader].astype(str).str.strip()
        assert r["n_missing"] == (raw == "").sum()
        assert r["n_stray"] == ((raw != "") & cats.isna()).sum()
        assert r["n_missing"] + r["n_stray"] > 0
        assert r["sensitivity"] == pytest.approx(recall_score(y, calls))
        assert r["specificity"] == pytest.approx(recall_score(1 - y, 1 - calls))
        tp, n_pos = int(((calls == 1) & (y == 1)).sum()), int((y == 1).sum())
        wilson = sps.binomtest(tp, n_pos).proportion_ci(0.95, method="wilson")
        assert (r["sensitivity_ci_low"], r["sensitivity_ci_high"]) == pytest.approx(
            (wilson.low, wilson.high)
        )
    assert (readers["n_stray"] > 0).any()
    both = images["birads_reader1"].map(norm).notna() & images["birads_reader2"].map(norm).notna()
    c1 = images.loc[both, "birads_reader1"].map(norm)
    c2 = images.loc[both, "birads_reader2"].map(norm)
    ag = table(out, "table_reader_agreement.csv").iloc[0]
    assert ag["n_both_assessed"] == both.sum()
    assert ag["kappa_categories"] == pytest.approx(cohen_kappa_score(c1, c2))
    assert ag["kappa_calls"] == pytest.approx(
        cohen_kappa_score(c1.isin(POSITIVE), c2.isin(POSITIVE))
    )
    ordinal = {"1": 0, "2": 1, "3": 2, "4a": 3, "4": 4, "4b": 4, "4c": 5, "5": 6, "6": 7}
    for weights in ("linear", "quadratic"):
        want = cohen_kappa_score(
            c1.map(ordinal), c2.map(ordinal), weights=weights, labels=list(range(8))
        )
        assert ag[f"kappa_{weights}"] == pytest.approx(want)
        assert -1 <= ag[f"kappa_{weights}_ci_low"] < want < ag[f"kappa_{weights}_ci_high"] <= 1
    # the upper-case "4A" and the plain "4" count as positive calls
    assert "4A" in READER_OVERRIDES["birads_reader1"].values()


def test_model_vs_readers_matches_sklearn(built):
    store, out = built
    vs = table(out, "table_model_vs_readers.csv")
    for opt in OPTIMIZERS:
        pred = pooled_predictions(store, opt)
        for reader in ("birads_reader1", "birads_reader2"):
            cats = pred[reader].map(norm)
            keep = cats.notna().to_numpy()
            y = pred["label"].to_numpy()[keep]
            p = pred["prob_malignant"].to_numpy()[keep]
            calls = cats[keep].isin(POSITIVE).astype(int).to_numpy()
            sens_r, spec_r = recall_score(y, calls), recall_score(1 - y, 1 - calls)
            fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
            r = row(vs, optimizer=opt, reader=reader)
            assert r["n_images"] == keep.sum()
            assert (r["reader_sensitivity"], r["reader_specificity"]) == pytest.approx(
                (sens_r, spec_r)
            )
            assert r["model_sensitivity_at_reader_specificity"] == pytest.approx(
                tpr[(1 - fpr) >= spec_r - 1e-12].max()
            )
            low = r["model_sensitivity_at_reader_specificity_ci_low"]
            high = r["model_sensitivity_at_reader_specificity_ci_high"]
            assert 0 <= low <= r["model_sensitivity_at_reader_specificity"] <= high <= 1
            assert r["model_specificity_at_reader_sensitivity"] == pytest.approx(
                (1 - fpr)[tpr >= sens_r - 1e-12].max()
            )


def test_flatness_and_cost_tables(built):
    store, out = built
    flat = table(out, "table_flatness.csv")
    cost = table(out, "table_cost.csv")
    for opt in OPTIMIZERS:
        folds = finished(store, opt)
        r = row(flat, optimizer=opt)
        for key in ("hessian_top_eigenvalue", "hessian_trace", "sam_sharpness"):
            values = [store.flatness[(opt, f)][key] for f in folds]
            mean, std, _, _ = t_ci(values)
            assert (r[f"{key}_mean"], r[f"{key}_std"]) == pytest.approx((mean, std))
            q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
            assert (r[f"{key}_median"], r[f"{key}_q25"], r[f"{key}_q75"]) == pytest.approx(
                (median, q25, q75)
            )
        c = row(cost, optimizer=opt)
        assert c["n_units"] == len(folds) and c["epochs_median"] == 6
        assert c["train_time_s_median"] == pytest.approx(6.5 if opt == "adam" else 12.5)
        assert c["epoch_time_s_q25"] > 0


def test_learning_curves_and_time_to_the_selected_epoch(built):
    store, out = built
    curves = table(out, "table_learning_curves.csv")
    cost = table(out, "table_cost_per_fold.csv")
    for opt in OPTIMIZERS:
        folds = finished(store, opt)
        for metric in ("train_loss", "val_auc", "epoch_time_s"):
            for step in range(6):
                v = np.array([store.curves[(opt, f)][step][metric] for f in folds])
                r = row(curves, optimizer=opt, metric=metric, step=step)
                assert (r["mean"], r["std"], r["n"]) == pytest.approx(
                    (v.mean(), v.std(ddof=1), len(v))
                )
                assert (r["q25"], r["q75"]) == pytest.approx(tuple(np.quantile(v, [0.25, 0.75])))
        for f in folds:
            hist = store.curves[(opt, f)]
            r = row(cost, optimizer=opt, fold=f)
            # the store's runs selected epoch 3 (their best_epoch), not the argmax of val AUC
            assert r["best_epoch"] == 3
            assert r["time_to_best_epoch_s"] == pytest.approx(
                sum(h["epoch_time_s"] for h in hist[:4])
            )
            assert r["epoch_time_s"] == pytest.approx(np.mean([h["epoch_time_s"] for h in hist]))


def test_markdown_links_resolve_and_show_the_failure(built):
    _, out = built
    md = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)\s#]+)\)", md)
    assert links and all((out / link).is_file() for link in links), links
    pngs = [x for x in links if x.endswith(".png")]
    # every figure written is shown once: tuning (by trial and by trials used), validation AUC
    # by compute and AUC vs compute included
    assert len(pngs) == 13 and set(pngs) == {f.name for f in out.glob("fig_*.png")}
    assert FAILURE in md and "3/4 (incomplete)" in md
    fails = table(out, "table_failed_runs.csv")
    r = row(fails, optimizer=FAILED[0], fold=FAILED[1])
    assert r["status"] == "FAILED" and r["reason"] == FAILURE
    # the Markdown shows the same numbers as the CSV, rounded
    perf = row(table(out, "table_performance.csv"), optimizer="adam")
    assert f"{perf['auc_mean']:.3f} ± {perf['auc_std']:.3f}" in md
    # the answer first, the configuration folded into the appendix
    order = [
        "SYNTHETIC DATA",
        "**Contents:**",
        "## Verdict",
        "fig_roc_tiny.png",
        "fig_differences.png",
        "## How to read these numbers",
        "## Protocol",
        "## Appendix",
        "<details>",
        "### Configuration",
        "threshold: 0.4",
        "### Environment",
        "</details>",
    ]
    places = [md.index(part) for part in order]
    assert places == sorted(places), order
    assert "never used" in md


def test_html_is_self_contained_with_contents_and_csv_links(built):
    _, out = built
    html = (out / "report.html").read_text()
    srcs = re.findall(r"""\bsrc\s*=\s*["']([^"']*)["']""", html, flags=re.I)
    hrefs = re.findall(r"""\bhref\s*=\s*["']([^"']*)["']""", html, flags=re.I)
    images = re.findall(r"<img\b", html)
    assert len(images) == 13  # as many as report.md shows
    assert srcs and all(s.startswith("data:image/svg+xml;base64,") for s in srcs)
    assert "<script" not in html and "<link" not in html and "url(" not in html
    assert FAILURE in html
    # the table of contents points at headings that exist; the CSV links at files beside it
    anchors = [h[1:] for h in hrefs if h.startswith("#")]
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    assert "verdict" in anchors and "appendix" in anchors and set(anchors) <= ids
    csvs = [h for h in hrefs if not h.startswith("#")]
    assert csvs and all(re.fullmatch(r"table_\w+\.csv", h) and (out / h).is_file() for h in csvs)
    assert "table_paired_tests.csv" in csvs
    assert '<div class="banner"' in html and "<details><summary>" in html


def test_report_logged_to_parent_runs(built):
    from mlflow import MlflowClient

    store, out = built
    client = MlflowClient(tracking_uri=store.uri)
    expected = {p.name for p in out.iterdir()}
    for pid in store.parent_ids.values():
        names = {a.path.split("/", 1)[1] for a in client.list_artifacts(pid, "report")}
        assert names == expected


def test_closing_table_agrees_with_the_report_to_the_last_digit(built):
    from medbench.report.analysis import analyse
    from medbench.report.build import read_experiment
    from medbench.report.summary import render_summary, summary_table
    from tests.report.mlflow_store import EXPERIMENT

    store, out = built
    md = (out / "report.md").read_text()
    lines = render_summary(summary_table(analyse(read_experiment(EXPERIMENT, store.uri))))
    for line in lines.splitlines()[1:]:
        _, opt, auc, accuracy, _ = re.split(r"\s{2,}", line)  # cells hold single spaces
        row_md = next(x for x in md.splitlines() if x.startswith(f"| {opt} | ") and "±" in x)
        assert f"| {auc} [" in row_md and f"| {accuracy} [" in row_md, line
