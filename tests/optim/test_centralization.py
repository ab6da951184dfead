"""Gradient Centralization on lists of tensors."""

from __future__ import annotations

import torch

from medbench.optim import centralize_gradients
from medbench.optim.centralization import centralized, is_centralized


def _tensors() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    shapes = [(8, 3, 3, 3), (8, 3, 3, 3), (5, 7), (6,), (4, 2, 5)]
    return [torch.randn(*s, generator=gen, dtype=torch.float64) + 3.0 for s in shapes]


def _means(t: torch.Tensor) -> torch.Tensor:
    return t.mean(dim=tuple(range(1, t.dim())))


def test_centralized_tensors_have_zero_mean_per_output_unit():
    tensors = _tensors()
    originals = [t.clone() for t in tensors]
    centralize_gradients(tensors)
    for t, original in zip(tensors, originals, strict=True):
        if t.dim() > 1:
            torch.testing.assert_close(_means(t), torch.zeros(t.shape[0], dtype=t.dtype))
            # only the mean moved: the centred values are unchanged
            torch.testing.assert_close(
                t, original - _means(original).view(-1, *[1] * (t.dim() - 1))
            )
        else:
            assert torch.equal(t, original)  # 1-D left alone, bit for bit


def test_conv_only_centralizes_only_tensors_with_more_than_three_dims():
    tensors = _tensors()
    originals = [t.clone() for t in tensors]
    centralize_gradients(tensors, conv_only=True)
    for t, original in zip(tensors, originals, strict=True):
        if t.dim() > 3:
            torch.testing.assert_close(_means(t), torch.zeros(t.shape[0], dtype=t.dtype))
        else:
            assert torch.equal(t, original)
    assert [is_centralized(t, conv_only=True) for t in tensors] == [True, True, False, False, False]


def test_centralized_copies_leave_the_inputs_alone():
    tensors = _tensors()
    originals = [t.clone() for t in tensors]
    copies = centralized(tensors)
    for t, original, copy in zip(tensors, originals, copies, strict=True):
        assert torch.equal(t, original)
        if t.dim() > 1:
            torch.testing.assert_close(_means(copy), torch.zeros(t.shape[0], dtype=t.dtype))
        else:
            assert copy is t


def test_empty_and_one_dimensional_lists_are_fine():
    centralize_gradients([])
    bias = torch.ones(3)
    centralize_gradients([bias])
    assert torch.equal(bias, torch.ones(3))
