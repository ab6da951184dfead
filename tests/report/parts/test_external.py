"""The External validation numbers against hand computations (scikit-learn, SciPy), and the
section, tables and figures they make."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from medbench.metrics import resampled_metrics
from medbench.report import document as d
from medbench.report.analysis import analyse
from medbench.report.build import compose, write_report
from medbench.report.external_test import compare_external
from medbench.report.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, stratified_counts
from tests.report.generated import N_IMAGES, UNITS, make_record

N_EXTERNAL = 30


def _external(record) -> pd.DataFrame:
    """Predictions of every finished unit on one external dataset ``bra`` of 30 images."""
    rng = np.random.default_rng(11)
    labels = (np.arange(N_EXTERNAL) % 3 == 0).astype(int)
    frames = []
    for model, opt, fold in UNITS:
        probs = np.clip(0.3 * labels + 0.7 * rng.random(N_EXTERNAL), 0, 1)
        frames.append(
            pd.DataFrame(
                {
                    "run_id": f"{model}-{opt}-{fold}",
                    "model": model,
                    "optimizer": opt,
                    "seed": 0,
                    "dataset": "bra",
                    "id": [f"x{i}" for i in range(N_EXTERNAL)],
                    "site": np.where(np.arange(N_EXTERNAL) < 10, "GE", "Toshiba"),
                    "fold": fold,
                    "label": labels,
                    "prob_malignant": probs,
                    "birads_reader1": np.where(labels == 1, "4", "3"),
                    "birads_reader2": "",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def record():
    rec = make_record()
    return dataclasses.replace(rec, external=_external(rec))


@pytest.fixture(scope="module")
def ext(record):
    return analyse(record).result("external")


def _auc(frame, run_id):
    part = frame[frame["run_id"] == run_id]
    return roc_auc_score(part["label"], part["prob_malignant"])


def test_per_unit_metrics_and_the_internal_auc_beside_them(record, ext):
    assert ext.datasets == ["bra"]
    assert len(ext.per_unit) == len(UNITS)
    internal = analyse(make_record()).inputs.per_unit.set_index("run_id")["auc"]
    for row in ext.per_unit.itertuples():
        assert row.auc == pytest.approx(_auc(record.external, row.run_id))
        assert row.n_test == N_EXTERNAL and row.n_malignant == 10
        assert row.internal_auc == pytest.approx(internal[row.run_id], nan_ok=True)


@pytest.mark.e2e
def test_summary_matches_hand_computation(record, ext):
    row = ext.summary.set_index(["model", "optimizer", "dataset"]).loc[("m", "adam", "bra")]
    runs = ["m-adam-1", "m-adam-2", "m-adam-3"]
    external = np.array([_auc(record.external, r) for r in runs])
    assert row["auc_mean"] == pytest.approx(external.mean())
    assert row["auc_std"] == pytest.approx(external.std(ddof=1))
    # a bootstrap over the external images: a possible interval around the mean
    assert 0 <= row["auc_ci_low"] <= row["auc_mean"] <= row["auc_ci_high"] <= 1
    own = make_record().predictions
    internal = np.array([_auc(own, r) if r != "m-adam-2" else np.nan for r in runs])
    # fold 2's test part has one class: no internal AUC, so neither gap nor internal counts it
    assert row["internal_auc_n"] == 2 and row["gap_auc_n"] == 2
    assert row["internal_auc_mean"] == pytest.approx(np.nanmean(internal))
    assert row["gap_auc_mean"] == pytest.approx(np.nanmean(external - internal))
    mean = record.external[record.external["run_id"].isin(runs)].groupby("id")
    probs, labels = mean["prob_malignant"].mean(), mean["label"].first()
    assert row["mean_prob_auc"] == pytest.approx(roc_auc_score(labels, probs))
    counts = stratified_counts(labels.astype(str).to_numpy(), BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
    aucs = []
    for w in counts:  # by hand: scikit-learn's AUC on each resample of the images
        y, p = np.repeat(labels.to_numpy(), w), np.repeat(probs.to_numpy(), w)
        aucs.append(roc_auc_score(y, p))
    low, high = np.percentile(aucs, [2.5, 97.5])
    assert row["mean_prob_auc_ci_low"] == pytest.approx(low)
    assert row["mean_prob_auc_ci_high"] == pytest.approx(high)
    assert resampled_metrics(labels, probs, counts[:1])["auc"][0] == pytest.approx(aucs[0])
    assert row["n_units"] == 3 and row["n_images"] == N_EXTERNAL and row["n_malignant"] == 10
    single = ext.summary.set_index(["model", "optimizer"]).loc[("n", "adam")]
    # one checkpoint: no spread over folds, but an interval over the external images
    assert single["n_units"] == 1 and np.isnan(single["auc_std"])
    assert 0 <= single["auc_ci_low"] <= single["auc_ci_high"] <= 1


def test_paired_comparison_on_the_external_set(record, ext):
    row = ext.paired[(ext.paired["model"] == "m") & (ext.paired["metric"] == "auc")].iloc[0]
    adam = [_auc(record.external, f"m-adam-{f}") for f in (1, 2)]
    sam = [_auc(record.external, f"m-sam-{f}") for f in (1, 2)]
    assert (row["optimizer_a"], row["optimizer_b"], row["n_folds"]) == ("adam", "sam", 2)
    assert row["mean_diff"] == pytest.approx(np.mean(np.subtract(sam, adam)))
    assert row["dataset"] == "bra" and row["n_images"] == N_EXTERNAL
    # the fold models' external predictions, tested by compare_external with the internal
    # folds' n_test / n_train (the images outside each test fold: these runs logged no n_train)
    ext_preds = record.external.sort_values("id").set_index("run_id")  # images in id order
    scores = {
        opt: np.vstack([ext_preds.loc[f"m-{opt}-{f}", "prob_malignant"] for f in (1, 2)])
        for opt in ("adam", "sam")
    }
    labels = ext_preds.loc["m-adam-1", "label"].to_numpy()
    ratio = N_IMAGES / (3 * N_IMAGES - N_IMAGES)  # 3 folds of 24 test images
    direct = compare_external(labels, scores["adam"], scores["sam"], ratio)
    assert row["test_train_ratio"] == pytest.approx(ratio)
    assert row["p"] == pytest.approx(direct.test.p)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (direct.test.ci_low, direct.test.ci_high)
    )
    assert row["p_holm"] == pytest.approx(row["p"]) and row["family_size"] == 1


@pytest.mark.e2e
def test_external_p_does_not_grow_with_the_external_set(record):
    """The same fold differences on an external set ten times as large (every image ten times:
    each fold model's AUC is unchanged) give a smaller p (issue 22 #3), where, as in real data,
    the fold models agree on which images are hard (a latent score every model shares).

    (Where each model's errors fall on images of its own, compare_external attributes more of
    the same spread to training as the image noise shrinks: with 2 fold models and n_test /
    n_train 0.5, p then rose by 0.0004 when the images of ``_external`` were repeated.)"""
    rng = np.random.default_rng(5)
    latent = rng.standard_normal(N_EXTERNAL)
    shared = record.external.assign(
        prob_malignant=lambda f: 1
        / (1 + np.exp(-(latent[f["id"].str[1:].astype(int)] + 1.5 * f["label"]
                        + 0.3 * rng.standard_normal(len(f)))))
    )  # fmt: skip
    copies = pd.concat(
        [shared.assign(id=shared["id"] + f"-{k}") for k in range(10)], ignore_index=True
    )
    small = analyse(dataclasses.replace(record, external=shared)).result("external").paired
    large = analyse(dataclasses.replace(record, external=copies)).result("external").paired
    s, big = small.iloc[0], large.iloc[0]
    assert big["mean_diff"] == pytest.approx(s["mean_diff"])
    assert big["n_images"] == 10 * s["n_images"]
    assert big["image_var"] < s["image_var"] / 5
    assert big["p"] < s["p"]


def test_readers_of_the_external_set_are_placed_on_its_roc(ext):
    reader = ext.readers[
        (ext.readers["model"] == "m") & (ext.readers["reader"] == "birads_reader1")
    ]
    assert reader.iloc[0]["sensitivity"] == 1.0 and reader.iloc[0]["specificity"] == 1.0
    assert set(ext.roc["dataset"]) == {"bra"} and ext.roc["tpr_mean"].between(0, 1).all()


def test_a_run_tested_on_external_data_only_counts(record):
    only = record.external[record.external["run_id"] == "m-adam-1"].assign(
        run_id="m-adam-9", fold=9
    )
    folds = pd.concat(
        [record.folds, record.folds.iloc[[0]].assign(run_id="m-adam-9", fold=9, end_time=99)]
    )
    rec = dataclasses.replace(
        record, folds=folds, external=pd.concat([record.external, only], ignore_index=True)
    )
    a = analyse(rec)
    assert "m-adam-9" in set(a.inputs.inventory.units["run_id"])
    assert "m-adam-9" not in set(a.inputs.per_unit["run_id"])  # no internal test predictions
    assert "m-adam-9" in set(a.result("external").per_unit["run_id"])


@pytest.mark.e2e
def test_section_tables_and_figures(record, tmp_path):
    record = dataclasses.replace(record, folds=record.folds.assign(start_time=0))  # as read
    a = analyse(record)
    out = write_report(record, a, tmp_path, log=False)
    text = (out / "report.md").read_text()
    section = text[text.index("## External validation") :]
    section = section[: section.index("\n## ", 5)]
    assert "`bra` (30 images, 10 malignant)" in section
    assert "| m | adam | 3 |" in section and "| n | adam | 1 |" in section  # dataset: caption
    assert "sam − adam" in section
    assert (
        "fig_external_roc_bra_m.png" in section and (out / "fig_external_roc_bra_m.svg").is_file()
    )
    table = pd.read_csv(out / "table_external.csv")
    assert len(table) == 3 and set(table["dataset"]) == {"bra"}
    assert len(pd.read_csv(out / "table_external_per_fold.csv")) == len(UNITS)
    plain = dataclasses.replace(make_record(), folds=record.folds)
    without = compose(analyse(plain), {}, {})
    headings = [b.text for b in without.blocks if isinstance(b, d.Heading)]
    assert "External validation" not in headings
