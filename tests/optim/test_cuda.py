"""On a GPU: SAM and GCSAM match the CPU and never make the host wait for the device."""

from __future__ import annotations

import copy

import pytest
import torch

from medbench.optim import GCSAM, SAM
from tests.optim.helpers import batches, loss_of, sam_step, small_cnn

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CASES = {
    "sam-adam": (SAM, {}, torch.optim.Adam),
    "asam-sgd": (SAM, {"adaptive": True}, torch.optim.SGD),
    "gcsam-adam": (GCSAM, {}, torch.optim.Adam),
    "gcsam-paper-norm-sgd": (GCSAM, {"gc_norm": "centralized"}, torch.optim.SGD),
}


class _NoSync:
    """Make any host-device synchronisation inside the block an error."""

    def __enter__(self):
        torch.cuda.set_sync_debug_mode("error")

    def __exit__(self, *exc):
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("case", sorted(CASES))
def test_cuda_matches_cpu_without_synchronising(case):
    cls, options, base = CASES[case]
    cpu_model = small_cnn()
    gpu_model = copy.deepcopy(cpu_model).cuda()
    cpu_opt = cls(cpu_model.parameters(), base, lr=1e-3, **options)
    gpu_opt = cls(gpu_model.parameters(), base, lr=1e-3, **options)
    for x, y in batches(5):
        sam_step(cpu_model, cpu_opt, (x, y))
        batch = (x.cuda(), y.cuda())
        loss_of(gpu_model, batch).backward()
        with _NoSync():
            gpu_opt.first_step(zero_grad=True)
        loss_of(gpu_model, batch).backward()
        with _NoSync():
            gpu_opt.second_step(zero_grad=True)
    for a, b in zip(cpu_model.state_dict().values(), gpu_model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b.cpu(), rtol=0, atol=1e-9)
