"""Tuning nested in cross-validation, end to end: the MLflow contract of trial runs, the chosen
setting, resume inside tuning, and that a trial never sees the test fold."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from medbench.cli import main
from medbench.config import data_settings, load_config
from medbench.engine import tuning
from medbench.pipeline import run_benchmark
from tests.data.layouts import flat_layout
from tests.engine.conftest import TINY

TUNE = ["tune.enabled=true", "tune.trials=2", "tune.epochs=2"]


def _runs(uri: str, name: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[name])


def _split(runs: pd.DataFrame):
    """(fold runs, trial runs) of an experiment's runs."""
    nested = runs[runs["tags.mlflow.parentRunId"].notna()]
    is_trial = nested["tags.medbench.trial"].notna()
    return nested[~is_trial], nested[is_trial]


@pytest.mark.e2e
def test_tuned_grid_on_a_hand_built_flat_dataset(tmp_path, mlflow_uri):
    """The issue's acceptance run: ``--set tune.enabled=true --set tune.trials=2 --set
    tune.epochs=2`` on a dataset medbench did not generate."""
    ds = flat_layout(tmp_path / "flat", n_benign=12, n_malignant=12)
    sets = [*TINY, "data.n_folds=2", f"tracking.uri={mlflow_uri}", "name=flat-tuned", *TUNE]
    sets += ["report.enabled=true", f"report.out={tmp_path / 'report'}"]
    argv = ["run", "demo", "--data-root", str(ds.root)]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 0
    folds, trials = _split(_runs(mlflow_uri, "flat-tuned"))
    assert len(folds) == 4 and set(folds["status"]) == {"FINISHED"}
    assert set(trials["status"]) == {"FINISHED"}
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
    for _, fold in folds.iterrows():
        name = fold["tags.mlflow.runName"]
        mine = trials[trials["tags.mlflow.parentRunId"] == fold["run_id"]]
        # the same number of trials for every optimizer and fold, nested under the fold run
        assert sorted(mine["tags.mlflow.runName"]) == [f"{name}/trial0", f"{name}/trial1"]
        assert sorted(mine["params.trial"]) == ["0", "1"]
        for _, trial in mine.iterrows():
            metrics = client.get_run(trial["run_id"]).data.metrics
            assert not [m for m in metrics if m.startswith("test_")], metrics
            assert "val_auc" in metrics and metrics["gradient_evals"] > 0
        # the fold run's params are the best trial's, and it says it was tuned
        ordered = mine.sort_values("params.trial").reset_index(drop=True)
        best = ordered.loc[ordered["metrics.val_auc"].idxmax()]  # the first on ties
        assert fold["params.lr"] == best["params.lr"]
        assert fold["tags.medbench.tuned"] == "true"
        if fold["params.optimizer"] == "gcsam":
            assert fold["params.rho"] == best["params.rho"] and best["params.rho"]
        else:
            assert pd.isna(fold["params.rho"]) and mine["params.rho"].isna().all()
        assert fold["metrics.tuning_gradient_evals"] == mine["metrics.gradient_evals"].sum()
        assert fold["metrics.tuning_time_s"] == pytest.approx(mine["metrics.train_time_s"].sum())
        assert not math.isnan(fold["metrics.test_auc"])
    # paired across optimizers: a (fold, seed)'s first trial tries the same learning rate
    first = trials[trials["params.trial"] == "0"].copy()
    first["fold"] = first["tags.mlflow.runName"].str.extract(r"fold(\d+)")[0]
    assert (first.groupby("fold")["params.lr"].nunique() == 1).all()
    # the report reads the trials apart from the folds
    from medbench.tracking import load_experiment

    record = load_experiment("flat-tuned", mlflow_uri)
    assert len(record.folds) == 4 and len(record.trials) == 8
    chosen = pd.read_csv(tmp_path / "report" / "table_tuning_chosen.csv").set_index("run_id")
    assert len(chosen) == 4
    for _, fold in folds.iterrows():
        assert chosen.at[fold["run_id"], "lr"] == float(fold["params.lr"])
    assert "### Tuning and compute" in (tmp_path / "report" / "report.md").read_text()


def test_trials_never_see_the_test_fold_and_are_paired(tiny_config, monkeypatch):
    from medbench.engine.train import Base

    seen, starts = [], []
    real = tuning.fit_job

    class Start(Base):
        def started(self, fit):  # the initial weights and the first epoch's batch order
            weights = {k: v.clone() for k, v in fit.model.state_dict().items()}
            ids = fit.data.manifest["id"].to_numpy()[fit.train.order(0).numpy()]
            starts.append((fit.job.fold, weights, ids))

    def spy(job, config, data, device, handlers):
        seen.append((job, data))
        return real(job, config, data, device, [Start(), *handlers])

    monkeypatch.setattr(tuning, "fit_job", spy)
    config = tiny_config(*TUNE)
    run_benchmark(config, report=False, progress=False)
    from medbench.data.dataset import prepare_dataset
    from medbench.engine.runner import fold_data

    dataset = prepare_dataset(data_settings(config.data), 0)
    assert len(seen) == 3 * 2 * 2  # 3 folds x 2 optimizers x 2 trials
    # paired: every trial of a fold, whatever its optimizer, starts from the same weights and
    # sees the same batches
    for fold in (1, 2, 3):
        mine = [s for s in starts if s[0] == fold]
        assert len(mine) == 4
        for _, weights, order in mine[1:]:
            assert all(torch.equal(weights[k], mine[0][1][k]) for k in weights)
            assert np.array_equal(order, mine[0][2])
    for job, data in seen:
        outer = fold_data(dataset, config, job).split
        ids = set(data.manifest["id"])
        test_ids = set(dataset.manifest["id"].iloc[outer.test])
        assert not ids & test_ids
        assert ids == set(dataset.manifest["id"].iloc[np.concatenate([outer.train, outer.val])])
        # not even the images: the trial's tensor holds its training and validation rows only
        assert len(data.images) == len(outer.train) + len(outer.val) == len(data.manifest)
        assert len(data.split.test) == 0
        keep = np.sort(np.concatenate([outer.train, outer.val]))
        assert torch.equal(data.images, dataset.images[torch.as_tensor(keep)])
        train_ids = set(data.manifest["id"].iloc[data.split.train])
        assert train_ids == set(dataset.manifest["id"].iloc[outer.train])


def test_resume_inside_tuning_reruns_no_finished_trial(tiny_config, monkeypatch, mlflow_uri):
    """An interrupt in the third trial; the rerun keeps the two finished trials (same runs) and
    ends where an uninterrupted run ends."""
    extra = [*TUNE, "tune.trials=3", "optimizers=[gcsam]", "data.n_folds=2", "train.threads=1"]
    calls = {"n": 0}
    real = tuning.fit_job

    def interrupt_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "fit_job", interrupt_third)
    config = tiny_config(*extra)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config, report=False, progress=False)
    folds, trials = _split(_runs(config.tracking.uri, "tiny"))
    assert list(folds["status"]) == ["KILLED"]
    assert sorted(trials["status"]) == ["FINISHED", "FINISHED", "KILLED"]
    finished = trials[trials["status"] == "FINISHED"].set_index("run_id")

    monkeypatch.setattr(tuning, "fit_job", real)
    run_benchmark(config, report=False, progress=False)
    folds, trials = _split(_runs(config.tracking.uri, "tiny"))
    assert len(folds) == 2 and set(folds["status"]) == {"FINISHED"}
    assert len(trials) == 6 and set(trials["status"]) == {"FINISHED"}  # the killed one rerun
    kept = trials.set_index("run_id").loc[finished.index]
    assert kept["start_time"].equals(finished["start_time"])  # the same runs, not rerun
    assert kept["metrics.val_auc"].equals(finished["metrics.val_auc"])

    # an uninterrupted run of the same config suggests and chooses the same
    reference = tiny_config(*extra, f"tracking.uri={mlflow_uri.replace('mlflow.db', 'ref.db')}")
    run_benchmark(reference, report=False, progress=False)
    ref_folds, ref_trials = _split(_runs(reference.tracking.uri, "tiny"))

    def by_name(frame, cols):
        return frame.set_index("tags.mlflow.runName")[cols].sort_index()

    cols = ["params.lr", "params.rho"]
    assert by_name(trials, cols).equals(by_name(ref_trials, cols))
    assert by_name(folds, cols).equals(by_name(ref_folds, cols))


def test_a_study_whose_trials_all_diverge_fails_its_job(tiny_config, monkeypatch):
    import medbench.engine.train as train

    real = train.train_epoch

    def diverge(*args, **kwargs):
        stats = real(*args, **kwargs)
        stats.loss = math.nan
        return stats

    monkeypatch.setattr(train, "train_epoch", diverge)
    config = tiny_config(*TUNE, "optimizers=[adam]", "data.n_folds=2")
    result = run_benchmark(config, report=False, progress=False)
    assert {o.status for o in result.outcomes} == {"FAILED"}
    assert all("none of the 2 trials gave a finite val_auc" in o.reason for o in result.outcomes)
    folds, trials = _split(_runs(config.tracking.uri, "tiny"))
    assert set(folds["status"]) == {"FAILED"} and len(trials) == 4
    assert trials["tags.medbench.failure"].str.startswith("diverged: ").all()
    # diverged trials count: a rerun does not retry them, the jobs fail the same way
    again = run_benchmark(config, report=False, progress=False)
    assert {o.status for o in again.outcomes} == {"FAILED"}
    assert len(_split(_runs(config.tracking.uri, "tiny"))[1]) == 4


# -- the search, without training ------------------------------------------------------------------


def _history(rows):
    return pd.DataFrame(rows, columns=["trial", "status", "failure", "lr", "rho", "val_auc"])


def test_suggestions_are_a_function_of_the_history_and_paired_across_optimizers():
    from medbench.config import TuneConfig
    from medbench.engine.jobs import Job

    tune = TuneConfig(enabled=True, trials=4, sampler="random")
    adam, sam = Job("smallcnn", "adam", 1, 0), Job("smallcnn", "sam", 1, 0)
    first = tuning.suggest(tune, adam, _history([]))
    assert first == tuning.suggest(tune, adam, _history([]))  # seeded
    assert set(first) == {"lr"} and 1e-5 <= first["lr"] <= 1e-2
    paired = tuning.suggest(tune, sam, _history([]))
    assert set(paired) == {"lr", "rho"} and paired["lr"] == first["lr"]
    history = _history([[0, "FINISHED", None, first["lr"], None, 0.7]])
    second = tuning.suggest(tune, adam, history)
    assert second != first and second == tuning.suggest(tune, adam, history)
    assert tuning.suggest(tune, Job("smallcnn", "adam", 2, 0), _history([])) != first


def test_grid_sampler_visits_distinct_log_spaced_points():
    from medbench.config import SearchSpaceConfig, TuneConfig
    from medbench.engine.jobs import Job

    space = SearchSpaceConfig(lr_low=1e-4, lr_high=1e-1, grid_points=4)
    tune = TuneConfig(enabled=True, trials=4, sampler="grid", space=space)
    job = Job("smallcnn", "adam", 0, 0)
    rows = []
    for j in range(4):
        lr = tuning.suggest(tune, job, _history(rows))["lr"]
        rows.append([j, "FINISHED", None, lr, None, 0.5 + 0.1 * j])
    assert sorted(r[3] for r in rows) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])


def test_counted_trials_and_the_best_one():
    trials = _history(
        [
            [0, "FINISHED", None, 1e-3, None, 0.7],
            [1, "FAILED", "diverged: training loss became nan in epoch 0", 1e-1, None, math.nan],
            [2, "KILLED", "interrupted by the user", 1e-4, None, math.nan],
            [3, "FAILED", "RuntimeError: out of memory", 1e-4, None, math.nan],
            [4, "FINISHED", None, 2e-3, None, 0.7],
        ]
    )
    kept = tuning.counted(trials)
    assert list(kept["trial"]) == [0, 1, 4]  # a divergence counts: its setting was tried
    assert tuning.best_trial(kept, "val_auc")["trial"] == 0  # the first on ties
    losses = kept.assign(val_loss=[0.3, math.nan, 0.2])
    assert tuning.best_trial(losses, "val_loss")["trial"] == 4
    assert tuning.best_trial(kept.iloc[[1]], "val_auc") is None


def test_trial_config_scales_the_budget():
    config = load_config(
        "demo",
        ["train.epochs=10", *TUNE, "tune.epochs=4", "train.budget.kind=gradient_evals"],
    )
    trial = tuning.trial_config(config, {"lr": 0.01, "rho": 0.2})
    assert trial.train.epochs == 4 and trial.train.budget.gradient_evals is None
    assert trial.optimizer.lr == 0.01 and trial.optimizer.rho == 0.2
    assert not trial.flatness.enabled and config.flatness.enabled  # the grid's is unchanged
    explicit = load_config(
        "demo",
        [
            "train.epochs=10",
            *TUNE,
            "tune.epochs=4",
            "train.budget.kind=gradient_evals",
            "train.budget.gradient_evals=1000",
        ],
    )
    assert tuning.trial_config(explicit, {"lr": 0.01}).train.budget.gradient_evals == 400


@pytest.mark.slow
def test_sigkill_during_tuning_then_rerun_keeps_the_finished_trials(
    tmp_path, tiny_bus, _empty_store
):
    """A hard kill of a real process after some trials: the rerun keeps every finished trial run,
    deletes the one left RUNNING, and completes every study with the same number of trials."""
    import shutil
    import time

    import yaml

    from tests.engine.conftest import start_run

    config = {
        "name": "tuning-kill",
        "models": ["smallcnn"],
        "optimizers": ["adam", "gcsam"],
        "data": {"folds": "stratified", "n_folds": 2, "image_size": 32},
        "train": {"epochs": 2, "batch_size": 16, "threads": 1},
        "tune": {"enabled": True, "trials": 3, "epochs": 15},
        "flatness": {"enabled": False},
        "report": {"enabled": False},
    }
    path = tmp_path / "tuning.yaml"
    path.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(_empty_store, work / "mlflow.db")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    proc = start_run(path, tiny_bus, work, tmp_path / "cache")
    client = mlflow.MlflowClient(tracking_uri=uri)
    deadline = time.time() + 300
    finished: list = []
    while time.time() < deadline and len(finished) < 2:
        assert proc.poll() is None, proc.communicate()
        exp = client.get_experiment_by_name("tuning-kill")
        if exp is not None:
            finished = client.search_runs(
                [exp.experiment_id],
                "tags.`medbench.trial` != '' and attributes.status = 'FINISHED'",
            )
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    before = {r.info.run_id for r in finished}
    assert len(before) >= 2
    left = _runs(uri, "tuning-kill")
    assert "RUNNING" in set(left["status"])  # what the killed process was doing
    rerun = start_run(path, tiny_bus, work, tmp_path / "cache")
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    folds, trials = _split(_runs(uri, "tuning-kill"))
    assert len(folds) == 4 and set(folds["status"]) == {"FINISHED"}
    assert set(trials["status"]) == {"FINISHED"}
    assert (trials.groupby("tags.mlflow.parentRunId").size() == 3).all()
    assert before <= set(trials["run_id"])  # finished trials were not rerun
    assert set(trials["tags.mlflow.parentRunId"]) == set(folds["run_id"])


def _nan_weights_after(real, when):
    """train_epoch, then every weight NaN when ``when(optimizer)``: the loss of the epoch's
    steps stays finite, the validation outputs do not (what lr 5.8e4 did)."""

    def epoch(net, model, optimizer, *args, **kwargs):
        stats = real(net, model, optimizer, *args, **kwargs)
        if when(optimizer):
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(math.nan)
        return stats

    return epoch


def test_a_trial_whose_outputs_go_nan_counts_as_diverged_and_the_study_goes_on(
    tiny_config, monkeypatch
):
    import medbench.engine.train as train

    big = lambda opt: opt.param_groups[0]["lr"] > 1e-3  # noqa: E731
    monkeypatch.setattr(train, "train_epoch", _nan_weights_after(train.train_epoch, big))
    monkeypatch.setattr(
        tuning, "suggest", lambda tune, job, history: {"lr": [5.8e4, 1e-4][len(history)]}
    )
    config = tiny_config(*TUNE, "optimizers=[adam]", "data.n_folds=2")
    result = run_benchmark(config, report=False, progress=False)
    assert {o.status for o in result.outcomes} == {"FINISHED"}
    folds, trials = _split(_runs(config.tracking.uri, "tiny"))
    assert set(folds["status"]) == {"FINISHED"} and set(folds["params.lr"]) == {"0.0001"}
    diverged = trials[trials["params.lr"] == "58000.0"]
    assert len(diverged) == 2 and set(diverged["status"]) == {"FAILED"}
    assert (
        diverged["tags.medbench.failure"]
        .str.startswith("diverged: validation outputs became non-finite after epoch 0")
        .all()
    )
    # counted as tried: a rerun repeats nothing
    again = run_benchmark(config, report=False, progress=False)
    assert {o.status for o in again.outcomes} == {"SKIPPED"}
    assert len(_split(_runs(config.tracking.uri, "tiny"))[1]) == 4


def test_a_diverged_trial_enters_the_study_with_the_worst_objective():
    from medbench.config import TuneConfig
    from medbench.engine.jobs import Job

    assert tuning.worst("val_auc") == -math.inf and tuning.worst("val_loss") == math.inf
    tune = TuneConfig(enabled=True, trials=4, sampler="tpe")  # 2 random trials, then TPE
    job = Job("smallcnn", "adam", 0, 0)
    diverged = [0, "FAILED", "diverged: ...", 1e-2, None, math.nan]
    history = _history([diverged, [1, "FINISHED", None, 1e-5, None, 0.7]])
    nxt = tuning.suggest(tune, job, history)["lr"]
    # TPE learns the diverged region is the worst: its next setting is near the good one
    assert abs(math.log10(nxt) - math.log10(1e-5)) < abs(math.log10(nxt) - math.log10(1e-2))
    assert nxt == tuning.suggest(tune, job, history)["lr"]  # seeded: the same on a rerun


def test_a_trial_run_left_without_its_params_resumes_with_exit_0(
    tiny_config, monkeypatch, mlflow_uri, capsys
):
    """The state a kill between a trial run's creation and its params left (issue 25 #2: the
    rerun crashed in pandas' IntCastingNaNError): a run carrying only the trial's key, nested
    under an unfinished fold run. The rerun deletes it, reruns that trial and finishes."""
    from medbench.tracking import schema as s

    extra = [*TUNE, "optimizers=[adam]", "data.n_folds=2"]
    real, calls = tuning.fit_job, {"n": 0}

    def interrupt_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "fit_job", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(tiny_config(*extra), report=False, progress=False)
    monkeypatch.setattr(tuning, "fit_job", real)
    folds, trials = _split(_runs(mlflow_uri, "tiny"))
    [fold_run] = folds["run_id"]
    assert folds["status"].tolist() == ["KILLED"]
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
    for run_id in trials.loc[trials["status"] != "FINISHED", "run_id"]:
        client.delete_run(run_id)  # as if the kill came before trial 1 was made
    exp = client.get_experiment_by_name("tiny").experiment_id
    client.create_run(
        exp,
        tags={
            s.TAG_TRIAL: s.trial_key("smallcnn", "adam", 0, 0, 1),
            s.TAG_PARENT_RUN_ID: fold_run,
        },
    )

    sets = [*TINY, *extra, f"tracking.uri={mlflow_uri}", "name=tiny"]
    argv = ["run", "demo", "--data-root", str(tiny_config().data.root), "--no-report"]
    assert main(argv + [a for item in sets for a in ("--set", item)]) == 0, capsys.readouterr()
    folds, trials = _split(_runs(mlflow_uri, "tiny"))
    assert set(folds["status"]) == {"FINISHED"} and len(folds) == 2
    assert set(trials["status"]) == {"FINISHED"} and len(trials) == 4
    assert trials["params.trial"].notna().all()  # the half-made run is gone
