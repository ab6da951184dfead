"""Does the compute dtype carry SAM's perturbation? Fidelity of ``e(w)`` under low precision.

Under bf16 autocast, convolutions and linear layers compute with ``bf16(w)``. SAM moves the
weights to ``w + e`` with ``||e|| = rho`` spread over millions of weights, so each element of
``e`` is tiny next to ``w``: ``bf16(w + e)`` often equals ``bf16(w)`` and the network sees little
of the intended perturbation. This module measures what it sees, ``cast(w + e) - cast(w)``,
against the intended ``e``: the cosine between them (the *fidelity*) and the ratio of their
norms. In float32 both are 1.0 up to float32 rounding.

TF32 (CUDA, Ampere and later) does the same to fp32 training: tensor cores read a convolution's
or a matmul's float32 inputs rounded to 10 mantissa bits, so the weights they consume are
``tf32(w + e)``; with ``dtype`` :data:`TF32` the perturbation is measured as they consume it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

#: Below this cosine the network sees too little of SAM's perturbation for the arm to be SAM:
#: training warns, the report flags the arm.
FIDELITY_THRESHOLD = 0.9

#: Modules whose parameters autocast feeds to its lower-precision kernels: convolutions (cuDNN's
#: TF32 flag) and matmuls (CUDA's matmul TF32 flag).
CONV_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
MATMUL_MODULES = (nn.Linear, nn.MultiheadAttention)
CAST_MODULES = CONV_MODULES + MATMUL_MODULES

#: ``dtype`` of :func:`perturbation_fidelity` for fp32 weights that kernels read as TF32.
TF32 = "tf32"


def cast_parameters(model: nn.Module, conv: bool = True, matmul: bool = True) -> set[int]:
    """Ids of the parameters computed in the lower precision: those of convolutions and/or of
    matmul layers (autocast lowers both; TF32 each under its own flag)."""
    kinds = (CONV_MODULES if conv else ()) + (MATMUL_MODULES if matmul else ())
    return {
        id(p)
        for module in model.modules()
        if kinds and isinstance(module, kinds)
        for p in module.parameters(recurse=False)
    }


def round_tf32(t: Tensor) -> Tensor:
    """float32 values as TF32 holds them: the mantissa rounded to its upper 10 bits (to nearest;
    the 13 lower bits cleared), the exponent kept."""
    bits = t.detach().float().contiguous().view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)


def _lowered(t: Tensor, dtype: torch.dtype | str) -> Tensor:
    return round_tf32(t) if dtype == TF32 else t.to(dtype)


def perturbation_fidelity(
    before: Mapping[int, Tensor],
    pairs: Iterable[tuple[Tensor, Tensor]],
    cast: set[int],
    dtype: torch.dtype | str | None,
) -> tuple[float, float]:
    """Cosine and norm ratio between the intended ``e`` and the perturbation the forward sees.

    Parameters
    ----------
    before : mapping of int to Tensor
        The weights ``w`` before the ascent step, by parameter id.
    pairs : iterable of (Tensor, Tensor)
        (parameter now at ``w + e``, ``e``), as :attr:`medbench.optim.SAM.perturbation` gives.
    cast : set of int
        Ids of the parameters computed in ``dtype`` (:func:`cast_parameters`); the others are
        used as they are stored.
    dtype : torch.dtype, "tf32" or None
        The autocast dtype (e.g. ``torch.bfloat16``), :data:`TF32` for fp32 weights that the
        kernels read as TF32, or None when they read them as they are.

    Returns
    -------
    (float, float)
        ``cos(e, seen)`` and ``||seen|| / ||e||``; NaN when ``e`` is zero.
    """
    dot = seen_sq = e_sq = 0.0
    for p, e in pairs:
        w = before[id(p)]
        lowered = dtype is not None and id(p) in cast
        p = p.detach()
        now, then = (_lowered(p, dtype), _lowered(w, dtype)) if lowered else (p, w)
        seen = now.double() - then.double()
        e64 = e.double()
        dot += float((seen * e64).sum())
        seen_sq += float((seen * seen).sum())
        e_sq += float((e64 * e64).sum())
    if e_sq == 0.0:
        return math.nan, math.nan
    if seen_sq == 0.0:
        return 0.0, 0.0
    return dot / math.sqrt(seen_sq * e_sq), math.sqrt(seen_sq / e_sq)
