"""Equal compute: budgets in forward-backward passes and seconds, and time to target."""

from __future__ import annotations

import math

import mlflow
import pytest
import torch

from medbench.config import load_config
from medbench.engine.budget import Limits, limits, scaled, to_target
from medbench.metrics import time_to_target
from medbench.pipeline import run_benchmark

GRAD = ["train.budget.kind=gradient_evals", "optimizers=[adam, sam, gcsam]"]


def _folds(uri: str, name: str = "tiny"):
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[name])
    folds = runs[runs["tags.mlflow.parentRunId"].notna()].copy()
    folds["fold"] = folds["params.fold"].astype(int)
    return folds


def _history(uri: str, run_id: str, metric: str) -> list[float]:
    client = mlflow.MlflowClient(tracking_uri=uri)
    return [
        m.value for m in sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step)
    ]


def test_equal_gradient_evaluations_adam_takes_twice_sams_steps(tiny_config):
    # patience 1 would stop early under an epoch budget: a compute budget is spent in full
    config = tiny_config(
        *GRAD, "train.epochs=3", "train.early_stopping.patience=1", "report.target_val_auc=0.5"
    )
    run_benchmark(config, report=False, progress=False)
    folds = _folds(config.tracking.uri)
    assert len(folds) == 9 and set(folds["status"]) == {"FINISHED"}
    for _, part in folds.groupby("fold"):
        evals = part.set_index("params.optimizer")["metrics.gradient_evals"]
        batches = math.ceil(int(part["params.n_train"].iloc[0]) / 16)
        assert evals["adam"] == 3 * batches  # the default: train.epochs epochs of Adam
        assert evals.max() - evals.min() <= 2  # within one batch (a SAM step is two passes)
        sam_steps = evals["sam"] / 2
        assert evals["adam"] / sam_steps == pytest.approx(2.0, abs=2 / sam_steps)
    uri = config.tracking.uri
    for _, run in folds.iterrows():
        per_epoch = _history(uri, run["run_id"], "epoch_gradient_evals")
        assert sum(per_epoch) == run["metrics.gradient_evals"]
        if run["params.optimizer"] == "adam":
            assert len(per_epoch) == 3  # early stopping did not end it
        # time to target: the first epoch whose val AUC reaches 0.5, from the run's own curves
        auc = _history(uri, run["run_id"], "val_auc")
        hit = next((i for i, v in enumerate(auc) if v >= 0.5), None)
        if hit is None:
            assert math.isnan(run["metrics.gradient_evals_to_target"])
        else:
            assert run["metrics.gradient_evals_to_target"] == sum(per_epoch[: hit + 1])
            times = _history(uri, run["run_id"], "epoch_time_s")
            assert run["metrics.time_to_target_s"] == pytest.approx(sum(times[: hit + 1]))


def test_an_odd_budget_stops_sam_in_mid_epoch_one_pass_short(tiny_config):
    config = tiny_config(*GRAD, "optimizers=[adam, sam]", "train.budget.gradient_evals=7")
    run_benchmark(config, report=False, progress=False)
    folds = _folds(config.tracking.uri)
    for _, run in folds.iterrows():
        expected = 7 if run["params.optimizer"] == "adam" else 6
        assert run["metrics.gradient_evals"] == expected


def test_a_budget_in_seconds_is_checked_before_every_step(tiny_config):
    """A budget that ends before the first step is over still lets one step run: exactly one."""
    config = tiny_config(
        "train.budget.kind=seconds", "train.budget.seconds=1e-9", "optimizers=[adam, sam]"
    )
    run_benchmark(config, report=False, progress=False)
    folds = _folds(config.tracking.uri)
    evals = folds.groupby("params.optimizer")["metrics.gradient_evals"].unique()
    assert list(evals["adam"]) == [1.0] and list(evals["sam"]) == [2.0]


def test_limits_of_each_budget():
    def train(*sets):
        return load_config("demo", ["train.epochs=5", *sets]).train

    epochs = limits(train(), batches_per_epoch=4, step_cost=2)
    assert epochs == Limits("epochs", 5, None, None, 2) and epochs.early_stopping
    assert not epochs.reached({"epoch": 4}) and epochs.reached({"epoch": 5})
    grad = limits(train("train.budget.kind=gradient_evals"), batches_per_epoch=4, step_cost=2)
    assert (grad.gradient_evals, grad.epochs, grad.early_stopping) == (20, 3, False)
    assert grad.evals_left({"gradient_evals": 18}) == 2
    assert not grad.reached({"gradient_evals": 18}) and grad.reached({"gradient_evals": 19})
    secs = limits(
        train("train.budget.kind=seconds", "train.budget.seconds=60"),
        batches_per_epoch=4,
        step_cost=1,
    )
    assert secs.epochs is None and secs.seconds_left({"train_time_s": 45.0}) == 15.0
    assert secs.reached({"train_time_s": 60.0}) and not secs.reached({"train_time_s": 59.9})
    budget = train("train.budget.kind=gradient_evals", "train.budget.gradient_evals=1000").budget
    assert scaled(budget, 0.25).gradient_evals == 250 and budget.gradient_evals == 1000


def test_train_epoch_stops_before_the_step_that_would_exceed_the_budget():
    """The same steps every time: stopping in mid-epoch is deterministic."""
    from medbench.data.pixels.loader import BatchLoader
    from medbench.engine.device import Precision
    from medbench.engine.train import train_epoch
    from medbench.models import build_model
    from medbench.optim import build_optimizer

    device = torch.device("cpu")
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (40, 3, 16, 16), dtype=torch.uint8, generator=g)
    labels = torch.arange(40) % 2
    loader = BatchLoader(images, labels, torch.arange(40).numpy(), 8, device, shuffle=True, seed=1)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("smallcnn", num_classes=2, image_size=16)
        opt = build_optimizer("sam", model.parameters(), lr=1e-3, rho=0.05)
        stats = train_epoch(
            model,
            model,
            opt,
            loader,
            0,
            device,
            Precision.for_device(device, "off", "off"),
            max_evals=7,
        )
        results.append((stats.gradient_evals, stats.loss, model.state_dict()))
    (evals, loss, weights), (evals2, loss2, weights2) = results
    assert evals == evals2 == 6  # three SAM steps of 5 batches: a fourth would take 8 passes
    assert loss == loss2 and all(torch.equal(weights[k], weights2[k]) for k in weights)


def test_time_to_target_sums_costs_up_to_the_first_epoch_at_the_target():
    costs = {"s": [1.0, 2.0, 3.0, 4.0], "evals": [10, 10, 10, 10]}
    assert time_to_target([0.5, float("nan"), 0.8, 0.9], costs, 0.8) == {"s": 6.0, "evals": 30.0}
    assert time_to_target([0.5, 0.6, 0.7, 0.79], costs, 0.8) == {}
    history = [
        {"epoch": 0, "val_auc": 0.6, "epoch_time_s": 2.0, "epoch_gradient_evals": 4},
        {"epoch": 1, "val_auc": 0.9, "epoch_time_s": 3.0, "epoch_gradient_evals": 4},
    ]
    assert to_target(history, 0.85) == {"time_to_target_s": 5.0, "gradient_evals_to_target": 8}
    assert to_target(history, 0.95) == {}  # not logged when never reached
