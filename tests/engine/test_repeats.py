"""Repeated cross-validation through the real engine: names, params, tags, seeds, partitions,
aggregates, resume (in-process and after a SIGKILL), tuning across repeats, and the corrected
repeated k-fold test recomputed from the runs."""

import math
import os
import shutil
import signal
import subprocess
import sys
import time

import baycomp
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from medbench.engine.jobs import Job, data_seed, init_seed, study_seed, val_seed
from medbench.pipeline import run_benchmark
from medbench.report.differences import paired_difference, unit_scores
from medbench.report.stats import bayesian_correlated_ttest, corrected_resampled_ttest
from medbench.tracking import load_experiment
from tests.engine.conftest import child_runs, start_run


def _predictions(client, run_id) -> pd.DataFrame:
    return pd.read_csv(client.download_artifacts(run_id, "predictions.csv"))


def test_repeat_one_keeps_the_seeds_and_later_repeats_draw_their_own():
    one, again = Job("smallcnn", "adam", 2, 0), Job("smallcnn", "adam", 2, 0, repeat=1)
    assert one == again and one.run_name == "smallcnn/adam/fold2"
    assert one.key == "smallcnn/adam/fold2/seed0"
    two = Job("smallcnn", "adam", 2, 0, repeat=2)
    assert two.run_name == "smallcnn/adam/r2/fold2" and two.key == "smallcnn/adam/r2/fold2/seed0"
    for seed in (init_seed, data_seed, val_seed, study_seed):
        assert seed(two) != seed(one)
        assert seed(two) == seed(Job("smallcnn", "gcsam", 2, 0, repeat=2))  # paired
    assert val_seed(one) == val_seed(Job("resnet18", "sam", 4, 0))  # as before repeats existed


def test_a_repeated_grid_names_tags_partitions_and_aggregates_its_runs(tiny_config):
    config = tiny_config("cv.repeats=2")
    result = run_benchmark(config, report=False, progress=False)
    uri = config.tracking.uri
    kids = child_runs(uri, "tiny")
    assert len(kids) == 12 and set(kids["status"]) == {"FINISHED"}
    names = {
        f"smallcnn/{o}/{r}fold{k}"
        for o in ("adam", "gcsam")
        for r in ("", "r2/")
        for k in (1, 2, 3)
    }
    assert set(kids["tags.mlflow.runName"]) == names
    assert set(kids["params.repeat"]) == {"1", "2"}
    assert (kids["tags.medbench.repeat"] == kids["params.repeat"]).all()
    assert kids["tags.mlflow.runName"].str.contains("/r2/").eq(kids["params.repeat"] == "2").all()
    client = mlflow.MlflowClient(tracking_uri=uri)
    test_ids = {}
    for _, run in kids.iterrows():
        preds = _predictions(client, run["run_id"])
        assert set(preds["repeat"]) == {int(run["params.repeat"])}
        assert set(preds["fold"].astype(str)) == {run["params.fold"]}
        test_ids[(run["params.optimizer"], run["params.repeat"], run["params.fold"])] = set(
            preds["id"]
        )
    for opt in ("adam", "gcsam"):
        for repeat in ("1", "2"):  # each repeat's test folds partition the 60 images
            parts = [test_ids[(opt, repeat, str(k))] for k in (1, 2, 3)]
            assert sum(map(len, parts)) == 60 and len(set().union(*parts)) == 60
    assert any(test_ids[("adam", "1", k)] != test_ids[("adam", "2", k)] for k in "123")
    # the paired design holds within a repeat, not across repeats
    seeds = kids.set_index(["params.optimizer", "params.repeat", "params.fold"])["params.init_seed"]
    assert seeds[("adam", "2", "1")] == seeds[("gcsam", "2", "1")] != seeds[("adam", "1", "1")]
    # the parent's aggregates are over the 6 (repeat, fold) units
    parents = mlflow.search_runs(
        experiment_names=["tiny"], filter_string="tags.`medbench.parent` LIKE '%'"
    )
    for _, parent in parents.iterrows():
        mine = kids[kids["tags.mlflow.parentRunId"] == parent["run_id"]]
        assert parent["metrics.cv_test_auc_mean"] == pytest.approx(mine["metrics.test_auc"].mean())
        assert parent["tags.medbench.n_finished"] == "6" and parent["status"] == "FINISHED"
    record = load_experiment("tiny", uri)
    assert record.folds["repeat"].dtype.kind == "i" and set(record.folds["repeat"]) == {1, 2}
    again = run_benchmark(config, report=False, progress=False)
    assert {o.status for o in again.outcomes} == {"SKIPPED"} and len(again.outcomes) == 12
    assert sorted(child_runs(uri, "tiny")["run_id"]) == sorted(kids["run_id"])
    assert len(result.outcomes) == 12


def test_more_repeats_reuse_the_runs_of_the_first(tiny_config):
    pilot = tiny_config("optimizers=[adam]")
    first = run_benchmark(pilot, report=False, progress=False)
    uri = pilot.tracking.uri
    before = child_runs(uri, "tiny")
    assert "params.repeat" not in before and "tags.medbench.repeat" not in before  # r = 1
    more = run_benchmark(
        tiny_config("optimizers=[adam]", "cv.repeats=3"), report=False, progress=False
    )
    assert first.grid.select == more.grid.select  # same config hash and data: same parents
    statuses = [o.status for o in more.outcomes]
    assert statuses.count("SKIPPED") == 3 and statuses.count("FINISHED") == 6
    after = child_runs(uri, "tiny")
    assert len(after) == 9 and set(before["run_id"]) <= set(after["run_id"])
    record = load_experiment("tiny", uri)
    assert record.folds.groupby("repeat").size().to_dict() == {1: 3, 2: 3, 3: 3}
    parent = mlflow.search_runs(
        experiment_names=["tiny"], filter_string="tags.`medbench.parent` LIKE '%'"
    )
    assert parent["tags.medbench.n_finished"].tolist() == ["9"]
    assert yaml.safe_load(mlflow.artifacts.load_text(f"runs:/{parent['run_id'][0]}/config.yaml"))[
        "cv"
    ] == {"repeats": 3}  # the parent's config says what its runs are now


def test_tuning_nests_each_repeats_trials_under_its_fold_run(tiny_config):
    config = tiny_config(
        "optimizers=[adam]",
        "data.n_folds=2",
        "cv.repeats=2",
        "tune.enabled=true",
        "tune.trials=2",
        "tune.epochs=1",
        "tune.sampler=random",
    )
    run_benchmark(config, report=False, progress=False)
    runs = child_runs(config.tracking.uri, "tiny")
    trials = runs[runs["tags.medbench.trial"].notna()]
    folds = runs[runs["tags.medbench.trial"].isna()].set_index("run_id")
    assert len(folds) == 4 and len(trials) == 8
    for _, trial in trials.iterrows():
        owner = folds.loc[trial["tags.mlflow.parentRunId"]]
        assert trial["tags.mlflow.runName"].startswith(owner["tags.mlflow.runName"] + "/trial")
    assert {n for n in trials["tags.mlflow.runName"] if "/r2/" in n} == {
        f"smallcnn/adam/r2/fold{k}/trial{t}" for k in (1, 2) for t in (0, 1)
    }
    # each (repeat, fold) study draws its own settings
    lr = trials.groupby("tags.mlflow.runName")["params.lr"].first()
    assert lr["smallcnn/adam/fold1/trial0"] != lr["smallcnn/adam/r2/fold1/trial0"]


CONFIG = {
    "name": "repeats",
    "models": ["smallcnn"],
    "optimizers": ["adam", "sam", "gcsam"],
    "cv": {"repeats": 3},
    "data": {"folds": "stratified", "n_folds": 2, "image_size": 16},
    "optimizer": {"lr": 0.003},
    "train": {"epochs": 8, "batch_size": 16, "early_stopping": {"patience": 8}, "threads": 1},
    "flatness": {"enabled": False},
    "report": {"enabled": False},
    "executor": {"jobs_per_device": 2},  # packed: two worker processes
}


def _wait_for_repeat_two(cache, proc, timeout: float = 300) -> None:
    """Wait until a job of repeat 2 has written a checkpoint (repeat 1 done, the grid mid-way)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        folder = cache / "checkpoints"
        if folder.exists() and any("__r2__" in p.name for p in folder.rglob("*.pt")):
            return
        if proc.poll() is not None:
            pytest.fail(f"medbench run ended early: {proc.communicate()}")
        time.sleep(0.02)
    pytest.fail("no checkpoint of repeat 2 appeared")


@pytest.mark.slow
def test_a_killed_repeated_grid_resumes_without_duplicates_and_tests_over_r_k_units(
    tmp_path, tiny_bus, _empty_store
):
    config_path = tmp_path / "repeats.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    shutil.copy(_empty_store, work / "mlflow.db")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    proc = start_run(config_path, tiny_bus, work, cache)
    _wait_for_repeat_two(cache, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = child_runs(uri, "repeats")
    assert 6 <= len(before) < 18 and "RUNNING" in set(before["status"])
    rerun = start_run(config_path, tiny_bus, work, cache)
    out, err = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, err
    assert "1 model(s) x 3 optimizer(s) x 3 repeats x 2 folds x 1 seed(s) = 18 jobs" in err
    after = child_runs(uri, "repeats")
    assert len(after) == 18 and set(after["status"]) == {"FINISHED"}
    assert after["tags.mlflow.runName"].is_unique and set(before["run_id"]) <= set(after["run_id"])
    assert after.groupby("params.repeat").size().to_dict() == {"1": 6, "2": 6, "3": 6}
    assert (after["tags.medbench.repeat"] == after["params.repeat"]).all()

    # the corrected repeated k-fold test over the r·k = 6 units, recomputed by hand
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        record = load_experiment("repeats", uri)
    scores = unit_scores(record)
    runs = after.set_index("run_id")
    for opt_a, opt_b in (("adam", "sam"), ("adam", "gcsam"), ("sam", "gcsam")):
        pair = paired_difference(scores, "smallcnn", opt_a, opt_b)
        units = pair.units.set_index(["repeat", "fold"])
        assert len(units) == 6 and pair.n_repeats == 3 and pair.k == 2
        by_unit = {}
        for name in (opt_a, opt_b):  # the logged test AUC of each unit's run
            mine = runs[runs["params.optimizer"] == name]
            by_unit[name] = mine.set_index(
                [mine["params.repeat"].astype(int), mine["params.fold"].astype(int)]
            )["metrics.test_auc"]
        d = (by_unit[opt_b] - by_unit[opt_a]).reindex(units.index).to_numpy()
        np.testing.assert_allclose(units["diff"], d, atol=1e-9)
        n_test = runs["params.n_test"].astype(float)
        ratio = float((n_test / runs["params.n_train"].astype(float)).mean())
        t = d.mean() / math.sqrt((1 / 6 + ratio) * d.var(ddof=1))
        p = 2 * sps.t.sf(abs(t), 5)
        test = corrected_resampled_ttest(units["diff"], pair.ratio)
        assert pair.ratio == pytest.approx(ratio, abs=1e-12)
        assert test.df == 5 and test.p == pytest.approx(p, abs=1e-6)
        assert pair.test.p == pytest.approx(p, abs=1e-6)
        # baycomp's correlated t-test with runs = 3 (its ratio 1/(k - 1) = 1)
        a, b = units["a"].to_numpy(), units["b"].to_numpy()
        theirs = baycomp.CorrelatedTTest.probs(a, b, rope=0.01, runs=3)
        ours = bayesian_correlated_ttest(b - a, 1 / (2 - 1), 0.01)
        np.testing.assert_allclose(
            (ours.p_a_better, ours.p_equivalent, ours.p_b_better), theirs, atol=1e-9
        )

    # and the pilot plans its repeats: how many, and what they cost
    plan = subprocess.run(
        [sys.executable, "-m", "medbench", "plan", "repeats", "--delta", "0.2"],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "MEDBENCH_CACHE_DIR": str(cache), "MLFLOW_TRACKING_URI": uri},
        timeout=300,
    )
    assert plan.returncode == 0, plan.stderr
    assert "pilot: repeats (3 repeat(s) x 2 folds, 1 seed(s))" in plan.stdout
    assert "repeats needed" in plan.stdout and "smallcnn gcsam − adam" in plan.stdout
    assert "minimum detectable difference by repeats" in plan.stdout
