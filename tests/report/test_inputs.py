"""The common inputs of the report's parts: the typed config rebuilt from the logged one drives
the threshold, the region of practical equivalence and the order of the rows."""

from __future__ import annotations

import dataclasses

import pytest

from medbench.config import ReportConfig, TrainConfig
from medbench.errors import MedbenchWarning
from medbench.report.inputs import gather


def test_settings_come_from_the_logged_config(generated):
    logged = {
        "models": ["n", "m"],
        "optimizers": ["sam", "adam"],
        "train": {"threshold": 0.3},
        "report": {"rope": 0.02},
    }
    inputs = gather(dataclasses.replace(generated, config=logged), n_resamples=20)
    assert (inputs.threshold, inputs.rope) == (0.3, 0.02)
    assert inputs.models == ["n", "m"] and inputs.optimizers == ["sam", "adam"]
    assert list(dict.fromkeys(inputs.per_unit["model"])) == ["n", "m"]
    assert inputs.config.train.threshold == 0.3 and inputs.n_resamples == 20
    # the rope of a call wins over the config's
    assert (
        gather(dataclasses.replace(generated, config=logged), rope=0.05, n_resamples=20).rope
        == 0.05
    )


def test_an_older_config_warns_once_and_takes_todays_defaults(generated):
    old = {"models": ["m", "n"], "train": {"threshold_rule": "youden"}}
    with pytest.warns(MedbenchWarning, match=r"train\.threshold_rule"):
        inputs = gather(dataclasses.replace(generated, config=old), n_resamples=20)
    assert inputs.threshold == TrainConfig().threshold
    assert inputs.rope == ReportConfig().rope
    assert inputs.config.report.target_val_auc == ReportConfig().target_val_auc


def test_without_a_logged_config_the_rows_follow_the_known_order(generated):
    inputs = gather(dataclasses.replace(generated, config={}), n_resamples=20)
    assert inputs.models == ["m", "n"] and inputs.optimizers == ["adam", "sam"]
    assert inputs.tested_models == ["m", "n"] and inputs.folds == [1, 2, 3]
