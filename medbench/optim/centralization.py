"""Gradient Centralization (Yong et al., 2020) for lists of tensors.

A tensor with more than one dimension is centralized by subtracting its mean over every
dimension but the first (the output units), so each output unit's slice sums to zero. 1-D
tensors (biases, norm weights) are left alone. ``conv_only`` limits this to tensors with more
than three dimensions (convolution kernels), as in the original Gradient Centralization code.
"""

from __future__ import annotations

import torch
from torch import Tensor


def is_centralized(tensor: Tensor, conv_only: bool = False) -> bool:
    """Whether Gradient Centralization applies to a tensor of this shape."""
    return tensor.dim() > (3 if conv_only else 1)


def channel_means(tensors: list[Tensor]) -> list[Tensor]:
    """Mean of each tensor over all dimensions but the first, shaped to broadcast against it."""
    # Reductions have no multi-tensor form; these are small outputs, one kernel per tensor.
    return [t.mean(dim=tuple(range(1, t.dim())), keepdim=True) for t in tensors]


def centralize_gradients(tensors: list[Tensor], conv_only: bool = False) -> None:
    """Centralize, in place, every tensor of the list that Gradient Centralization applies to.

    Parameters
    ----------
    tensors : list of Tensor
        Gradients (or any tensors); those with more than one dimension (more than three with
        ``conv_only``) get their mean over all dimensions but the first subtracted.
    conv_only : bool, default=False
        Centralize only convolution kernels, as the original Gradient Centralization code.
    """
    chosen = [t for t in tensors if is_centralized(t, conv_only)]
    if chosen:
        torch._foreach_sub_(chosen, channel_means(chosen))


def centralized(tensors: list[Tensor], conv_only: bool = False) -> list[Tensor]:
    """Centralized copies of the tensors GC applies to; the others are returned as they are."""
    chosen = [i for i, t in enumerate(tensors) if is_centralized(t, conv_only)]
    if not chosen:
        return list(tensors)
    picked = [tensors[i] for i in chosen]
    out = list(tensors)
    for i, t in zip(chosen, torch._foreach_sub(picked, channel_means(picked)), strict=True):
        out[i] = t
    return out
