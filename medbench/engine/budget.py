"""Equal compute: how much training one job gets, and what it spent to reach a target.

``train.budget.kind`` says in which unit every optimizer of a grid gets the same amount:

- ``epochs`` (the default): ``train.epochs`` passes over the training split, early stopping as
  configured. SAM and GCSAM then take twice Adam's forward-backward passes.
- ``gradient_evals``: the same number of forward-backward passes on training batches for every
  optimizer, by default what ``train.epochs`` epochs of a one-pass optimizer cost; a SAM step
  takes two, so Adam takes about twice SAM's steps. Training stops at the step that would exceed
  the budget, in mid-epoch if need be (the same step on every run: deterministic), so two
  optimizers' totals differ by less than one SAM step.
- ``seconds``: the same wall time of training (validation included), checked before every step.

Under a compute budget the budget alone ends training: early stopping does not, so that every
optimizer spends the same amount (the best validation epoch is still the one selected).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from medbench.metrics import time_to_target

if TYPE_CHECKING:
    from medbench.config import BudgetConfig, TrainConfig


@dataclass(frozen=True)
class Limits:
    """When one job's training ends: the first limit reached (None: no such limit)."""

    kind: str  # train.budget.kind
    epochs: int | None  # epochs the budget allows (for the schedule and the progress bar)
    gradient_evals: int | None
    seconds: float | None
    step_cost: int = 1  # forward-backward passes per optimizer step

    @property
    def early_stopping(self) -> bool:
        """Whether early stopping may end training (only when the budget is in epochs)."""
        return self.kind == "epochs"

    def evals_left(self, state: dict[str, Any]) -> int | None:
        if self.gradient_evals is None:
            return None
        return self.gradient_evals - int(state.get("gradient_evals", 0))

    def seconds_left(self, state: dict[str, Any]) -> float | None:
        if self.seconds is None:
            return None
        return self.seconds - float(state.get("train_time_s", 0.0))

    def reached(self, state: dict[str, Any]) -> bool:
        """True when not one more step fits the budget."""
        if self.kind == "epochs":
            return state["epoch"] >= self.epochs
        if self.kind == "gradient_evals":
            return self.evals_left(state) < self.step_cost
        return self.seconds_left(state) <= 0


def limits(train: TrainConfig, batches_per_epoch: int, step_cost: int) -> Limits:
    """The limits of one job under ``train.budget`` (``batches_per_epoch``: of its training split)."""
    budget = train.budget
    if budget.kind == "epochs":
        return Limits("epochs", train.epochs, None, None, step_cost)
    if budget.kind == "gradient_evals":
        total = budget.gradient_evals or train.epochs * batches_per_epoch
        per_epoch = max(batches_per_epoch * step_cost, 1)
        return Limits(
            "gradient_evals", max(math.ceil(total / per_epoch), 1), total, None, step_cost
        )
    return Limits("seconds", None, None, budget.seconds, step_cost)


def scaled(budget: BudgetConfig, factor: float) -> BudgetConfig:
    """The budget times ``factor`` (a tuning trial's share of a final run); epochs scale with
    ``train.epochs`` itself, so an empty ``gradient_evals`` stays empty."""
    out = replace(budget)
    if budget.gradient_evals is not None:
        out.gradient_evals = max(int(round(budget.gradient_evals * factor)), 1)
    if budget.seconds is not None:
        out.seconds = budget.seconds * factor
    return out


def to_target(history: list[dict[str, float]], target: float) -> dict[str, float]:
    """``time_to_target_s`` and ``gradient_evals_to_target`` of a run's per-epoch history (the
    first epoch whose validation AUC reaches ``target``); empty when never reached."""
    reached = time_to_target(
        [row.get("val_auc", math.nan) for row in history],
        {
            "time_to_target_s": [row.get("epoch_time_s", math.nan) for row in history],
            "gradient_evals_to_target": [
                row.get("epoch_gradient_evals", math.nan) for row in history
            ],
        },
        target,
    )
    return {k: v for k, v in reached.items() if math.isfinite(v)}
