import numpy as np
import torch

from medbench.data.pixels.loader import BatchLoader, augment_batch, epoch_generator


def _loader(**kw):
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 4, 4).contiguous()
    labels = torch.arange(10) % 2
    defaults = dict(
        images=images, labels=labels, index=np.array([0, 2, 3, 5, 7, 8, 9]), batch_size=3
    )
    return BatchLoader(**{**defaults, **kw})


def _rows(loader, epoch):
    return [int(v) for x, _ in loader.epoch(epoch) for v in (x[:, 0, 0, 0] * 255).round()]


def test_every_row_once_in_order_without_shuffle():
    loader = _loader()
    assert len(loader) == 3
    assert _rows(loader, 0) == [0, 2, 3, 5, 7, 8, 9]
    x, y = next(loader.epoch(0))
    assert x.dtype == torch.float32 and x.shape == (3, 3, 4, 4)
    assert y.tolist() == [0, 0, 1]


def test_shuffle_depends_only_on_seed_and_epoch():
    a, b = _loader(shuffle=True, seed=4), _loader(shuffle=True, seed=4)
    assert _rows(a, 1) == _rows(b, 1)
    assert sorted(_rows(a, 1)) == [0, 2, 3, 5, 7, 8, 9]
    assert _rows(a, 1) != _rows(a, 2) or _rows(a, 1) != _rows(a, 3)
    assert _rows(_loader(shuffle=True, seed=5), 1) != _rows(a, 1) or _rows(
        _loader(shuffle=True, seed=5), 2
    ) != _rows(a, 2)


def test_labels_follow_their_images():
    loader = _loader(shuffle=True, seed=1)
    for x, y in loader.epoch(3):
        rows = (x[:, 0, 0, 0] * 255).round().long()
        assert torch.equal(y, rows % 2)


def test_augmentation_is_seeded_and_in_range():
    x = torch.rand(4, 3, 16, 16)
    a = augment_batch(x, epoch_generator(0, 1, 1))
    b = augment_batch(x, epoch_generator(0, 1, 1))
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert a.min() >= 0 and a.max() <= 1
