"""Agreement with an independent implementation: pytorch-optimizer's SAM (a dev dependency).

Its ``SAM(use_gc=True)`` is GCSAM as the authors released it: the norm of the raw gradient,
the gradient centralized (in place, on ``p.grad``) for the ascent only, Adam on the raw
gradient at the perturbed point. It restores the weights by copying a saved ``w`` where we,
like the authors, subtract ``e(w)``: the two differ by rounding only. It also takes the global
gradient norm in float32 whatever the weights' dtype, so on these float64 models its ``rho / ||g||``
carries float32 rounding (relative 1e-7); Adam turns that into differences of about 2e-9 after
one step, hence the 1e-6 tolerance here against 1e-9 for our own per-parameter reference.
"""

from __future__ import annotations

import pytest
import torch

from medbench.optim import GCSAM, SAM
from tests.optim.helpers import batches, sam_step, small_cnn

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")

CASES = {
    "sam": (SAM, {}, {}),
    "asam": (SAM, {"adaptive": True}, {"adaptive": True}),
    "gcsam": (GCSAM, {}, {"use_gc": True}),
    "gcasam": (GCSAM, {"adaptive": True}, {"adaptive": True, "use_gc": True}),
}


def _train(make_opt, steps: int = 10):
    model = small_cnn()
    opt = make_opt(model.parameters())
    for batch in batches(steps):
        sam_step(model, opt, batch)
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pytorch_optimizer(case):
    ours_cls, ours_kw, theirs_kw = CASES[case]
    ours = _train(lambda p: ours_cls(p, torch.optim.Adam, rho=0.05, lr=1e-3, **ours_kw))
    theirs = _train(
        lambda p: pytorch_optimizer.SAM(p, torch.optim.Adam, rho=0.05, lr=1e-3, **theirs_kw)
    )
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_paper_norm_is_not_what_the_released_code_does():
    ours = _train(lambda p: GCSAM(p, rho=0.5, lr=1e-3, gc_norm="centralized"), steps=3)
    theirs = _train(
        lambda p: pytorch_optimizer.SAM(p, torch.optim.Adam, rho=0.5, lr=1e-3, use_gc=True), steps=3
    )
    diffs = [
        (a - b).abs().max().item()
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True)
    ]
    assert max(diffs) > 1e-6
