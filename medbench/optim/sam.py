"""Sharpness-Aware Minimization (SAM, ASAM) and Gradient-Centralized SAM (GCSAM).

SAM (Foret et al., 2021) takes each step in two passes: ``first_step`` moves the weights to the
nearby point of highest loss, ``w + e(w)`` with ``e(w) = rho * g / ||g||``; the caller then
computes the gradient there, and ``second_step`` moves back to ``w`` and lets the base optimizer
step with that gradient. ASAM (Kwon et al., 2021) scales the neighbourhood by ``|w|``.
GCSAM (Hassan et al., 2025) ascends along the centralized gradient instead.

The interface is that of ``davda54/sam``. Unlike it, the base optimizer's state is part of
``state_dict`` (a resumed run continues exactly), and every per-parameter operation is a
multi-tensor (``torch._foreach_*``) kernel with no host-device synchronisation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim import Optimizer
from torch.optim.optimizer import ParamsT

from medbench.optim.centralization import centralize_gradients, centralized
from medbench.optim.defaults import DEFAULT_RHO, GC_NORMS

# Keeps rho / ||g|| finite when the gradient vanishes (the published codes use the same value).
NORM_EPS = 1e-12

_Bucket = tuple[dict[str, Any], list[Tensor], list[Tensor]]  # (param group, params, grads)


class SAM(Optimizer):
    """Sharpness-Aware Minimization around any base optimizer (Adam by default).

    Two-call style::

        loss_fn(model(x), y).backward()
        optimizer.first_step(zero_grad=True)
        loss_fn(model(x), y).backward()
        optimizer.second_step(zero_grad=True)

    or ``optimizer.step(closure)`` after the first backward, where ``closure`` runs the second
    forward-backward pass. ``param_groups`` and ``state`` are the base optimizer's own, so LR
    schedulers and checkpoints see one optimizer. Save checkpoints between steps: ``e(w)`` lives
    only between ``first_step`` and ``second_step`` and is not part of ``state_dict``.

    Parameters
    ----------
    params : iterable of Tensor or dict
        Parameters to optimize, or parameter groups, as for any torch optimizer.
    base_optimizer : callable, default=torch.optim.Adam
        Optimizer class (or factory) that takes the descent step; built over this optimizer's
        parameter groups with ``base_kwargs``.
    rho : float, default=0.05
        Radius of the neighbourhood: ``||e(w)|| = rho`` (in ``|w|``-scaled units for ASAM).
    adaptive : bool, default=False
        ASAM: scale the neighbourhood by ``|w|``.
    **base_kwargs
        Settings of the base optimizer (``lr``, ``weight_decay``, ...), also stored per group.

    Raises
    ------
    ValueError
        ``rho`` is negative, ``params`` is empty, or the base optimizer rejects a value (e.g. a
        negative ``lr``).
    TypeError
        The base optimizer does not take one of ``base_kwargs``.
    """

    #: Forward-backward passes per step: the ascent's and the descent's.
    passes_per_step = 2

    def __init__(
        self,
        params: ParamsT,
        base_optimizer: Callable[..., Optimizer] = torch.optim.Adam,
        rho: float = DEFAULT_RHO,
        adaptive: bool = False,
        **base_kwargs: Any,
    ) -> None:
        if rho < 0.0:
            raise ValueError(f"rho must be non-negative, got {rho}")
        defaults = dict(rho=rho, adaptive=bool(adaptive), **self._extra_defaults(), **base_kwargs)
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state
        # (params, e(w)) per bucket while the weights sit at w + e(w); empty otherwise.
        self._perturbation: list[tuple[list[Tensor], list[Tensor]]] = []

    @property
    def perturbation(self) -> list[tuple[Tensor, Tensor]]:
        """(parameter, e(w)) pairs while the weights sit at ``w + e(w)``; empty otherwise."""
        return [
            pair for params, e_w in self._perturbation for pair in zip(params, e_w, strict=True)
        ]

    def _extra_defaults(self) -> dict[str, Any]:
        """Per-group settings a subclass adds to rho and adaptive."""
        return {}

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move the weights from ``w`` to ``w + e(w)`` along the current gradient.

        Parameters
        ----------
        zero_grad : bool, default=False
            Clear the gradients afterwards, ready for the backward pass at ``w + e(w)``.

        Raises
        ------
        RuntimeError
            Called again before :meth:`second_step`.
        """
        if self._perturbation:
            raise RuntimeError("first_step called twice without second_step in between")
        buckets = self._buckets()
        if buckets:
            norm = self._global_norm(buckets)
            for group, params, grads in buckets:
                scale = (group["rho"] / (norm + NORM_EPS)).to(params[0].device)
                e_w = self._perturbation_of(group, params, grads, scale)
                torch._foreach_add_(params, e_w)
                self._perturbation.append((params, e_w))
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Move back to ``w`` and step the base optimizer with the gradient taken at ``w + e(w)``.

        Moving back subtracts ``e(w)``, as the published SAM and GCSAM codes do (one buffer per
        parameter; ``w`` comes back up to float rounding, not bit for bit).

        Parameters
        ----------
        zero_grad : bool, default=False
            Clear the gradients after the step.
        """
        for params, e_w in self._perturbation:
            torch._foreach_sub_(params, e_w)
        self._perturbation = []
        self.base_optimizer.step()
        # LR schedulers look for this flag to know the optimizer has stepped; the two-call
        # style never calls step(), so without it they warn about a wrong call order.
        self._opt_called = True
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One SAM step; the gradient at ``w`` must exist, ``closure`` recomputes it at ``w + e(w)``.

        Parameters
        ----------
        closure : callable
            Runs the second forward-backward pass (the gradients are already cleared) and
            returns the loss; called with gradients enabled.

        Returns
        -------
        Any
            What ``closure`` returns (the loss at the perturbed point).

        Raises
        ------
        ValueError
            No closure was given.
        """
        if closure is None:
            raise ValueError(
                f"{type(self).__name__}.step needs a closure that runs the second "
                "forward-backward pass (or call first_step and second_step)"
            )
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to both optimizers, with the base optimizer's defaults filled in."""
        base = getattr(self, "base_optimizer", None)
        if base is None:  # called by Optimizer.__init__, before the base optimizer exists
            super().add_param_group(param_group)
            return
        for key, value in self.defaults.items():
            param_group.setdefault(key, value)
        base.add_param_group(param_group)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a checkpoint; the base optimizer shares the loaded groups and state."""
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups
        self.base_optimizer.state = self.state

    def _buckets(self) -> list[_Bucket]:
        """Parameters with gradients, per group and (device, dtype), as multi-tensor ops need."""
        buckets: list[_Bucket] = []
        for group in self.param_groups:
            split: dict[tuple[torch.device, torch.dtype], tuple[list[Tensor], list[Tensor]]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    params, grads = split.setdefault((p.device, p.dtype), ([], []))
                    params.append(p)
                    grads.append(p.grad)
            buckets += [(group, params, grads) for params, grads in split.values()]
        return buckets

    def _global_norm(self, buckets: list[_Bucket]) -> Tensor:
        """L2 norm over all buckets of the vector that ``rho`` is measured against."""
        device = buckets[0][1][0].device
        norms = []
        for group, params, grads in buckets:
            terms = self._norm_terms(group, params, grads)
            low = terms[0].dtype in (torch.float16, torch.bfloat16)
            per_tensor = torch._foreach_norm(terms, 2, dtype=torch.float32 if low else None)
            norms.append(torch.stack(per_tensor).to(device))
        return torch.linalg.vector_norm(torch.cat(norms))

    def _norm_terms(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]
    ) -> list[Tensor]:
        """The tensors whose joint norm normalises the ascent: ``g``, or ``|w| * g`` for ASAM."""
        if not group["adaptive"]:
            return grads
        terms = torch._foreach_abs(params)
        torch._foreach_mul_(terms, grads)
        return terms

    def _perturbation_of(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], scale: Tensor
    ) -> list[Tensor]:
        """``e(w) = scale * g``, or ``scale * w**2 * g`` for ASAM, as new tensors."""
        e_w = torch._foreach_mul(grads, scale)
        self._shape_ascent_(group, e_w)
        if group["adaptive"]:
            torch._foreach_mul_(e_w, params)
            torch._foreach_mul_(e_w, params)
        return e_w

    def _shape_ascent_(self, group: dict[str, Any], e_w: list[Tensor]) -> None:
        """Hook to change the ascent direction in place (after scaling, before ASAM's w**2)."""


class GCSAM(SAM):
    """SAM whose ascent follows the centralized gradient (Hassan et al., 2025).

    Defaults reproduce the authors' released code: ``rho`` is divided by the norm of the raw
    gradient, only the ascent direction is centralized, and the descent is the base optimizer's
    step with the raw gradient taken at ``w + e(w)``. ``gc_norm="centralized"`` divides by the
    norm of the centralized gradient instead (the paper's formula: ``||e(w)|| = rho``).
    ``gc_conv_only=True`` centralizes only tensors with more than three dimensions.

    Parameters
    ----------
    params : iterable of Tensor or dict
        Parameters to optimize, or parameter groups.
    base_optimizer : callable, default=torch.optim.Adam
        Optimizer class (or factory) that takes the descent step.
    rho : float, default=0.05
        Radius of the neighbourhood.
    adaptive : bool, default=False
        Scale the neighbourhood by ``|w|``, as ASAM does.
    gc_conv_only : bool, default=False
        Centralize only tensors with more than three dimensions (convolution kernels).
    gc_norm : {"raw", "centralized"}, default="raw"
        Gradient whose norm ``rho`` is divided by: the raw one (the released code) or the
        centralized one (the paper's formula).
    **base_kwargs
        Settings of the base optimizer (``lr``, ``weight_decay``, ...).

    Raises
    ------
    ValueError
        ``gc_norm`` is not one of the two, or as for :class:`SAM`.
    TypeError
        The base optimizer does not take one of ``base_kwargs``.
    """

    def __init__(
        self,
        params: ParamsT,
        base_optimizer: Callable[..., Optimizer] = torch.optim.Adam,
        rho: float = DEFAULT_RHO,
        adaptive: bool = False,
        gc_conv_only: bool = False,
        gc_norm: str = "raw",
        **base_kwargs: Any,
    ) -> None:
        if gc_norm not in GC_NORMS:
            raise ValueError(f"gc_norm must be one of {', '.join(GC_NORMS)}, got {gc_norm!r}")
        self._gc = {"gc_conv_only": bool(gc_conv_only), "gc_norm": gc_norm}
        super().__init__(params, base_optimizer, rho=rho, adaptive=adaptive, **base_kwargs)

    def _extra_defaults(self) -> dict[str, Any]:
        return dict(self._gc)

    def _norm_terms(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]
    ) -> list[Tensor]:
        if group["gc_norm"] == "centralized":
            # Transient centralized copies, freed once the norm is taken; e(w) recomputes
            # the (cheap) channel means rather than keeping a second buffer per parameter.
            grads = centralized(grads, group["gc_conv_only"])
        return super()._norm_terms(group, params, grads)

    def _shape_ascent_(self, group: dict[str, Any], e_w: list[Tensor]) -> None:
        # Centralizing is linear, so centralizing scale * g equals scale * centralized g.
        centralize_gradients(e_w, group["gc_conv_only"])


def disable_running_stats(model: nn.Module) -> None:
    """Keep BatchNorm running statistics unchanged (for SAM's second forward pass).

    Batch statistics still normalise the batch, as in any training forward pass; the running
    mean, variance and batch counter are left as they are until :func:`enable_running_stats`.

    Parameters
    ----------
    model : torch.nn.Module
        Model whose BatchNorm layers (any ``_BatchNorm``) stop updating their running statistics;
        calling it twice in a row keeps the state saved by the first call.
    """
    for module in model.modules():
        if isinstance(module, _BatchNorm) and not hasattr(module, "_medbench_tracking"):
            module._medbench_tracking = module.track_running_stats
            module.track_running_stats = False


def enable_running_stats(model: nn.Module) -> None:
    """Undo :func:`disable_running_stats`.

    Parameters
    ----------
    model : torch.nn.Module
        Model whose BatchNorm layers get back the running-statistics setting they had; layers
        that were not disabled are left alone.
    """
    for module in model.modules():
        if isinstance(module, _BatchNorm) and hasattr(module, "_medbench_tracking"):
            module.track_running_stats = module._medbench_tracking
            del module._medbench_tracking
