"""Freezing BatchNorm running statistics for SAM's second forward pass."""

from __future__ import annotations

import copy

import torch

from medbench.optim import disable_running_stats, enable_running_stats
from tests.optim.helpers import batches, small_cnn


def _stats(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "batches" in k}


def test_disabled_running_stats_stay_unchanged_and_outputs_match_training_mode():
    model = small_cnn()
    twin = copy.deepcopy(model)
    x, _ = batches(1)[0]
    before = _stats(model)
    disable_running_stats(model)
    disable_running_stats(model)  # twice is harmless
    out = model(x)
    assert all(torch.equal(before[k], v) for k, v in _stats(model).items())
    torch.testing.assert_close(out, twin(x), rtol=0, atol=0)  # batch statistics still used
    enable_running_stats(model)
    model(x)
    after = _stats(model)
    assert not torch.equal(before["features.1.running_mean"], after["features.1.running_mean"])
    assert after["features.1.num_batches_tracked"].item() == 1
    assert all(m.track_running_stats for m in model.modules() if hasattr(m, "track_running_stats"))


def test_enable_without_disable_changes_nothing():
    model = small_cnn()
    enable_running_stats(model)
    x, _ = batches(1)[0]
    model(x)
    assert _stats(model)["features.1.num_batches_tracked"].item() == 1
