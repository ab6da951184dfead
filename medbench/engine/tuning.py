"""Per-optimizer tuning with an equal budget, nested inside cross-validation.

For each job (model, optimizer, outer fold, seed) a study of ``tune.trials`` trials searches the
optimizer's ``lr`` (log-uniform) and, for the SAM family, ``rho``; every optimizer gets the same
number of trials. A trial trains on the outer fold's training part and is scored on its
validation split (``tune.objective``, the best of its ``tune.epochs`` epochs): the test fold
never reaches a trial, its rows are not even in the trial's data (:func:`trial_data`). The best
trial's setting is then trained and tested as an untuned job would be, in the same fold run,
under which every trial is a nested run ``{model}/{optimizer}/fold{k}/trial{j}``
(``{model}/{optimizer}/r{j}/fold{k}/trial{t}`` from repeat 2 of a repeated cross-validation).

Trials are :class:`~medbench.engine.work.Work` run by the grid's executor (local, packed or Ray)
through the job runner, like the jobs: a study hands out its next trial when the previous one has
ended (:class:`Tuner`), since TPE learns from the trials before. MLflow is the study's memory:
each suggestion comes from a fresh Optuna study holding the trials read back from the fold run
and a sampler seeded by (model, repeat, fold, seed, trial number), so a resumed study suggests exactly
what an uninterrupted one would have, and a finished trial is never rerun. The seeds do not
depend on the optimizer: under random search every optimizer tries the same learning rates,
paired like the rest of the design (same initial weights and batches per (model, fold, seed)).
Samplers: ``tpe`` (its first half of the trials, at most 10, are random), ``random``, ``grid``
(``space.grid_points`` log-spaced values per range, visited in a seeded order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from medbench.config import OBJECTIVES, Config, SearchSpaceConfig, TuneConfig
from medbench.data.folds import FoldSplit
from medbench.engine.budget import scaled
from medbench.engine.handlers import default_handlers
from medbench.engine.jobs import Job, derive_seed, hyperparameters, study_seed
from medbench.engine.runner import DIVERGED, close_runs, job_run
from medbench.engine.train import Base, Diverged, Fit, FoldData, fit_job
from medbench.engine.work import JobOutcome, JobSpec, Status, TrialSpec, Work
from medbench.engine.worker import job_work
from medbench.optim.registry import tunable_settings
from medbench.optional import lazy_import
from medbench.tracking import Tracker

optuna = lazy_import("optuna")  # seconds to import: only when a study suggests


# -- what a trial sees and does -------------------------------------------------------------------


def trial_data(fold: FoldData) -> FoldData:
    """The part of an outer fold a trial may see: its training and validation rows (images,
    labels and manifest rows), renumbered; the test fold's rows are left out."""
    split = fold.split
    keep = np.sort(np.concatenate([split.train, split.val]).astype(np.int64))
    rows = torch.as_tensor(keep)
    return FoldData(
        images=fold.images.index_select(0, rows.to(fold.images.device)),
        labels=fold.labels[rows.to(fold.labels.device)],
        manifest=fold.manifest.iloc[keep].reset_index(drop=True),
        split=FoldSplit(
            fold=split.fold,
            train=np.searchsorted(keep, split.train),
            val=np.searchsorted(keep, split.val),
            test=np.empty(0, dtype=np.int64),
        ),
    )


def trial_config(config: Config, params: dict[str, float]) -> Config:
    """The config a trial trains with: ``tune.epochs`` epochs (a compute budget scaled by
    ``tune.epochs / train.epochs``), the trial's ``lr``/``rho``, no flatness."""
    tune, train = config.tune, config.train
    budget = scaled(train.budget, tune.epochs / train.epochs)
    return replace(
        config,
        optimizer=replace(config.optimizer, **params),
        train=replace(train, epochs=tune.epochs, budget=budget),
        flatness=replace(config.flatness, enabled=False),
    )


def objective_of(history: list[dict[str, float]], objective: str) -> tuple[float, float]:
    """(best value of ``objective`` over the epochs, its epoch): highest AUC or lowest loss, the
    first on ties; NaN for both when no epoch has a finite value."""
    values = np.array([row.get(objective, math.nan) for row in history], dtype=float)
    finite = np.flatnonzero(np.isfinite(values))
    if not len(finite):
        return math.nan, math.nan
    pick = np.argmax if OBJECTIVES[objective] == "maximize" else np.argmin
    best = int(finite[pick(values[finite])])
    return float(values[best]), float(history[best].get("epoch", best))


def _cost(fit: Fit) -> dict[str, float]:
    return {
        "train_time_s": fit.state["train_time_s"],
        "gradient_evals": fit.state["gradient_evals"],
    }


class TrialLog(Base):
    """Writes a trial's result to its run: the best validation objective and its epoch, and the
    trial's cost; a trial that diverged logs its cost only (what it spent is still spent)."""

    def __init__(self, tracker: Tracker, run_id: str, objective: str) -> None:
        self.tracker, self.run_id, self.objective = tracker, run_id, objective

    def fit_completed(self, fit: Fit) -> None:
        value, epoch = objective_of(fit.state["history"], self.objective)
        result = {self.objective: value, "best_epoch": epoch, **_cost(fit)}
        self.tracker.log_trial_result(self.run_id, result)

    def exception_raised(self, fit: Fit, err: Exception) -> None:
        if isinstance(err, Diverged):
            self.tracker.log_trial_result(self.run_id, _cost(fit))


def run_trial(spec: TrialSpec, bar: Any = None) -> JobOutcome:
    """Train one trial on the outer fold's training part and log its validation objective in a
    trial run nested under the job's fold run (created by the study's first trial), through the
    job runner (:func:`~medbench.engine.runner.job_run`). A trial shows no epoch bar."""
    with job_run(spec) as run:
        if run.outcome is not None:  # finished before, or the data here are not the grid's
            return run.outcome
        config = trial_config(spec.config, spec.params)
        log = TrialLog(run.tracker, run.run_id, spec.config.tune.objective)
        handlers = [log, *default_handlers(config)]
        fit_job(spec.job, config, trial_data(run.fold), run.device, handlers)
    return run.outcome


def trial_work(spec: TrialSpec) -> Work:
    """A tuning trial, as the grid's executor runs it."""
    return Work(spec, run_trial, close_runs)


# -- the search -----------------------------------------------------------------------------------


def search_space(space: SearchSpaceConfig, optimizer: str):
    """Optuna distributions of ``optimizer``'s settings: log-uniform ``lr`` (and ``rho``)."""
    return {
        name: optuna.distributions.FloatDistribution(*_bounds(space, name), log=True)
        for name in tunable_settings(optimizer)
    }


def grid(space: SearchSpaceConfig, optimizer: str) -> dict[str, list[float]]:
    """The ``grid`` sampler's points: ``grid_points`` log-spaced values per range."""
    return {
        name: np.geomspace(*_bounds(space, name), space.grid_points).tolist()
        for name in tunable_settings(optimizer)
    }


def _bounds(space: SearchSpaceConfig, name: str) -> tuple[float, float]:
    """The search range of setting ``name`` (``tune.space.{name}_low`` / ``_high``)."""
    return getattr(space, f"{name}_low"), getattr(space, f"{name}_high")


def _sampler(tune: TuneConfig, optimizer: str, seed_of_study: int, trial: int):
    if tune.sampler == "grid":  # the grid's order is the study's: one seed for every trial
        return optuna.samplers.GridSampler(grid(tune.space, optimizer), seed=seed_of_study)
    seed = derive_seed(seed_of_study, trial)
    if tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = max(1, min(10, tune.trials // 2))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def suggest(tune: TuneConfig, job: Job, history: pd.DataFrame) -> dict[str, float]:
    """The next trial's setting after ``history`` (its counted trials, in order): a fresh
    Optuna study holding them, asked once with a sampler seeded by the trial's number.

    A trial without a finite objective (it diverged) enters the study with the worst value
    there is (:func:`worst`), not as a failure that samplers skip: TPE then learns to avoid its
    region instead of suggesting it again."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_space(tune.space, job.optimizer)
    sampler = _sampler(tune, job.optimizer, study_seed(job), len(history))
    study = optuna.create_study(direction=OBJECTIVES[tune.objective], sampler=sampler)
    for row in history.to_dict("records"):
        value = row.get(tune.objective)
        done = value is not None and math.isfinite(value)
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.COMPLETE,
                value=value if done else worst(tune.objective),
                params={k: row[k] for k in space},
                distributions=space,
            )
        )
    return {k: float(v) for k, v in study.ask(space).params.items()}


def worst(objective: str) -> float:
    """The value a diverged trial counts with: worse than any trial that finished."""
    return -math.inf if OBJECTIVES[objective] == "maximize" else math.inf


def counted(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials a study has spent: finished ones, and those that diverged (their setting was
    tried and failed); others (interrupted, crashed) are rerun."""
    failure = trials["failure"].fillna("").astype(str)
    keep = (trials["status"] == "FINISHED") | (
        (trials["status"] == "FAILED") & failure.str.startswith(DIVERGED)
    )
    return trials[keep].reset_index(drop=True)


def best_trial(history: pd.DataFrame, objective: str) -> dict[str, Any] | None:
    """The trial with the best objective (the first on ties), or None when none has one."""
    if objective not in history:
        return None
    values = pd.to_numeric(history[objective], errors="coerce")
    values = values[np.isfinite(values)]
    if values.empty:
        return None
    best = values.idxmax() if OBJECTIVES[objective] == "maximize" else values.idxmin()
    return history.loc[best].to_dict()


# -- the studies of a grid ------------------------------------------------------------------------


@dataclass
class Tuner:
    """The studies of a grid's jobs: hands out each job's trials one after another through the
    executor (:meth:`start`, :meth:`follow`), then the job itself with the chosen setting."""

    specs: list[JobSpec]
    tracker: Tracker
    failed: list[JobOutcome] = field(default_factory=list)  # jobs whose tuning failed

    def start(self) -> list[Work]:
        """Each job's next work: its next trial, or the job when its trials are done."""
        works = []
        for spec in self.specs:
            works += self._next(spec, self._resume(spec))
        return works

    def follow(self, work: Work, outcome: JobOutcome) -> list[Work]:
        """After a trial: the study's next trial, or its job; nothing after a job."""
        if not isinstance(work.spec, TrialSpec):
            return []
        trial = work.spec
        spec = next(sp for sp in self.specs if sp.job == trial.job)
        ok = outcome.status in (Status.FINISHED, Status.SKIPPED) or (
            outcome.status == Status.FAILED and str(outcome.reason).startswith(DIVERGED)
        )
        if ok:
            return self._next(spec, outcome.fold_run_id)
        if outcome.status == Status.FAILED:  # the study cannot spend the same budget as others
            reason = f"tuning trial {trial.trial} failed: {outcome.reason}"
            self._fail(spec, outcome.fold_run_id, reason)
        return []

    def _resume(self, spec: JobSpec) -> str | None:
        """The job's fold run holding the most trials (a study under way), if any; trials it
        holds that did not count (interrupted, crashed) are deleted, to be rerun."""
        refs = self.tracker.find_child(spec.job.key, spec.config_hash, spec.fingerprint)
        best, most, spent = None, -1, pd.DataFrame()
        for ref in refs:
            trials = self.tracker.trials(ref.run_id)
            keep = counted(trials)
            if len(keep) > most:
                best, most, spent = ref.run_id, len(keep), trials
        if best is not None:
            for run_id in set(spent["run_id"]) - set(counted(spent)["run_id"]):
                self.tracker.delete(run_id)
        return best

    def _next(self, spec: JobSpec, fold_run_id: str | None) -> list[Work]:
        tune = spec.config.tune
        history = counted(self.tracker.trials(fold_run_id)) if fold_run_id else pd.DataFrame()
        if len(history) < tune.trials:
            trial = TrialSpec(
                replace(spec, run_id=fold_run_id),
                trial=len(history),
                params=suggest(tune, spec.job, history),
            )
            return [trial_work(trial)]
        best = best_trial(history, tune.objective)
        if best is None:
            self._fail(
                spec,
                fold_run_id,
                f"tuning: none of the {len(history)} trials gave a finite {tune.objective}",
            )
            return []
        opt = spec.config.optimizer
        chosen = hyperparameters(spec.job.optimizer, best["lr"], best.get("rho", opt.rho))
        cost = {
            "tuning_time_s": float(pd.to_numeric(history["train_time_s"]).fillna(0).sum()),
            "tuning_gradient_evals": float(
                pd.to_numeric(history["gradient_evals"]).fillna(0).sum()
            ),
        }
        self.tracker.log_tuning(fold_run_id, chosen, cost)
        config = replace(spec.config, optimizer=replace(opt, **chosen))
        return [job_work(replace(spec, config=config, run_id=fold_run_id))]

    def _fail(self, spec: JobSpec, fold_run_id: str | None, reason: str) -> None:
        if fold_run_id is not None:
            self.tracker.finish(fold_run_id, Status.FAILED, reason)
        self.failed.append(JobOutcome(spec.job, Status.FAILED, fold_run_id, reason))
