"""Flatness measures against Hessians known in closed form, and their side-effect contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from medbench.config import FlatnessConfig
from medbench.errors import ConfigError
from medbench.flatness import (
    filter_normalized_direction,
    hessian_lanczos,
    hessian_top_eigenvalue,
    hessian_trace,
    loss_landscape_1d,
    measure_flatness,
    sam_sharpness,
)
from medbench.models import build_model
from medbench.smallcnn import SmallCNN


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: threads only add contention on a shared CI machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- models with a closed-form Hessian ----------------------------------------------------------


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out.squeeze(1) - y) ** 2).mean()


def _linear_problem(n: int = 64, d: int = 6, seed: int = 0):
    """Linear model, squared loss: H = 2/N X^T X, with a well separated top eigenvalue."""
    gen = torch.Generator().manual_seed(seed)
    q1, _ = torch.linalg.qr(torch.randn(n, d, generator=gen, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    s = torch.tensor([4.0, 2.0, 1.5, 1.0, 0.5, 0.2], dtype=torch.float64)[:d] * math.sqrt(n)
    x = q1 @ torch.diag(s) @ q2.T
    y = torch.randn(n, generator=gen, dtype=torch.float64)
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, d, generator=gen, dtype=torch.float64))
    hessian = (2 / n * x.T @ x).numpy()
    return model, x, y, hessian


def _batches(x, y, size):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


class Quadratic(nn.Module):
    """Loss 1/2 theta^T A theta whatever the data: H = A, gradient A theta."""

    def __init__(self, a: torch.Tensor, theta: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a)
        self.theta = nn.Parameter(theta.clone())  # 2-D: rows are "filters" for the landscape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.theta.flatten()


def _quad_loss(model: Quadratic):
    def loss(out, y):
        return 0.5 * out @ model.a @ out

    return loss


def _sym(eigenvalues, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(
        torch.randn(len(eigenvalues), len(eigenvalues), generator=gen, dtype=torch.float64)
    )
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T


def _quadratic(eigenvalues=(5.0, 2.0, 1.0, 0.5, 0.3, 0.1), seed=0):
    a = _sym(eigenvalues, seed)
    theta = torch.randn(
        3, 2, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64
    )
    model = Quadratic(a, theta)
    dummy = [(torch.zeros(4, 1, dtype=torch.float64), torch.zeros(4))] * 3
    return model, _quad_loss(model), dummy


def _tiny_cnn(n=32, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    model = SmallCNN(width=4).to(dtype)
    # Non-trivial running statistics, so eval-mode BatchNorm is not an identity.
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 3, 16, 16, dtype=dtype))
    model.eval()
    x = torch.rand(n, 3, 16, 16, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    y = torch.arange(n) % 2
    return model, nn.CrossEntropyLoss(), x, y


def _counting(loss_fn):
    """``loss_fn`` that counts its calls: with several batches, an HVP is one call per batch
    (with one, the gradient's graph is kept after the first HVP)."""

    def loss(out, y):
        loss.calls += 1
        return loss_fn(out, y)

    loss.calls = 0
    return loss


@pytest.fixture(scope="module")
def trained_cnn():
    """The registry's SmallCNN (98k weights) after 15 Adam steps on 32 generated 32 px images,
    labelled by a bright square: a real network near a minimum, whose Hessian has a few
    outlying eigenvalues above a bulk, as a trained network's has."""
    torch.manual_seed(0)
    model = build_model("smallcnn", num_classes=2, image_size=32)
    y = torch.arange(32) % 2
    x = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.5
    x[y == 1, :, 8:16, 8:16] += 0.5
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(15):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for p in model.parameters():
        p.grad = None
    return model.eval(), x, y


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model, before):
    after = model.state_dict()
    return all(torch.equal(before[k], after[k]) for k in before) and all(
        p.grad is None for p in model.parameters()
    )


# -- Hessian top eigenvalue ----------------------------------------------------------------------


def test_top_eigenvalue_of_linear_least_squares():
    model, x, y, hessian = _linear_problem()
    expected = np.linalg.eigvalsh(hessian)[-1]
    got = hessian_top_eigenvalue(model, _mse, _batches(x, y, 16), iters=100, tol=1e-10)
    assert abs(got - expected) / expected < 1e-4


def test_top_eigenvalue_of_quadratic():
    model, loss, batches = _quadratic()
    got = hessian_top_eigenvalue(model, loss, batches, iters=100, tol=1e-10)
    assert got == pytest.approx(5.0, rel=1e-6)


def test_top_eigenvalue_is_the_largest_not_the_largest_magnitude():
    # A saddle: the dominant eigenvalue is -5, the top one 3.
    model, loss, batches = _quadratic((-5.0, 3.0, 0.5, -1.0, 0.2, 1.0))
    got = hessian_top_eigenvalue(model, loss, batches, iters=200, tol=1e-12)
    assert got == pytest.approx(3.0, rel=1e-6)


def test_top_eigenvalue_does_not_depend_on_the_batch_size():
    model, loss, x, y = _tiny_cnn(n=32)
    small = hessian_top_eigenvalue(model, loss, _batches(x, y, 8), iters=4, tol=0)
    large = hessian_top_eigenvalue(model, loss, _batches(x, y, 32), iters=4, tol=0)
    assert small == pytest.approx(large, rel=1e-9)
    model, x, y, _ = _linear_problem(n=64)
    small = hessian_top_eigenvalue(model, _mse, _batches(x, y, 8), iters=30, tol=0)
    large = hessian_top_eigenvalue(model, _mse, _batches(x, y, 64), iters=30, tol=0)
    assert small == pytest.approx(large, rel=1e-12)


def test_uneven_last_batch_is_weighted_by_its_size():
    model, x, y, hessian = _linear_problem(n=60)
    expected = np.linalg.eigvalsh(hessian)[-1]
    got = hessian_top_eigenvalue(model, _mse, _batches(x, y, 16), iters=100, tol=1e-10)
    assert abs(got - expected) / expected < 1e-4


def test_zero_hessian_gives_zero_not_nan():
    model = nn.Linear(3, 1).double()
    batches = [(torch.ones(4, 3, dtype=torch.float64), torch.zeros(4))]

    def loss(out, y):
        return out.mean()  # linear in the weights

    assert hessian_top_eigenvalue(model, loss, batches, iters=3) == 0.0
    assert hessian_trace(model, loss, batches, samples=2) == 0.0


# -- Hessian trace -----------------------------------------------------------------------------


def test_trace_is_exact_for_a_diagonal_hessian():
    # Rademacher v has v_i^2 = 1, so v^T H v = tr(H) for every v when H is diagonal.
    model, loss, batches = _quadratic()
    model.a = torch.diag(torch.tensor([5.0, 2.0, 1.0, 0.5, 0.3, 0.1], dtype=torch.float64))
    assert hessian_trace(model, loss, batches, samples=3, seed=4) == pytest.approx(8.9, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trace_of_linear_least_squares_within_its_standard_error(seed):
    model, x, y, hessian = _linear_problem()
    exact = float(np.sum(np.diag(hessian)))  # the diagonal, summed
    assert exact == pytest.approx(2 / len(x) * float((x**2).sum()), rel=1e-12)
    samples = 400
    # Var(v^T H v) = 2 * sum_{i != j} H_ij^2 for Rademacher v.
    off = hessian - np.diag(np.diag(hessian))
    stderr = math.sqrt(2 * float((off**2).sum()) / samples)
    got = hessian_trace(model, _mse, _batches(x, y, 32), samples=samples, seed=seed)
    assert abs(got - exact) < 4 * stderr


# -- Lanczos: top eigenvalue and trace from one Krylov basis --------------------------------------


def test_lanczos_is_exact_once_its_basis_spans_the_space():
    # Six steps span R^6: the Ritz values are the eigenvalues, tr(Q^T A Q) is tr(A), and no
    # probe is spent on the (empty) rest.
    model, loss, batches = _quadratic()
    counted = _counting(loss)
    est = hessian_lanczos(model, counted, batches, steps=10, samples=5)
    assert est.top_eigenvalue == pytest.approx(5.0, rel=1e-12)
    assert est.trace == pytest.approx(8.9, rel=1e-12) and est.trace_stderr == 0.0
    assert est.hvps == est.top_hvps == counted.calls / len(batches) == 6
    assert est.trace_hvps == 0
    one = _counting(loss)  # one batch: its gradient's graph is built once for every HVP
    kept = hessian_lanczos(model, one, batches[:1], steps=10, samples=5)
    assert one.calls == 1 and kept.hvps == 6
    assert kept.top_eigenvalue == pytest.approx(5.0, rel=1e-12)
    assert kept.trace == pytest.approx(8.9, rel=1e-12)


def test_lanczos_finds_the_top_eigenvalue_of_a_saddle_in_one_run():
    model, loss, batches = _quadratic((-5.0, 3.0, 0.5, -1.0, 0.2, 1.0))
    est = hessian_lanczos(model, loss, batches, steps=6, samples=1)
    assert est.top_eigenvalue == pytest.approx(3.0, rel=1e-12)
    power = _counting(loss)  # a run to -5, then one on H + 5 I
    assert hessian_top_eigenvalue(model, power, batches, iters=200, tol=1e-12) == (
        pytest.approx(3.0, rel=1e-6)
    )
    assert power.calls / len(batches) > 10 * est.top_hvps


def test_lanczos_top_eigenvalue_of_linear_least_squares_and_its_residual():
    model, x, y, hessian = _linear_problem()
    eigenvalues = np.linalg.eigvalsh(hessian)
    for steps in (3, 4):
        est = hessian_lanczos(model, _mse, _batches(x, y, 16), steps=steps, samples=1)
        # A symmetric H has an eigenvalue within the residual of a Ritz value.
        assert min(abs(eigenvalues - est.top_eigenvalue)) <= est.top_residual * (1 + 1e-9)
        assert abs(est.top_eigenvalue - eigenvalues[-1]) / eigenvalues[-1] < 1e-2
    assert abs(est.top_eigenvalue - eigenvalues[-1]) / eigenvalues[-1] < 1e-4
    # power iteration's Rayleigh quotient after as many HVPs is further off
    power = hessian_top_eigenvalue(model, _mse, _batches(x, y, 16), iters=4, tol=0)
    assert abs(power - eigenvalues[-1]) > abs(est.top_eigenvalue - eigenvalues[-1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lanczos_trace_is_unbiased_and_reports_its_own_standard_error(seed):
    model, x, y, hessian = _linear_problem()
    exact = float(np.trace(hessian))
    steps, samples = 3, 400
    est = hessian_lanczos(model, _mse, _batches(x, y, 32), steps, samples, seed=seed)
    assert est.hvps == steps + samples
    # The basis spans the Krylov space of the start vector, drawn as power iteration's is.
    v0 = torch.randn(1, 6, generator=torch.Generator().manual_seed(seed)).double().flatten()
    krylov = np.stack([np.linalg.matrix_power(hessian, k) @ v0.numpy() for k in range(steps)], 1)
    rest = np.eye(6) - (q := np.linalg.qr(krylov)[0]) @ q.T

    def stderr(b):  # of the mean of g^T B g over Rademacher g: Var = 2 sum_{i != j} B_ij^2
        return math.sqrt(2 * float(((b - np.diag(np.diag(b))) ** 2).sum()) / samples)

    deflated = stderr(rest @ hessian @ rest)
    assert est.trace_stderr == pytest.approx(deflated, rel=0.2)
    assert abs(est.trace - exact) < 4 * deflated
    assert deflated < stderr(hessian) / 3  # the basis took the probes' largest variance


def test_lanczos_does_not_depend_on_the_batch_size():
    model, loss, x, y = _tiny_cnn(n=32)
    small = hessian_lanczos(model, loss, _batches(x, y, 8), steps=4, samples=2)
    large = hessian_lanczos(model, loss, _batches(x, y, 32), steps=4, samples=2)
    assert small.top_eigenvalue == pytest.approx(large.top_eigenvalue, rel=1e-9)
    assert small.trace == pytest.approx(large.trace, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lanczos_agrees_with_the_reference_in_half_the_hvps(trained_cnn, seed):
    # The reference at its defaults: power iteration (20 iterations at most, relative
    # tolerance 1e-3) and plain Hutchinson on 10 probes. Agreement: the top eigenvalue within
    # 1%, and the trace within two of the reference's standard errors: the reference's own
    # statement of where the trace lies, which the deflated estimate must not contradict.
    model, x, y = trained_cnn
    cheap = {"landscape_points": 2, "batch_size": 16}  # two batches: an HVP is two loss calls
    ref_loss, new_loss = _counting(nn.CrossEntropyLoss()), _counting(nn.CrossEntropyLoss())
    power = FlatnessConfig(method="power", **cheap)
    lanczos = FlatnessConfig(method="lanczos", lanczos_steps=4, hutchinson_samples=3, **cheap)
    ref = measure_flatness(model, ref_loss, x, y, power, seed=seed)
    new = measure_flatness(model, new_loss, x, y, lanczos, seed=seed)
    # besides the HVPs: the loss, SAM sharpness's two passes and the landscape's two points
    assert ref_loss.calls == 2 * (ref.hvps + 5) and new_loss.calls == 2 * (new.hvps + 5)
    assert new.hvps == 7 and 2 * new.hvps <= ref.hvps
    assert new.hvps_by_measure == {"top_eigenvalue": 4, "trace": 3}
    assert new.top_eigenvalue == pytest.approx(ref.top_eigenvalue, rel=0.01)
    assert abs(new.trace - ref.trace) <= 2 * ref.trace_stderr
    # deflation: a far smaller standard error from fewer probes
    assert new.trace_stderr < ref.trace_stderr / 2


# -- SAM sharpness -------------------------------------------------------------------------------


def test_sam_sharpness_of_quadratic_is_the_closed_form():
    model, loss, batches = _quadratic()
    a, theta, rho = model.a, model.theta.detach().flatten(), 0.05
    g = a @ theta
    # L(theta + eps) - L(theta) = g^T eps + 1/2 eps^T A eps, eps = rho g / |g|
    expected = rho * g.norm() + 0.5 * rho**2 * (g @ a @ g) / (g @ g)
    assert sam_sharpness(model, loss, batches, rho) == pytest.approx(float(expected), rel=1e-9)


def test_sam_sharpness_at_a_stationary_point_is_zero():
    model, loss, batches = _quadratic()
    with torch.no_grad():
        model.theta.zero_()
    assert sam_sharpness(model, loss, batches, 0.05) == 0.0


# -- loss landscape ------------------------------------------------------------------------------


def test_landscape_of_quadratic_is_the_parabola_along_the_direction():
    model, loss, batches = _quadratic()
    alphas, losses = loss_landscape_1d(model, loss, batches, points=11, radius=2.0, seed=3)
    d = filter_normalized_direction(model, seed=3)[0].flatten()
    theta, a = model.theta.detach().flatten(), model.a
    l0 = 0.5 * theta @ a @ theta
    expected = [float(l0 + t * (d @ a @ theta) + 0.5 * t**2 * (d @ a @ d)) for t in alphas]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)
    assert alphas[5] == 0.0 and alphas == [-x for x in reversed(alphas)]
    assert losses[5] == pytest.approx(float(l0), rel=1e-15)
    assert all(np.diff(losses, 2) > 0)  # convex
    # Symmetric about 0 up to the linear term: L(t) + L(-t) - 2 L(0) = t^2 d^T A d.
    curv = float(d @ a @ d)
    for i in range(5):
        t = alphas[10 - i]
        assert losses[i] + losses[10 - i] - 2 * losses[5] == pytest.approx(t**2 * curv, rel=1e-9)


def test_landscape_at_zero_is_the_unperturbed_loss_bitwise():
    model, loss, x, y = _tiny_cnn(dtype=torch.float32)
    batches = _batches(x.float(), y, 16)
    alphas, losses = loss_landscape_1d(model, loss, batches, points=5, radius=0.5, seed=0)
    with torch.no_grad():
        l0 = sum(loss(model(a), b) * (len(b) / len(y)) for a, b in batches)
    assert alphas[2] == 0.0 and losses[2] == float(l0)


def test_filter_normalised_direction_matches_each_filter_norm():
    model, *_ = _tiny_cnn()
    direction = filter_normalized_direction(model, seed=0)
    for d, (name, p) in zip(direction, model.named_parameters(), strict=True):
        if p.dim() == 1:  # BatchNorm scales and shifts, the head's bias
            assert not d.any(), name
        else:
            dims = tuple(range(1, p.dim()))
            np.testing.assert_allclose(
                torch.linalg.vector_norm(d, dim=dims),
                torch.linalg.vector_norm(p.detach(), dim=dims),
                rtol=1e-9,
            )
    again = filter_normalized_direction(model, seed=0)
    other = filter_normalized_direction(model, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(direction, again, strict=True))
    assert not torch.equal(direction[0], other[0])


# -- side effects and determinism ---------------------------------------------------------------


@pytest.mark.parametrize(
    "measure",
    [
        lambda m, f, b: hessian_top_eigenvalue(m, f, b, iters=3),
        lambda m, f, b: hessian_trace(m, f, b, samples=2),
        lambda m, f, b: sam_sharpness(m, f, b, rho=0.5),
        lambda m, f, b: loss_landscape_1d(m, f, b, points=3, radius=1.0),
    ],
    ids=["top_eigenvalue", "trace", "sam_sharpness", "landscape"],
)
def test_weights_buffers_and_grads_are_bitwise_unchanged(measure):
    model, loss, x, y = _tiny_cnn(dtype=torch.float32)
    before = _snapshot(model)
    measure(model, loss, _batches(x.float(), y, 16))
    assert _unchanged(model, before)


def test_measure_flatness_restores_modes_and_weights_and_scales_uint8():
    model, loss, x, y = _tiny_cnn(n=40, dtype=torch.float32)
    model.train()
    model.features[1].eval()  # a mixed state must come back as it was
    modes = [m.training for m in model.modules()]
    before = _snapshot(model)
    images = (x * 255).round().to(torch.uint8)
    settings = FlatnessConfig(
        n_samples=12, batch_size=5, lanczos_steps=3, hutchinson_samples=2, landscape_points=5
    )
    result = measure_flatness(model, loss, images, y, settings, seed=1)
    assert [m.training for m in model.modules()] == modes
    assert _unchanged(model, before)
    assert result.n_samples == 12
    assert result.method == "lanczos" and result.hvps == settings.lanczos_steps + 2
    assert result.hvps_by_measure == {"top_eigenvalue": settings.lanczos_steps, "trace": 2}
    assert len(result.landscape_alphas) == len(result.landscape_losses) == 5
    assert result.landscape_losses[2] == pytest.approx(result.loss, rel=1e-6)
    assert set(result.seconds) >= {"top_eigenvalue", "trace", "sam_sharpness", "landscape"}
    assert all(s >= 0 for s in result.seconds.values())
    assert set(result.metrics()) == {"hessian_top_eigenvalue", "hessian_trace", "sam_sharpness"}
    assert all(math.isfinite(v) for v in result.metrics().values())
    # The same images as floats in [0, 1] give the same numbers.
    as_float = measure_flatness(model, loss, images.float() / 255, y, settings, seed=1)
    assert as_float.top_eigenvalue == pytest.approx(result.top_eigenvalue, rel=1e-5)
    assert as_float.sam_sharpness == pytest.approx(result.sam_sharpness, rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_measure_flatness_is_deterministic_for_a_seed(method):
    model, loss, x, y = _tiny_cnn(n=40)
    settings = FlatnessConfig(
        n_samples=8,
        batch_size=4,
        method=method,
        lanczos_steps=2,
        power_iters=2,
        hutchinson_samples=2,
        landscape_points=3,
    )
    a = measure_flatness(model, loss, x, y, settings)
    b = measure_flatness(model, loss, x, y, settings)
    for key in ("top_eigenvalue", "trace", "sam_sharpness", "loss", "landscape_losses"):
        assert getattr(a, key) == getattr(b, key), key
    c = measure_flatness(model, loss, x, y, settings, seed=1)
    assert c.landscape_losses != a.landscape_losses


def test_fewer_images_than_n_samples_uses_them_all():
    model, loss, x, y = _tiny_cnn(n=6)
    settings = FlatnessConfig(lanczos_steps=2, hutchinson_samples=2, landscape_points=3)
    assert measure_flatness(model, loss, x, y, settings).n_samples == 6


def test_sam_sharpness_is_measured_at_the_settings_radius():
    model, loss, batches = _quadratic()
    x, y = torch.zeros(4, 1, 1, 1, dtype=torch.float64), torch.zeros(4)
    sharpness = []
    for rho in (0.05, 0.2):
        settings = FlatnessConfig(rho=rho, lanczos_steps=2, hutchinson_samples=2)
        result = measure_flatness(model, loss, x, y, settings)
        assert result.rho == rho
        assert result.sam_sharpness == sam_sharpness(model, loss, batches[:1], rho)
        sharpness.append(result.sam_sharpness)
    assert sharpness[1] > 3 * sharpness[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_cuda_matches_cpu(method):
    model, loss, x, y = _tiny_cnn(n=24)
    images = (x * 255).round().to(torch.uint8)
    settings = FlatnessConfig(
        n_samples=16,
        batch_size=8,
        method=method,
        lanczos_steps=4,
        power_iters=5,
        hutchinson_samples=3,
        landscape_points=5,
    )
    cpu = measure_flatness(model, loss, images, y, settings)
    before = _snapshot(model)
    model.cuda()
    gpu = measure_flatness(model, loss, images, y, settings)
    assert next(model.parameters()).is_cuda
    assert _unchanged(model.cpu(), before)
    for key in ("top_eigenvalue", "trace", "sam_sharpness", "loss"):
        assert getattr(gpu, key) == pytest.approx(getattr(cpu, key), rel=1e-6, abs=1e-9), key
    np.testing.assert_allclose(gpu.landscape_losses, cpu.landscape_losses, rtol=1e-6)
    # A CPU model measured on the GPU goes back to the CPU.
    on_gpu = measure_flatness(model, loss, images, y, settings, device="cuda")
    assert not next(model.parameters()).is_cuda
    assert on_gpu.top_eigenvalue == pytest.approx(cpu.top_eigenvalue, rel=1e-6)


@pytest.mark.parametrize(
    "bad",
    [
        {"n_samples": 0},
        {"power_iters": 0},
        {"landscape_points": 1},
        {"power_tol": -1.0},
        {"lanczos_steps": 0},
        {"method": "hutchinson"},
        {"rho": 0.0},
    ],
)
def test_bad_settings_name_the_key(bad):
    model, loss, x, y = _tiny_cnn(n=6)
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=f"flatness.{key}"):
        measure_flatness(model, loss, x, y, FlatnessConfig(**bad))
