"""Model registry: torchvision and MONAI networks with two-class heads, built without weights.

Nothing here downloads: every network starts from random weights, seeded by the caller, so that a
job is reproducible and runs offline. ``build_model`` mirrors torchvision's ``get_model``. The
registry itself imports no torch (``medbench list`` and config checks stay fast): a network's
package loads when one is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medbench.errors import ConfigError, closest
from medbench.optional import lazy_import

if TYPE_CHECKING:
    from torch import nn

# imported when a model of theirs is built: `medbench list` and `config` validation import no
# torch, and a smallcnn grid skips torchvision and MONAI
smallcnn = lazy_import("medbench.smallcnn")
torchvision_models = lazy_import("torchvision.models")
monai_nets = lazy_import("monai.networks.nets")


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered network."""

    build: Callable[[int, int], nn.Module]  # (num_classes, image_size) -> module
    source: str
    description: str
    min_image_size: int = 32


def _torchvision(name: str, **kwargs) -> Callable[[int, int], nn.Module]:
    def build(num_classes: int, image_size: int) -> nn.Module:
        extra = dict(kwargs)
        if name.startswith("vit_"):
            extra["image_size"] = image_size  # ViT's position embedding is sized for the input
        return torchvision_models.get_model(name, weights=None, num_classes=num_classes, **extra)

    return build


def _monai_densenet121(num_classes: int, image_size: int) -> nn.Module:
    return monai_nets.DenseNet121(spatial_dims=2, in_channels=3, out_channels=num_classes)


def _monai_efficientnet_b0(num_classes: int, image_size: int) -> nn.Module:
    return monai_nets.EfficientNetBN(
        "efficientnet-b0", pretrained=False, spatial_dims=2, in_channels=3, num_classes=num_classes
    )


def _monai_resnet18(num_classes: int, image_size: int) -> nn.Module:
    return monai_nets.resnet18(
        spatial_dims=2, n_input_channels=3, num_classes=num_classes, pretrained=False
    )


MODELS: dict[str, ModelSpec] = {
    "smallcnn": ModelSpec(
        lambda k, s: smallcnn.SmallCNN(num_classes=k),
        "medbench",
        "four conv blocks, 0.1 M parameters: the CPU demo's model",
        16,
    ),
    "resnet18": ModelSpec(_torchvision("resnet18"), "torchvision", "ResNet-18, 11 M parameters"),
    "resnet50": ModelSpec(
        _torchvision("resnet50"), "torchvision", "ResNet-50, 24 M: the authors' GCSAM model"
    ),
    "densenet121": ModelSpec(_torchvision("densenet121"), "torchvision", "DenseNet-121, 7 M"),
    "efficientnet_b0": ModelSpec(
        _torchvision("efficientnet_b0"), "torchvision", "EfficientNet-B0, 4 M"
    ),
    "vgg16": ModelSpec(_torchvision("vgg16"), "torchvision", "VGG-16, 134 M"),
    "vit_b_16": ModelSpec(
        _torchvision("vit_b_16"),
        "torchvision",
        "ViT-B/16, 86 M (needs far more data than BUS sets from scratch)",
        32,
    ),
    "swin_t": ModelSpec(_torchvision("swin_t"), "torchvision", "Swin-T, 28 M", 64),
    "monai_densenet121": ModelSpec(_monai_densenet121, "monai", "MONAI's DenseNet-121"),
    "monai_efficientnet_b0": ModelSpec(_monai_efficientnet_b0, "monai", "MONAI's EfficientNet-B0"),
    "monai_resnet18": ModelSpec(_monai_resnet18, "monai", "MONAI's ResNet-18"),
}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(MODELS)


def check_model(name: str, image_size: int, key: str = "models") -> None:
    """Fail with a ConfigError when ``name`` is unknown or cannot take ``image_size``."""
    if name not in MODELS:
        raise ConfigError(
            f"{key}: unknown model {name!r}{closest(name, list_models())}; known: {', '.join(list_models())}"
        )
    spec = MODELS[name]
    if image_size < spec.min_image_size:
        raise ConfigError(
            f"{key}: model {name!r} needs image_size >= {spec.min_image_size}, got {image_size}"
        )
    if name.startswith("vit_") and image_size % 16:
        raise ConfigError(
            f"{key}: model {name!r} needs image_size divisible by 16, got {image_size}"
        )


def build_model(name: str, num_classes: int = 2, image_size: int = 256) -> nn.Module:
    """Build a randomly initialised network with a ``num_classes``-way head."""
    check_model(name, image_size)
    return MODELS[name].build(num_classes, image_size)
