"""Small models and batches shared by the optimizer tests (float64 so comparisons are tight)."""

from __future__ import annotations

import torch
from torch import nn

from medbench.smallcnn import SmallCNN


class Quadratic(nn.Module):
    """loss = (||W||^2 + ||b||^2) / 2, so the gradient at any point is the point itself."""

    def __init__(self) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.tensor([[1.0, 3.0], [1.0, 3.0]], dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))

    def loss(self) -> torch.Tensor:
        return 0.5 * (self.W.pow(2).sum() + self.b.pow(2).sum())


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return SmallCNN(width=4).double().train()


def batches(n: int, seed: int = 1, size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(4, 3, size, size, generator=gen, dtype=torch.float64),
            torch.randint(0, 2, (4,), generator=gen),
        )
        for _ in range(n)
    ]


def loss_of(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def sam_step(model: nn.Module, opt, batch) -> None:
    """One two-call SAM step, as a training loop does it."""
    loss_of(model, batch).backward()
    opt.first_step(zero_grad=True)
    loss_of(model, batch).backward()
    opt.second_step(zero_grad=True)
