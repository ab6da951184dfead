"""Where a job computes and in which precision: device choice, bf16 autocast, channels_last."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from medbench.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else the CPU; asking for CUDA without one is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"train.device: {name!r} asked for but no CUDA device is available (use auto or cpu)"
        )
    return device


def set_tf32(device: torch.device, mode: str) -> None:
    """``on``/``off``: TF32 for CUDA matmuls and cuDNN convolutions; ``default``: leave them."""
    if device.type != "cuda" or mode == "default":
        return
    torch.backends.cuda.matmul.allow_tf32 = mode == "on"
    torch.backends.cudnn.allow_tf32 = mode == "on"


def tf32_kernels(device: torch.device, mode: str) -> tuple[bool, bool]:
    """(convolutions, matmuls) that compute in TF32 on ``device`` under ``train.tf32``: only
    CUDA devices of compute capability 8 (Ampere) and later have TF32; ``default`` is PyTorch's
    own flags as they stand (cuDNN convolutions in TF32, matmuls not, unless changed)."""
    if device.type != "cuda" or torch.cuda.get_device_capability(device)[0] < 8:
        return False, False
    if mode != "default":
        return mode == "on", mode == "on"
    return bool(torch.backends.cudnn.allow_tf32), bool(torch.backends.cuda.matmul.allow_tf32)


@dataclass(frozen=True)
class Precision:
    """How tensors are laid out and computed on the device (bf16 autocast, channels_last)."""

    autocast: bool
    channels_last: bool

    @classmethod
    def for_device(
        cls, device: torch.device, amp: str = "auto", channels_last: str = "auto"
    ) -> Precision:
        cuda = device.type == "cuda"
        return cls(
            autocast=(amp == "bf16") or (amp == "auto" and cuda),
            channels_last=(channels_last == "on") or (channels_last == "auto" and cuda),
        )

    #: The autocast dtype (bf16: the range of fp32, no loss scaling needed).
    dtype = torch.bfloat16

    def context(self, device: torch.device):
        if not self.autocast:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)

    def describe(self, tf32: tuple[bool, bool] = (False, False)) -> str:
        """'bf16 autocast', 'fp32', or fp32 with the kernels that run in TF32
        (:func:`tf32_kernels`), for messages, reports and each run's tag ``medbench.precision``."""
        if self.autocast:
            return "bf16 autocast"
        kernels = [k for k, on in zip(("convolutions", "matmuls"), tf32, strict=True) if on]
        return f"fp32, TF32 {' and '.join(kernels)}" if kernels else "fp32"
