import math

import pytest
import torch
from torch import nn

from medbench.engine.device import Precision, tf32_kernels
from medbench.optim import SAM
from medbench.optim.fidelity import TF32, cast_parameters, perturbation_fidelity, round_tf32


def _one_step(model, rho):
    opt = SAM(model.parameters(), torch.optim.SGD, rho=rho, lr=0.1)
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model(x).square().mean().backward()
    before = {id(p): p.detach().clone() for p in model.parameters()}
    opt.first_step(zero_grad=True)
    return before, opt


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.Flatten(), nn.Linear(16 * 36, 2)
    )


def test_cast_parameters_are_conv_and_linear_ones():
    model = _model()
    cast = cast_parameters(model)
    assert {id(p) for p in model[0].parameters()} <= cast
    assert {id(p) for p in model[3].parameters()} <= cast
    assert not cast & {id(p) for p in model[1].parameters()}


def test_fp32_sees_the_intended_perturbation():
    model = _model()
    before, opt = _one_step(model, rho=0.05)
    cos, ratio = perturbation_fidelity(before, opt.perturbation, cast_parameters(model), None)
    assert cos == pytest.approx(1.0, abs=1e-6) and ratio == pytest.approx(1.0, abs=1e-4)


def test_bf16_erases_a_small_perturbation_but_not_a_large_one():
    model = _model()
    before, opt = _one_step(model, rho=0.001)
    cos, ratio = perturbation_fidelity(
        before, opt.perturbation, cast_parameters(model), torch.bfloat16
    )
    assert cos < 0.9
    opt.second_step()
    before, opt = _one_step(model, rho=50.0)
    cos_big, _ = perturbation_fidelity(
        before, opt.perturbation, cast_parameters(model), torch.bfloat16
    )
    assert cos_big > 0.99


def test_by_hand_on_one_tensor():
    # w = 1 + k/64: bf16 keeps 8 bits of mantissa, so 1 + 1e-3 rounds back to 1
    w = torch.tensor([1.0, 2.0, 3.0])
    e = torch.tensor([1e-3, 1.0, 0.0])
    p = w + e
    layer = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(p[None])
    pairs = [(layer.weight, e[None])]
    before = {id(layer.weight): w[None]}
    cos, ratio = perturbation_fidelity(before, pairs, {id(layer.weight)}, torch.bfloat16)
    seen = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)  # bf16(1.001) == bf16(1)
    e64 = e.double()
    assert cos == pytest.approx(float(seen @ e64 / (seen.norm() * e64.norm())))
    assert ratio == pytest.approx(float(seen.norm() / e64.norm()))
    assert math.isnan(perturbation_fidelity(before, [(layer.weight, 0 * e[None])], set(), None)[0])


def test_tf32_rounding_keeps_ten_mantissa_bits():
    """TF32: 1 sign, 8 exponent and 10 mantissa bits; the value is rounded to nearest."""
    x = torch.tensor([1.0, 1 + 2**-10, 1 + 2**-12, 1 + 2**-11 + 2**-13, -3.0 - 2**-12, 0.0])
    assert round_tf32(x).tolist() == [1.0, 1 + 2**-10, 1.0, 1 + 2**-10, -3.0, 0.0]
    assert round_tf32(x).dtype == torch.float32


def test_tf32_erases_a_small_perturbation_of_the_kernels_weights_only():
    """A rho small next to the weights: in TF32 most of ``e`` rounds away (issue 22 #7: the
    suite logged 1.000 while the convolutions consumed TF32-rounded weights)."""
    model = _model()
    before, opt = _one_step(model, rho=0.001)
    conv_only = cast_parameters(model, conv=True, matmul=False)
    assert conv_only == {id(p) for p in model[0].parameters()}
    cos, _ = perturbation_fidelity(before, opt.perturbation, cast_parameters(model), TF32)
    assert cos < 0.9
    fp32, _ = perturbation_fidelity(before, opt.perturbation, set(), TF32)  # nothing rounded
    assert fp32 == pytest.approx(1.0, abs=1e-6)
    # by hand on one weight: 1 + 1e-4 is 1 in TF32 (its step at 1 is 2**-10, about 1e-3)
    w, e = torch.tensor([[1.0, 2.0]]), torch.tensor([[1e-4, 0.5]])
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(w + e)
    cos, ratio = perturbation_fidelity(
        {id(layer.weight): w}, [(layer.weight, e)], {id(layer.weight)}, TF32
    )
    e64 = e.double().flatten()
    seen = torch.tensor([0.0, 0.5], dtype=torch.float64)
    assert cos == pytest.approx(float(seen @ e64 / (seen.norm() * e64.norm())))
    assert ratio == pytest.approx(float(seen.norm() / e64.norm()))


def test_the_precision_a_run_records():
    cpu = torch.device("cpu")
    assert tf32_kernels(cpu, "on") == (False, False)  # no TF32 off CUDA
    assert Precision(autocast=False, channels_last=False).describe() == "fp32"
    assert Precision(autocast=True, channels_last=False).describe((True, True)) == "bf16 autocast"
    fp32 = Precision(autocast=False, channels_last=True)
    assert fp32.describe((True, False)) == "fp32, TF32 convolutions"
    assert fp32.describe((True, True)) == "fp32, TF32 convolutions and matmuls"
