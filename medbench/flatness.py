"""Flatness of a trained model's minimum: Hessian spectrum, SAM sharpness and a 1-D landscape.

SAM and GCSAM claim to find flatter minima; these measures test that claim on the model itself.
Every measure works on a fixed, seeded subset of the training data, given as a list of
``(x, y)`` batches already on the model's device, and treats the loss as the mean over the
whole subset: each batch's loss is weighted by its share of the samples, so the result does not
depend on the batch size. ``loss_fn(logits, y)`` must return the batch *mean* (the default of
``torch.nn`` losses).

Cost is bounded by the settings: one Hessian-vector product (HVP) costs about one forward and
two backward passes over the subset (double backprop), and the measures need at most
``2 * power_iters + hutchinson_samples`` HVPs, one gradient and ``landscape_points + 2`` forward
passes. Random vectors come from seeded CPU generators, so a seed gives the same vectors on
CPU and CUDA. Every function leaves the weights bitwise as it found them and the ``.grad``
fields untouched (gradients are taken with ``torch.autograd.grad``). The single measures use
the model in whatever mode it is in; :func:`measure_flatness` puts it in eval mode first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from medbench.config import FlatnessConfig, check_section
from medbench.errors import ConfigError
from medbench.optim.sam import DEFAULT_RHO

LossFn = Callable[[Tensor, Tensor], Tensor]
Batches = Sequence[tuple[Tensor, Tensor]]


#: Defaults of the single measures: the config's, so that one call and a run agree.
_DEFAULTS = FlatnessConfig()


@dataclass
class FlatnessResult:
    """The flatness measures of one model, with what each cost in seconds."""

    top_eigenvalue: float
    trace: float
    trace_stderr: float  # standard error of the Hutchinson mean, from its samples
    sam_sharpness: float
    loss: float  # the unperturbed loss on the subset
    landscape_alphas: list[float]
    landscape_losses: list[float]
    seconds: dict[str, float] = field(default_factory=dict)
    n_samples: int = 0
    power_hvps: int = 0  # HVPs of the power iteration: power_iters (2x at a saddle) is the cap

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


def _power_iteration(
    hvp: Callable[[list[Tensor]], list[Tensor]], v: list[Tensor], iters: int, tol: float
) -> tuple[float, int]:
    eig, steps = 0.0, 0
    tiny = torch.finfo(v[0].dtype).tiny  # a zero Hessian gives eigenvalue 0, not NaN
    for steps in range(1, iters + 1):
        v = torch._foreach_div(v, _norm(v).clamp_min(tiny))
        hv = hvp(v)
        new = _dot(v, hv).item()  # the Rayleigh quotient: one host sync per iteration
        done = steps > 1 and abs(new - eig) <= tol * abs(new)
        eig, v = new, hv
        if done:
            break
    return eig, steps


def _top_eigenvalue(
    model: nn.Module, loss_fn: LossFn, batches: Batches, iters: int, tol: float, seed: int
) -> tuple[float, int]:
    params = _params(model)
    gen = torch.Generator().manual_seed(seed)
    v0 = _randn_like(params, gen)

    def hvp(v: list[Tensor]) -> list[Tensor]:
        return _hvp(model, loss_fn, batches, params, v)

    eig, steps = _power_iteration(hvp, v0, iters, tol)
    if eig < 0:
        shift = eig

        def shifted(v: list[Tensor]) -> list[Tensor]:
            return torch._foreach_add(hvp(v), v, alpha=-shift)

        top, more = _power_iteration(shifted, v0, iters, tol)
        eig, steps = top + shift, steps + more
    return eig, steps


def hessian_top_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    iters: int = _DEFAULTS.power_iters,
    tol: float = _DEFAULTS.power_tol,
    seed: int = 0,
) -> float:
    """Largest (algebraic) eigenvalue of the loss Hessian, by power iteration on HVPs.

    Stops after ``iters`` HVPs or once the eigenvalue changes by less than ``tol``, relative.
    Power iteration finds the eigenvalue of largest magnitude. Near a minimum that is the top
    one; when it comes out negative (a saddle), a second run on ``H - lambda I`` finds the
    largest algebraic eigenvalue, at most doubling the cost.
    """
    return _top_eigenvalue(model, loss_fn, batches, iters, tol, seed)[0]


def _hutchinson(
    model: nn.Module, loss_fn: LossFn, batches: Batches, samples: int, seed: int
) -> Tensor:
    params = _params(model)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(samples):
        v = _rademacher_like(params, gen)
        values.append(_dot(v, _hvp(model, loss_fn, batches, params, v)))
    return torch.stack(values).double().cpu()


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    samples: int = _DEFAULTS.hutchinson_samples,
    seed: int = 0,
) -> float:
    """Hutchinson estimate of the Hessian trace: the mean of ``v^T H v`` over Rademacher ``v``."""
    return float(_hutchinson(model, loss_fn, batches, samples, seed).mean())


def sam_sharpness(
    model: nn.Module, loss_fn: LossFn, batches: Batches, rho: float = DEFAULT_RHO
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
    rho: float = DEFAULT_RHO,
    seed: int = 0,
) -> FlatnessResult:
    """All four flatness measures on a seeded subset of ``(x, y)``, in eval mode.

    ``rows`` (sorted positions into ``x``) limits the subset to those samples, e.g. a fold's
    training rows of the whole dataset, without copying them out first.

    ``x`` holds N×C×H×W images, uint8 (scaled by 1/255) or float (used as is). Eval mode makes
    the loss deterministic and per-sample (BatchNorm uses its running statistics, dropout is
    off). The model is moved to ``device`` (default: where its parameters are) for the
    measurement; its device, weights and every module's training flag are restored afterwards.
    """
    settings = settings or FlatnessConfig()
    check_section(settings, "flatness")
    if not rho > 0:
        raise ConfigError(f"optimizer.rho: must be > 0 to measure SAM sharpness, got {rho}")
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
        loss = timed("loss", lambda: float(_mean_loss(model, loss_fn, batches).item()))
        top, power_hvps = timed(
            "top_eigenvalue",
            lambda: _top_eigenvalue(model, loss_fn, batches, s.power_iters, s.power_tol, seed),
        )
        values = timed(
            "trace", lambda: _hutchinson(model, loss_fn, batches, s.hutchinson_samples, seed)
        )
        sharp = timed("sam_sharpness", lambda: sam_sharpness(model, loss_fn, batches, rho))
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

    stderr = float(values.std() / len(values) ** 0.5) if len(values) > 1 else float("nan")
    return FlatnessResult(
        top_eigenvalue=top,
        trace=float(values.mean()),
        trace_stderr=stderr,
        sam_sharpness=sharp,
        loss=loss,
        landscape_alphas=alphas,
        landscape_losses=losses,
        seconds=seconds,
        n_samples=len(xs),
        power_hvps=power_hvps,
    )
