"""The optimizer registry: names, shared settings, defaults and errors."""

from __future__ import annotations

import pytest
import torch

from medbench.errors import ConfigError
from medbench.optim import GCSAM, OPTIMIZER_SETTINGS, SAM, build_optimizer, list_optimizers
from medbench.optim.registry import is_sam_family, passes_per_step, tunable_settings


def _params():
    return [torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(3))]


GRID = {"lr": 3e-4, "weight_decay": 1e-5, "betas": [0.8, 0.99], "rho": 0.1, "gc_norm": "raw"}


def test_lists_every_optimizer():
    assert list_optimizers() == ["adam", "adamw", "asam", "gcsam", "sam", "sgd"]


def test_every_setting_the_registry_uses_is_declared():
    assert {"lr", "weight_decay", "betas", "eps", "momentum", "base"} <= OPTIMIZER_SETTINGS
    assert {"rho", "adaptive", "gc_conv_only", "gc_norm"} <= OPTIMIZER_SETTINGS


@pytest.mark.parametrize("name", ["adam", "adamw", "sam", "asam", "gcsam"])
def test_one_grid_of_settings_serves_every_optimizer(name):
    opt = build_optimizer(name, _params(), **GRID)
    group = opt.param_groups[0]
    assert group["lr"] == 3e-4 and group["betas"] == (0.8, 0.99)
    assert ("rho" in group) == isinstance(opt, SAM)  # Adam ignores rho


def test_defaults_are_the_papers_setting():
    adam = build_optimizer("adam", _params())
    assert type(adam) is torch.optim.Adam and adam.param_groups[0]["lr"] == 1e-4
    sam = build_optimizer("sam", _params())
    assert type(sam) is SAM and type(sam.base_optimizer) is torch.optim.Adam
    assert sam.param_groups[0]["rho"] == 0.05 and not sam.param_groups[0]["adaptive"]
    gcsam = build_optimizer("gcsam", _params())
    assert type(gcsam) is GCSAM and gcsam.param_groups[0]["gc_norm"] == "raw"
    assert not gcsam.param_groups[0]["gc_conv_only"]


def test_asam_is_adaptive_sam_and_options_reach_gcsam():
    asam = build_optimizer("asam", _params(), adaptive=False)
    assert type(asam) is SAM and asam.param_groups[0]["adaptive"] is True
    gcsam = build_optimizer("gcsam", _params(), gc_conv_only=True, gc_norm="centralized")
    assert (
        gcsam.param_groups[0]["gc_conv_only"] and gcsam.param_groups[0]["gc_norm"] == "centralized"
    )


def test_sam_family_takes_another_base_optimizer():
    opt = build_optimizer("sam", _params(), base="sgd", momentum=0.9, betas=(0.5, 0.5))
    assert type(opt.base_optimizer) is torch.optim.SGD
    assert opt.param_groups[0]["momentum"] == 0.9 and "betas" not in opt.param_groups[0]


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        build_optimizer("gcsma", _params())
    assert "did you mean 'gcsam'" in str(err.value)
    assert "known: adam, adamw, asam, gcsam, sam, sgd" in str(err.value)


def test_unknown_setting_is_named():
    with pytest.raises(ConfigError, match=r"'rhoo' \(did you mean 'rho'\?\)"):
        build_optimizer("adam", _params(), rhoo=0.1)


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("sam", {"rho": -1.0}, "rho must be non-negative"),
        ("gcsam", {"gc_norm": "paper"}, "gc_norm must be one of raw, centralized"),
        ("sam", {"base": "adamm"}, "unknown base optimizer 'adamm' .did you mean 'adam'"),
        ("adam", {"lr": -1.0}, "optimizer 'adam'.*learning rate"),
        ("sgd", {"momentum": "high"}, "optimizer 'sgd'"),
    ],
)
def test_bad_values_are_config_errors(name, settings, message):
    with pytest.raises(ConfigError, match=message):
        build_optimizer(name, _params(), **settings)


@pytest.mark.parametrize(
    ("name", "passes", "tunable", "sam_family"),
    [
        ("adam", 1, ("lr",), False),
        ("sgd", 1, ("lr",), False),
        ("sam", 2, ("lr", "rho"), True),
        ("asam", 2, ("lr", "rho"), True),
        ("gcsam", 2, ("lr", "rho"), True),
    ],
)
def test_each_entry_knows_its_cost_and_what_tuning_searches(name, passes, tunable, sam_family):
    assert passes_per_step(name) == passes
    # a built optimizer costs what its entry says
    assert passes_per_step(build_optimizer(name, _params(), **GRID)) == passes
    assert tunable_settings(name) == tunable
    assert is_sam_family(name) is sam_family


def test_an_unknown_name_fails_with_the_closest_one():
    with pytest.raises(ConfigError, match="did you mean 'gcsam'"):
        passes_per_step("gcsma")
