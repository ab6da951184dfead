"""The CPU demo's network: four conv blocks and a linear head.

Apart from the registry (``models.py``) so that listing the models imports no torch.
"""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Four conv blocks and a linear head: learns the synthetic BUS task on a CPU in seconds."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        chans = [in_channels, width, width * 2, width * 4, width * 8]
        blocks: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=False):
            blocks += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(chans[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))
