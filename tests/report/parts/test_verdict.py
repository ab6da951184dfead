import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from medbench.report.analysis import analyse
from medbench.report.build import build_report, read_experiment, write_report
from medbench.report.parts import comparisons
from medbench.report.parts.verdict_numbers import against_baseline
from medbench.report.stats import corrected_resampled_ttest
from tests.report.parts.seeded_units import seeded_units
from tests.report.truth_store import make_calibrated, make_repeated, make_running, make_worse

REPO = Path(__file__).resolve().parents[3]


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


# -- stores whose truth is known by construction (tests/report/truth_store.py) -------------------

#: The columns table_paired_tests.csv had before issue 22: kept, in this order, with their meaning.
PAIRED_COLUMNS = [
    "model", "metric", "optimizer_a", "optimizer_b", "n_pairs", "n_unpaired", "mean_a",
    "mean_b", "mean_diff", "diff_ci_low", "diff_ci_high", "t_statistic", "t_p",
    "wilcoxon_statistic", "wilcoxon_p", "wilcoxon_min_p", "caveat", "n_folds",
    "test_train_ratio", "corrected_t", "corrected_t_p", "corrected_ci_low", "corrected_ci_high",
    "p_holm", "family_size", "rope", "p_a_better", "p_equivalent", "p_b_better",
]  # fmt: skip
NEW_COLUMNS = ["n_repeats", "test_status", "corrected_se", "mdd", "max_p_equivalent"]


def _store(tmp_path_factory, empty, name):
    root = tmp_path_factory.mktemp(name)
    shutil.copy(empty, root / "mlflow.db")
    return root, f"sqlite:///{root / 'mlflow.db'}"


@pytest.fixture(scope="module")
def worse(_empty_store, tmp_path_factory):
    """The ``worse`` store, reported by ``medbench report`` in a subprocess (its terminal
    output too)."""
    root, uri = _store(tmp_path_factory, _empty_store, "worse")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # MLflow puts a SQLite store's artifacts in the working folder
        written = make_worse(uri)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": uri}
    run = subprocess.run(
        [sys.executable, "-m", "medbench", "report", "worse", "--out", str(root / "out")],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return written, root / "out", run.stdout


@pytest.mark.e2e
def test_a_loser_with_a_failed_run_is_never_called_the_best(worse):
    """(a) sam is worse than adam on every paired fold, and its run of adam's hard fold failed:
    its own mean is the higher, yet nothing calls it highest or better, and the significant
    difference is said to be worse (issue 22 #1)."""
    written, out, stdout = worse
    own = {
        opt: np.mean([roc_auc_score(p["label"], p["prob_malignant"]) for (o, _), p in
                      written.items() if o == opt])
        for opt in ("adam", "sam")
    }  # fmt: skip
    assert own["sam"] > own["adam"]  # what "highest mean" over each one's own folds said
    common = [f for (o, f) in written if o == "sam"]
    diffs = [
        roc_auc_score(written["sam", f]["label"], written["sam", f]["prob_malignant"])
        - roc_auc_score(written["adam", f]["label"], written["adam", f]["prob_malignant"])
        for f in common
    ]
    assert max(diffs) < 0  # worse on every paired fold
    paired = pd.read_csv(out / "table_paired_tests.csv")
    auc = paired[paired["metric"] == "auc"].iloc[0]
    assert (auc["optimizer_a"], auc["optimizer_b"], auc["n_folds"]) == ("adam", "sam", 4)
    assert auc["mean_diff"] == pytest.approx(np.mean(diffs))  # recomputed from predictions
    assert auc["p_holm"] < 0.05 and auc["test_status"] == "tested"
    md = (out / "report.md").read_text()
    verdict = md[md.index("## Verdict") : md.index("## How to read")]
    first = verdict.split("\n\n")[1]
    assert first.startswith("**tiny: sam is significantly worse than adam: -0.")
    assert "on the 4 folds every optimizer finished" in first
    for claim in ("sam had the highest", "sam is significantly better", "sam is very probably "
                  "better", "highest mean"):  # fmt: skip
        assert claim not in md
    glance = verdict[verdict.index("### At a glance") :]
    row = next(line for line in glance.splitlines() if line.startswith("| tiny |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].startswith("**") and not cells[3].startswith("**")  # adam AUC in bold
    # the terminal prints the same bottom line
    assert "verdict  tiny: sam is significantly worse than adam" in stdout
    assert "significantly better" not in stdout
    # (c) the CSV keeps its columns, in order, and adds the new ones
    assert list(paired.columns[: len(PAIRED_COLUMNS)]) == PAIRED_COLUMNS
    assert set(NEW_COLUMNS) <= set(paired.columns[len(PAIRED_COLUMNS) :])
    assert auc["mdd"] > 0 and 0 < auc["max_p_equivalent"] <= 1


@pytest.fixture(scope="module")
def calibrated(_empty_store, tmp_path_factory):
    root, uri = _store(tmp_path_factory, _empty_store, "calibrated")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        written = make_calibrated(uri)
        out = build_report("calibrated", tracking_uri=uri, out_dir=root / "out", log=False)
    return written, out


@pytest.mark.e2e
def test_optimizers_that_rank_every_fold_alike_are_never_called_different(calibrated):
    """(b) sam's scores are adam's, rescaled per fold: no printed test may call them different,
    although pooling the folds gives them different AUCs (issue 22 #2)."""
    written, out = calibrated
    pooled = pd.read_csv(out / "table_pooled_auc.csv").set_index("optimizer")
    assert abs(pooled.at["sam", "auc"] - pooled.at["adam", "auc"]) > 0.01  # calibration bites
    assert pooled.at["sam", "fold_stratified_auc"] == pooled.at["adam", "fold_stratified_auc"]
    paired = pd.read_csv(out / "table_paired_tests.csv")
    assert set(paired["test_status"]) == {"identical"}
    assert paired["corrected_t_p"].isna().all() and paired["p_holm"].isna().all()
    assert (paired["family_size"] == 0).all()
    fold_auc = pd.read_csv(out / "table_paired_fold_auc.csv").iloc[0]
    assert bool(fold_auc["identical"]) and np.isnan(fold_auc["p"])
    assert fold_auc["auc_diff"] == 0
    md = (out / "report.md").read_text()
    # no test printed anywhere calls them different: no significant cell, no direction, no odds
    assert re.search(r"\*\*significant\*\*\s*\|", md) is None
    assert "significantly" not in md and "very probably" not in md
    assert "p < 0.001" not in md and "< 0.001" not in md
    verdict = md[md.index("## Verdict") : md.index("## How to read")]
    assert verdict.split("\n\n")[1] == (
        "**tiny: sam is identical to adam on every paired fold. At equal epochs, not equal "
        "compute: sam spent 2.0× adam's forward-backward passes.**"
    )
    assert "identical on every one of the 5 paired folds, no test" in verdict
    assert "smallest adjusted p" not in md and "Too few paired folds" not in md


@pytest.fixture(scope="module")
def repeated(_empty_store, tmp_path_factory):
    root, uri = _store(tmp_path_factory, _empty_store, "repeated")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        written = make_repeated(uri)
        record = read_experiment("repeated", uri)
        a = analyse(record)
        out = write_report(record, a, root / "out", log=False)
    return written, a, out


@pytest.mark.e2e
def test_repeated_cross_validation_tests_the_r_times_k_units(repeated):
    """Issue 23 #2: the unit is (repeat, fold); the corrected repeated k-fold t-test over the 6
    differences, recomputed from table_fold_differences.csv, and the Bayesian test equals
    baycomp's CorrelatedTTest with runs=2."""
    baycomp = pytest.importorskip("baycomp")
    written, a, out = repeated
    per_fold = pd.read_csv(out / "table_per_fold.csv")
    assert sorted(set(per_fold["repeat"])) == [1, 2] and len(per_fold) == 12
    diffs = pd.read_csv(out / "table_fold_differences.csv")
    auc = diffs[diffs["metric"] == "auc"].sort_values(["repeat", "fold"])
    assert list(zip(auc["repeat"], auc["fold"], strict=True)) == [
        (r, f) for r in (1, 2) for f in (1, 2, 3)
    ]
    for row in auc.itertuples():
        pa, pb = written["adam", row.repeat, row.fold], written["sam", row.repeat, row.fold]
        expected = roc_auc_score(pb["label"], pb["prob_malignant"]) - roc_auc_score(
            pa["label"], pa["prob_malignant"]
        )
        assert row.diff == pytest.approx(expected)
    paired = pd.read_csv(out / "table_paired_tests.csv")
    test = paired[paired["metric"] == "auc"].iloc[0]
    assert test["n_folds"] == 6 and test["n_repeats"] == 2
    assert test["test_train_ratio"] == pytest.approx(0.5)
    nb = corrected_resampled_ttest(auc["diff"].to_numpy(), 0.5)
    assert test["corrected_t_p"] == pytest.approx(nb.p, abs=1e-9)
    d = auc["diff"].to_numpy()
    by_hand = sps.t.sf(abs(d.mean()) / math.sqrt((1 / 6 + 0.5) * d.var(ddof=1)), 5) * 2
    assert test["corrected_t_p"] == pytest.approx(by_hand, abs=1e-9)
    a, b = auc["value_a"].to_numpy(), auc["value_b"].to_numpy()
    theirs = baycomp.CorrelatedTTest.probs(a, b, rope=0.01, runs=2)
    got = (test["p_a_better"], test["p_equivalent"], test["p_b_better"])
    assert got == pytest.approx(theirs, abs=1e-9)
    per_repeat = pd.read_csv(out / "table_repeat_differences.csv")
    mine = per_repeat[per_repeat["metric"] == "auc"].set_index("repeat")["mean_diff"]
    assert mine.to_dict() == pytest.approx(auc.groupby("repeat")["diff"].mean().to_dict())
    assert (out / "fig_repeat_differences.png").is_file()
    md = (out / "report.md").read_text()
    assert "6 folds of 2 repeats" in md and "The unit is the fold of one repeat" in md
    assert "2 repeats × 3 folds" in md


def test_without_repeats_the_tables_have_no_repeat_column(worse):
    _, out, _ = worse
    for name in ("table_per_fold.csv", "table_fold_differences.csv", "table_failed_runs.csv"):
        assert "repeat" not in pd.read_csv(out / name).columns, name


@pytest.mark.e2e
def test_a_report_of_a_running_grid_says_so_first_and_gives_no_verdict(
    _empty_store, tmp_path_factory
):
    """Issue 25 #9: built while its grid runs (sam's fold 2 RUNNING, 3 fold runs not started,
    the parents RUNNING), the report says how far the grid had come before anything else and
    names no winner from the one fold both optimizers finished."""
    root, uri = _store(tmp_path_factory, _empty_store, "running")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        make_running(uri)
        record = read_experiment("running", uri)
        a = analyse(record)
        out = write_report(record, a, root / "out", log=False)
    grid = a.result("verdict").grid
    assert (grid.n_expected, grid.n_recorded, grid.n_finished, grid.n_running) == (10, 7, 6, 1)
    assert grid.unfinished and grid.n_parents_running == 2
    md = (out / "report.md").read_text()
    banner = "**UNFINISHED GRID: 6 of 10 fold runs finished (1 running, 3 not started).**"
    assert md.index(banner) < md.index("SYNTHETIC DATA") < md.index("## Verdict")
    line = a.result("verdict").bottom_lines["tiny"]
    assert line == (
        "Unfinished grid, 6 of 10 fold runs finished (1 running, 3 not started): no verdict "
        "yet: only one fold finished under every optimizer."
    )
    glance = md[md.index("### At a glance") :]
    assert "no value in bold: the grid is unfinished" in glance
    assert "**0." not in glance[: glance.index("Full precision")]
