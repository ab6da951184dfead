"""The training path on a CUDA GPU: bf16 autocast, channels_last, data on the device, compile.

Skipped without CUDA; ``scripts/bench_gpu.sh`` runs it on a GPU machine.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from medbench.config import load_config
from medbench.data.folds import FoldSplit
from medbench.data.pixels.loader import BatchLoader, place_images
from medbench.engine.device import Precision
from medbench.engine.handlers import default_handlers
from medbench.engine.jobs import Job
from medbench.engine.train import FoldData, train_job

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _data(n=96, size=64, device="cuda"):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    images = (torch.rand(n, 3, size, size, generator=g) * 120).to(torch.uint8)
    images[labels == 1, :, size // 4 : size // 2, size // 4 : size // 2] = 250  # learnable
    manifest = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(n)],
            "site": ["A"] * n,
            "fold": [i % 3 for i in range(n)],
            "label": labels.numpy(),
            "birads_reader1": [None] * n,
            "birads_reader2": [None] * n,
        }
    )
    split = FoldSplit(fold=0, train=np.arange(32, n), val=np.arange(16, 32), test=np.arange(0, 16))
    return FoldData(
        images=place_images(images, torch.device(device)),
        labels=labels,
        manifest=manifest,
        split=split,
    )


@cuda
def test_precision_defaults_on_cuda():
    p = Precision.for_device(torch.device("cuda"))
    assert p.autocast and p.channels_last
    assert not Precision.for_device(torch.device("cpu")).autocast


@cuda
def test_batches_are_cut_on_the_gpu_in_channels_last():
    data = _data()
    assert data.images.is_cuda  # a small set lives on the GPU: no host transfer per batch
    loader = BatchLoader(
        images=data.images,
        labels=data.labels,
        index=data.split.train,
        batch_size=8,
        device=torch.device("cuda"),
        shuffle=True,
        channels_last=True,
    )
    x, y = next(loader.epoch(0))
    assert x.is_cuda and y.is_cuda and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)


@cuda
@pytest.mark.parametrize("model", ["smallcnn", "resnet18"])
@pytest.mark.parametrize("optimizer", ["adam", "sam", "gcsam"])
def test_train_job_on_gpu(model, optimizer):
    config = load_config(
        "demo",
        [
            f"models=[{model}]",
            "data.image_size=64",
            "train.epochs=3",
            "optimizer.lr=0.001",
            "flatness.enabled=true",
            "flatness.n_samples=32",
            "flatness.power_iters=3",
            "flatness.hutchinson_samples=2",
            "flatness.landscape_points=5",
        ],
    )
    result = train_job(
        Job(model, optimizer, 0, 0), config, _data(), torch.device("cuda"), default_handlers(config)
    )
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    assert 0.0 <= result.test["auc"] <= 1.0
    assert math.isfinite(result.flatness["hessian_top_eigenvalue"])


@cuda
def test_compiled_model_trains():
    config = load_config(
        "demo",
        ["data.image_size=64", "train.epochs=2", "train.compile=true", "flatness.enabled=false"],
    )
    result = train_job(Job("smallcnn", "gcsam", 0, 0), config, _data(), torch.device("cuda"))
    assert len(result.history) == 2 and math.isfinite(result.test_loss)


@cuda
def test_host_resident_images_use_pinned_non_blocking_copies():
    data = _data(device="cpu")
    loader = BatchLoader(
        images=data.images,
        labels=data.labels,
        index=data.split.train,
        batch_size=8,
        device=torch.device("cuda"),
    )
    x, _ = next(loader.epoch(0))
    assert x.is_cuda and not data.images.is_cuda


@cuda
def test_a_job_trains_from_images_placed_on_the_gpu_once():
    """The engine's setup puts the preprocessed set on the device when it fits (no pinned copy
    per batch): the loaders of a job cut their batches there."""
    from medbench.engine.train import setup

    config = load_config("demo", ["data.image_size=64", "flatness.enabled=false"])
    fit = setup(Job("smallcnn", "adam", 0, 0), config, _data(device="cpu"), torch.device("cuda"))
    assert fit.train.images.is_cuda and fit.test.images is fit.train.images
