"""Flatness of a trained model's minimum: Hessian spectrum, SAM sharpness and a 1-D landscape.

SAM and GCSAM claim to find flatter minima; these measures test that claim on the model itself.
Every measure works on a fixed, seeded subset of the training data, given as a list of
``(x, y)`` batches already on the model's device, and treats the loss as the mean over the
whole subset: each batch's loss is weighted by its share of the samples, so the result does not
depend on the batch size. ``loss_fn(logits, y)`` must return the batch *mean* (the default of
``torch.nn`` losses).

The Hessian's top eigenvalue and trace cost Hessian-vector products (HVPs), each about one
forward and two backward passes over the subset (double backprop), so their estimators are
chosen to need few of them. ``flatness.method: lanczos`` (the default) runs ``lanczos_steps``
steps of the Lanczos method, whose largest Ritz value converges to the top eigenvalue far faster
than power iteration does, and reuses its Krylov basis ``Q`` for the trace: ``tr(H) =
tr(Q^T H Q) + tr(P H P)`` with ``P = I - Q Q^T``; the first term is the sum of Lanczos's
diagonal (no HVP), the second is estimated by Hutchinson on ``hutchinson_samples`` Rademacher
probes projected by ``P`` (Hutch++, Meyer et al. 2021, with Lanczos's basis as the sketch,
as in Chen and Hallman's Krylov-aware variant, 2023). The basis holds the directions of the
largest curvature, which carry most of the probes' variance, so the projected probes are far
less noisy than plain ones; the estimate stays unbiased because the probes are drawn
independently of the basis. ``flatness.method: power`` keeps the reference estimators: power
iteration (at most ``2 * power_iters`` HVPs, twice only at a saddle) and plain Hutchinson
(``hutchinson_samples`` HVPs). Either way a result says how many HVPs it took.

Besides the HVPs the measures take one gradient (SAM sharpness) and ``landscape_points + 2``
forward passes. Random vectors come from seeded CPU generators, so a seed gives the same vectors
on CPU and CUDA. Every function leaves the weights bitwise as it found them and the ``.grad``
fields untouched (gradients are taken with ``torch.autograd.grad``). The single measures use
the model in whatever mode it is in; :func:`measure_flatness` puts it in eval mode first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from medbench.config import FlatnessConfig, check_section

LossFn = Callable[[Tensor, Tensor], Tensor]
Batches = Sequence[tuple[Tensor, Tensor]]


#: Defaults of the single measures: the config's, so that one call and a run agree.
_DEFAULTS = FlatnessConfig()


@dataclass(frozen=True)
class HessianEstimate:
    """The Hessian's top eigenvalue and trace, with their uncertainty and cost in HVPs."""

    top_eigenvalue: float
    # ||H v - lambda v|| of the estimate's vector: a symmetric H has an eigenvalue within it of
    # the estimate, so it says how far from converged the estimate may be (Lanczos computes it
    # from its tridiagonal matrix: it is exact down to the HVPs' own rounding)
    top_residual: float
    trace: float
    trace_stderr: float  # standard error of the probes' mean (0 when the basis spans the space)
    top_hvps: int  # Lanczos: the Krylov basis, shared with the trace; power: its iterations
    trace_hvps: int  # the trace's Rademacher probes

    @property
    def hvps(self) -> int:
        return self.top_hvps + self.trace_hvps


@dataclass
class FlatnessResult:
    """The flatness measures of one model, with what each cost in seconds and HVPs."""

    top_eigenvalue: float
    trace: float
    trace_stderr: float  # the trace estimator's own standard error (see HessianEstimate)
    sam_sharpness: float
    loss: float  # the unperturbed loss on the subset
    landscape_alphas: list[float]
    landscape_losses: list[float]
    seconds: dict[str, float] = field(default_factory=dict)
    n_samples: int = 0
    method: str = _DEFAULTS.method
    rho: float = _DEFAULTS.rho  # the radius of the SAM sharpness
    top_eigenvalue_residual: float = math.nan  # see HessianEstimate.top_residual
    hvps_by_measure: dict[str, int] = field(default_factory=dict)  # top_eigenvalue, trace

    @property
    def hvps(self) -> int:
        """Hessian-vector products of the whole measurement: its dominant cost."""
        return sum(self.hvps_by_measure.values())

    def metrics(self) -> dict[str, float]:
        """Scalar metrics under their MLflow names (``tracking.schema.FLATNESS_METRICS``)."""
        return {
            "hessian_top_eigenvalue": self.top_eigenvalue,
            "hessian_trace": self.trace,
            "sam_sharpness": self.sam_sharpness,
        }


# -- helpers -------------------------------------------------------------------------------


def _params(model: nn.Module) -> list[Tensor]:
    # Frozen parameters are not part of the minimum the optimizer found, so they are left out.
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameter that requires grad")
    return params


def _total(batches: Batches) -> int:
    total = sum(len(y) for _, y in batches)
    if total == 0:
        raise ValueError("no samples in batches")
    return total


def _dot(a: list[Tensor], b: list[Tensor]) -> Tensor:
    # Stays on the device: no host sync per parameter.
    return torch.stack([t.sum() for t in torch._foreach_mul(a, b)]).sum()


def _norm(a: list[Tensor]) -> Tensor:
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(a)))


def _flatten(tensors: Sequence[Tensor]) -> Tensor:
    # Lanczos keeps its basis as one matrix: a row per vector, over all parameters.
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflatten(vec: Tensor, params: list[Tensor]) -> list[Tensor]:
    sizes = [p.numel() for p in params]
    return [v.view(p.shape) for v, p in zip(vec.split(sizes), params, strict=True)]


def _randn_like(params: list[Tensor], gen: torch.Generator) -> list[Tensor]:
    return [torch.randn(p.shape, generator=gen).to(p) for p in params]


def _rademacher_like(params: list[Tensor], gen: torch.Generator) -> list[Tensor]:
    return [(torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).to(p) for p in params]


def _mean_loss(model: nn.Module, loss_fn: LossFn, batches: Batches) -> Tensor:
    total = _total(batches)
    with torch.no_grad():
        return sum(loss_fn(model(x), y) * (len(y) / total) for x, y in batches)


def _gradient(
    model: nn.Module, loss_fn: LossFn, batches: Batches, params: list[Tensor]
) -> tuple[Tensor, list[Tensor]]:
    total = _total(batches)
    grad = [torch.zeros_like(p) for p in params]
    loss = torch.zeros((), dtype=params[0].dtype, device=params[0].device)
    for x, y in batches:
        batch_loss = loss_fn(model(x), y) * (len(y) / total)
        torch._foreach_add_(grad, torch.autograd.grad(batch_loss, params, materialize_grads=True))
        loss += batch_loss.detach()
    return loss, grad


def _hvp(
    model: nn.Module, loss_fn: LossFn, batches: Batches, params: list[Tensor], v: list[Tensor]
) -> list[Tensor]:
    """Hessian of the subset-mean loss times ``v``, summed batch by batch (double backprop)."""
    total = _total(batches)
    out = [torch.zeros_like(p) for p in params]
    for x, y in batches:
        loss = loss_fn(model(x), y) * (len(y) / total)
        grads = torch.autograd.grad(loss, params, create_graph=True, materialize_grads=True)
        gv = _dot(list(grads), v)
        if gv.requires_grad:  # else the loss is linear in the weights here: H = 0
            torch._foreach_add_(out, torch.autograd.grad(gv, params, materialize_grads=True))
    return out


class _Restore:
    """Snapshot the weights and copy them back on exit, so perturbations leave no rounding trace."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params

    def __enter__(self) -> _Restore:
        self.saved = [p.detach().clone() for p in self.params]
        return self

    def __exit__(self, *exc) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.saved)


# -- the measures ----------------------------------------------------------------------------

Hvp = Callable[[list[Tensor]], list[Tensor]]


def _hvp_of(model: nn.Module, loss_fn: LossFn, batches: Batches, params: list[Tensor]) -> Hvp:
    """The HVP of the subset-mean loss, as a function of ``v``.

    With one batch the gradient's graph is built at the first call and kept: every later HVP is
    one double-backward pass, without the forward and first backward pass (about a fifth of an
    HVP), at no extra memory since one HVP holds that graph anyway. With several batches each
    HVP rebuilds them one at a time, so memory stays that of one batch.
    """
    if len(batches) != 1:
        return lambda v: _hvp(model, loss_fn, batches, params, v)
    graph: list[tuple[list[Tensor], list[int]]] = []  # built at the first call

    def hvp(v: list[Tensor]) -> list[Tensor]:
        if not graph:
            ((x, y),) = batches
            grads = torch.autograd.grad(
                loss_fn(model(x), y), params, create_graph=True, materialize_grads=True
            )
            live = [i for i, g in enumerate(grads) if g.requires_grad]
            graph.append(([grads[i] for i in live], live))
        grads, live = graph[0]
        if not live:  # the loss is linear in the weights here: H = 0
            return [torch.zeros_like(p) for p in params]
        return list(
            torch.autograd.grad(
                grads,
                params,
                grad_outputs=[v[i] for i in live],
                retain_graph=True,
                materialize_grads=True,
            )
        )

    return hvp


def _power_iteration(hvp: Hvp, v: list[Tensor], iters: int, tol: float) -> tuple[float, float, int]:
    eig, steps = 0.0, 0
    tiny = torch.finfo(v[0].dtype).tiny  # a zero Hessian gives eigenvalue 0, not NaN
    for steps in range(1, iters + 1):
        unit = torch._foreach_div(v, _norm(v).clamp_min(tiny))
        hv = hvp(unit)
        new = _dot(unit, hv).item()  # the Rayleigh quotient: one host sync per iteration
        done = steps > 1 and abs(new - eig) <= tol * abs(new)
        eig, v = new, hv
        if done:
            break
    residual = _norm(torch._foreach_add(hv, unit, alpha=-eig)).item()
    return eig, residual, steps


def _top_eigenvalue(
    hvp: Hvp, params: list[Tensor], iters: int, tol: float, seed: int
) -> tuple[float, float, int]:
    v0 = _randn_like(params, torch.Generator().manual_seed(seed))
    eig, residual, steps = _power_iteration(hvp, v0, iters, tol)
    if eig < 0:
        shift = eig

        def shifted(v: list[Tensor]) -> list[Tensor]:
            return torch._foreach_add(hvp(v), v, alpha=-shift)

        # the shift moves every eigenvalue alike: the residual is H's as well
        top, residual, more = _power_iteration(shifted, v0, iters, tol)
        eig, steps = top + shift, steps + more
    return eig, residual, steps


def hessian_top_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    iters: int = _DEFAULTS.power_iters,
    tol: float = _DEFAULTS.power_tol,
    seed: int = 0,
) -> float:
    """Largest (algebraic) eigenvalue of the loss Hessian, by power iteration on HVPs.

    The reference estimator (``flatness.method: power``); :func:`hessian_lanczos` needs fewer
    HVPs. Stops after ``iters`` HVPs or once the eigenvalue changes by less than ``tol``,
    relative. Power iteration finds the eigenvalue of largest magnitude. Near a minimum that is
    the top one; when it comes out negative (a saddle), a second run on ``H - lambda I`` finds
    the largest algebraic eigenvalue, at most doubling the cost.
    """
    params = _params(model)
    hvp = _hvp_of(model, loss_fn, batches, params)
    return _top_eigenvalue(hvp, params, iters, tol, seed)[0]


def _mean_and_stderr(values: list[Tensor]) -> tuple[float, float]:
    probes = torch.stack(values).double().cpu()
    stderr = float(probes.std() / len(probes) ** 0.5) if len(probes) > 1 else math.nan
    return float(probes.mean()), stderr


def _hutchinson(hvp: Hvp, params: list[Tensor], samples: int, seed: int) -> tuple[float, float]:
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(samples):
        v = _rademacher_like(params, gen)
        values.append(_dot(v, hvp(v)))
    return _mean_and_stderr(values)


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    samples: int = _DEFAULTS.hutchinson_samples,
    seed: int = 0,
) -> float:
    """Hutchinson estimate of the Hessian trace: the mean of ``v^T H v`` over Rademacher ``v``.

    The reference estimator (``flatness.method: power``); :func:`hessian_lanczos` deflates it.
    """
    params = _params(model)
    return _hutchinson(_hvp_of(model, loss_fn, batches, params), params, samples, seed)[0]


@dataclass(frozen=True)
class _Krylov:
    """What ``steps`` Lanczos steps leave: an orthonormal basis and the tridiagonal ``T``."""

    basis: Tensor  # (k, d): the k vectors whose HVP was taken, orthonormal rows
    alphas: np.ndarray  # diagonal of T: alphas[j] = q_j^T H q_j
    betas: np.ndarray  # off-diagonal of T, and last the norm of the residual left after step k

    def top(self) -> tuple[float, float]:
        """The largest Ritz value, and its residual ``||H y - theta y|| = beta_k |s_k|``."""
        off = self.betas[:-1]
        theta, s = np.linalg.eigh(np.diag(self.alphas) + np.diag(off, 1) + np.diag(off, -1))
        return float(theta[-1]), float(abs(self.betas[-1] * s[-1, -1]))


def _lanczos(hvp: Callable[[Tensor], Tensor], v0: Tensor, steps: int) -> _Krylov:
    """``steps`` steps of Lanczos with full reorthogonalisation, from ``v0``.

    Every new vector is orthogonalised against the whole basis, twice ("twice is enough",
    Parlett): without it the basis loses orthogonality as soon as a Ritz value converges,
    ghost copies of the top eigenvalue appear and the basis would deflate the trace wrongly.
    Storing the basis costs ``steps`` vectors of the parameters' size. Stops early when the
    Krylov space is invariant (the residual vanishes): its Ritz values are then eigenvalues.
    """
    steps = min(steps, v0.numel())  # a basis of the whole space has at most that many vectors
    basis = torch.empty(steps, v0.numel(), dtype=v0.dtype, device=v0.device)
    alphas: list[float] = []
    betas: list[float] = []
    q = v0 / torch.linalg.vector_norm(v0)
    scale = 0.0  # the largest |alpha| and beta so far: how small a residual counts as none
    for j in range(steps):
        basis[j] = q
        w = hvp(q)
        alpha = torch.dot(q, w)
        w = w - alpha * q
        if j > 0:
            w = w - betas[-1] * basis[j - 1]
        done = basis[: j + 1]
        for _ in range(2):
            w = w - done.T @ (done @ w)
        beta = torch.linalg.vector_norm(w)
        alpha_, beta_ = (float(x) for x in torch.stack([alpha, beta]).double().cpu())
        alphas.append(alpha_)
        betas.append(beta_)
        scale = max(scale, abs(alpha_), beta_)
        invariant = beta_ <= 100 * torch.finfo(v0.dtype).eps * scale
        if invariant:
            betas[-1] = 0.0  # the Ritz values are eigenvalues
        if invariant or j == steps - 1:
            basis = basis[: j + 1]
            break
        q = w / beta
    return _Krylov(basis, np.array(alphas), np.array(betas))


def _deflated_hutchinson(
    hvp: Callable[[Tensor], Tensor], krylov: _Krylov, samples: int, gen: torch.Generator
) -> tuple[float, float, int]:
    """``tr(Q^T H Q)`` exactly plus Hutchinson on the complement: (trace, stderr, HVPs)."""
    basis = krylov.basis
    inside = float(krylov.alphas.sum())
    if len(basis) >= basis.shape[1]:  # the basis spans the space: the trace is exact
        return inside, 0.0, 0
    values = []
    for _ in range(samples):
        g = (torch.randint(0, 2, (basis.shape[1],), generator=gen) * 2 - 1).to(basis)
        g = g - basis.T @ (basis @ g)  # P g: one projection, the basis is orthonormal
        values.append(torch.dot(g, hvp(g)))
    outside, stderr = _mean_and_stderr(values)
    return inside + outside, stderr, samples


def _lanczos_hutchpp(
    hvp: Hvp, params: list[Tensor], steps: int, samples: int, seed: int
) -> tuple[_Krylov, Callable[[], tuple[float, float, int]]]:
    """The Krylov basis, and the trace estimate on it (a callable, so each can be timed)."""
    gen = torch.Generator().manual_seed(seed)
    v0 = _flatten(_randn_like(params, gen))  # power iteration's start vector for the same seed

    def flat_hvp(vec: Tensor) -> Tensor:
        return _flatten(hvp(_unflatten(vec, params)))

    krylov = _lanczos(flat_hvp, v0, steps)
    # the probes continue the same generator: independent of the start vector, hence of the basis
    return krylov, lambda: _deflated_hutchinson(flat_hvp, krylov, samples, gen)


def hessian_lanczos(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    steps: int = _DEFAULTS.lanczos_steps,
    samples: int = _DEFAULTS.hutchinson_samples,
    seed: int = 0,
) -> HessianEstimate:
    """Top eigenvalue and trace of the loss Hessian from one Lanczos run (``flatness.method``'s
    default), in at most ``steps + samples`` HVPs.

    The top eigenvalue is the largest Ritz value of ``steps`` Lanczos steps (the largest
    algebraic eigenvalue, saddle or not); the trace is ``tr(Q^T H Q)`` over the Lanczos basis
    ``Q`` plus a Hutchinson estimate, on ``samples`` projected Rademacher probes, of the trace
    left outside it (see the module docstring). Its standard error is the probes'.
    """
    params = _params(model)
    krylov, trace = _lanczos_hutchpp(
        _hvp_of(model, loss_fn, batches, params), params, steps, samples, seed
    )
    top, residual = krylov.top()
    value, stderr, probes = trace()
    return HessianEstimate(top, residual, value, stderr, len(krylov.basis), probes)


def sam_sharpness(
    model: nn.Module, loss_fn: LossFn, batches: Batches, rho: float = _DEFAULTS.rho
) -> float:
    """Loss increase after one SAM ascent step ``eps = rho * g / ||g||`` (plain SAM, not GCSAM)."""
    params = _params(model)
    with _Restore(params):
        loss, grad = _gradient(model, loss_fn, batches, params)
        scale = rho / (_norm(grad) + 1e-12)  # SAM's own guard against a zero gradient
        with torch.no_grad():
            torch._foreach_add_(params, torch._foreach_mul(grad, scale))
        perturbed = _mean_loss(model, loss_fn, batches)
        return float((perturbed - loss).item())


def filter_normalized_direction(model: nn.Module, seed: int = 0) -> list[Tensor]:
    """A random direction scaled filter by filter to the weights' norms (Li et al., 2018).

    For every parameter with more than one dimension, each slice along the first (output)
    dimension -- a conv filter or a linear unit -- gets the norm of the same slice of the
    weights. One-dimensional parameters (BatchNorm scales and shifts, biases) get a zero
    direction, as in Li et al.'s ``ignore='biasbn'``, so the curve shows the weights' landscape.
    """
    params = _params(model)
    gen = torch.Generator().manual_seed(seed)
    direction = _randn_like(params, gen)
    out = []
    for d, p in zip(direction, params, strict=True):
        if p.dim() <= 1:
            out.append(torch.zeros_like(p))
            continue
        dims = tuple(range(1, p.dim()))
        w_norm = torch.linalg.vector_norm(p.detach(), dim=dims, keepdim=True)
        d_norm = torch.linalg.vector_norm(d, dim=dims, keepdim=True)
        out.append(d * (w_norm / (d_norm + 1e-10)))
    return out


def loss_landscape_1d(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    points: int = _DEFAULTS.landscape_points,
    radius: float = _DEFAULTS.landscape_radius,
    seed: int = 0,
) -> tuple[list[float], list[float]]:
    """Loss at ``theta + alpha * d`` for ``points`` alphas evenly spread over ``[-radius, radius]``.

    ``d`` is :func:`filter_normalized_direction`, so ``alpha = 1`` moves each filter by its own
    norm and curves of differently scaled models are comparable.
    """
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    params = _params(model)
    direction = filter_normalized_direction(model, seed)
    # Integer numerators keep the grid exactly symmetric, with an exact 0 when points is odd.
    alphas = [radius * (2 * i - (points - 1)) / (points - 1) for i in range(points)]
    losses = []
    with _Restore(params) as saved:
        for alpha in alphas:
            with torch.no_grad():
                torch._foreach_copy_(
                    params, torch._foreach_add(saved.saved, direction, alpha=alpha)
                )
            losses.append(_mean_loss(model, loss_fn, batches))
    return alphas, torch.stack(losses).double().cpu().tolist()


# -- all at once ------------------------------------------------------------------------------

Timer = Callable[[str, Callable[[], object]], object]


def _hessian(
    hvp: Hvp, params: list[Tensor], settings: FlatnessConfig, seed: int, timed: Timer
) -> HessianEstimate:
    """Top eigenvalue and trace by ``settings.method``, each phase timed under its measure."""
    s = settings
    if s.method == "lanczos":
        krylov, trace = timed(
            "top_eigenvalue",
            lambda: _lanczos_hutchpp(hvp, params, s.lanczos_steps, s.hutchinson_samples, seed),
        )
        top, residual = krylov.top()
        value, stderr, probes = timed("trace", trace)
        return HessianEstimate(top, residual, value, stderr, len(krylov.basis), probes)
    top, residual, steps = timed(
        "top_eigenvalue", lambda: _top_eigenvalue(hvp, params, s.power_iters, s.power_tol, seed)
    )
    value, stderr = timed("trace", lambda: _hutchinson(hvp, params, s.hutchinson_samples, seed))
    return HessianEstimate(top, residual, value, stderr, steps, s.hutchinson_samples)


def _subset(
    x: Tensor, y: Tensor, n_samples: int, seed: int, rows: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}")
    pool = torch.arange(len(x)) if rows is None else torch.as_tensor(rows, dtype=torch.long)
    n = min(n_samples, len(pool))
    gen = torch.Generator().manual_seed(seed)
    index = pool[torch.randperm(len(pool), generator=gen)[:n].sort().values]
    return x[index], y[index]


def measure_flatness(
    model: nn.Module,
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    settings: FlatnessConfig | None = None,
    device: str | torch.device | None = None,
    rows: Tensor | None = None,
    seed: int = 0,
) -> FlatnessResult:
    """All four flatness measures on a seeded subset of ``(x, y)``, in eval mode.

    ``rows`` (sorted positions into ``x``) limits the subset to those samples, e.g. a fold's
    training rows of the whole dataset, without copying them out first. ``settings.method``
    picks the Hessian estimators; SAM sharpness is measured at ``settings.rho`` whatever radius
    the model was trained with, so that every optimizer's sharpness is the same quantity.

    ``x`` holds N×C×H×W images, uint8 (scaled by 1/255) or float (used as is). Eval mode makes
    the loss deterministic and per-sample (BatchNorm uses its running statistics, dropout is
    off). The model is moved to ``device`` (default: where its parameters are) for the
    measurement; its device, weights and every module's training flag are restored afterwards.
    """
    settings = settings or FlatnessConfig()
    check_section(settings, "flatness")
    first = next(model.parameters())
    home = first.device
    device = torch.device(device) if device is not None else home
    xs, ys = _subset(x, y, settings.n_samples, seed, rows)
    xs = xs.to(device)
    xs = xs.to(first.dtype) / 255 if xs.dtype == torch.uint8 else xs.to(first.dtype)
    ys = ys.to(device)
    batches = [
        (xs[i : i + settings.batch_size], ys[i : i + settings.batch_size])
        for i in range(0, len(xs), settings.batch_size)
    ]

    modes = {m: m.training for m in model.modules()}
    model.to(device).eval()
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], object]):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds[name] = time.perf_counter() - start
        return out

    try:
        s = settings
        params = _params(model)
        loss = timed("loss", lambda: float(_mean_loss(model, loss_fn, batches).item()))
        # the HVP's kept graph (one batch) is freed as soon as the Hessian estimates are done
        hessian = _hessian(_hvp_of(model, loss_fn, batches, params), params, s, seed, timed)
        sharp = timed("sam_sharpness", lambda: sam_sharpness(model, loss_fn, batches, s.rho))
        alphas, losses = timed(
            "landscape",
            lambda: loss_landscape_1d(
                model, loss_fn, batches, s.landscape_points, s.landscape_radius, seed
            ),
        )
    finally:
        model.to(home)
        for m, training in modes.items():
            m.training = training

    return FlatnessResult(
        top_eigenvalue=hessian.top_eigenvalue,
        trace=hessian.trace,
        trace_stderr=hessian.trace_stderr,
        sam_sharpness=sharp,
        loss=loss,
        landscape_alphas=alphas,
        landscape_losses=losses,
        seconds=seconds,
        n_samples=len(xs),
        method=settings.method,
        rho=settings.rho,
        top_eigenvalue_residual=hessian.top_residual,
        hvps_by_measure={"top_eigenvalue": hessian.top_hvps, "trace": hessian.trace_hvps},
    )
