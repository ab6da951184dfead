import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from medbench.data.pixels.transforms import (
    PreprocessSettings,
    load_cached,
    preprocess,
    to_uint8,
)
from medbench.errors import DataError


def _speckle_png(path, size, mode, seed):
    rng = np.random.default_rng(seed)
    w, h = size
    base = Image.fromarray((rng.random((h // 8, w // 8)) * 255).astype(np.uint8)).resize(
        (w, h), Image.BICUBIC
    )
    arr = np.clip(np.asarray(base, dtype=float) + rng.normal(0, 35, (h, w)), 0, 255).astype(
        np.uint8
    )
    img = Image.fromarray(arr)
    if mode == "RGB":
        img = Image.merge("RGB", [img, img.point(lambda v: v * 0.9), img.point(lambda v: 255 - v)])
    elif mode == "RGBA":
        img = img.convert("RGBA")
    elif mode == "P":
        img = img.convert("RGB").quantize(64)
    img.save(path)
    return path


REFERENCE = T.Compose([T.Resize((256, 256)), T.ToTensor()])


@pytest.mark.parametrize(
    ("mode", "size"),
    [
        ("L", (600, 500)),
        ("RGB", (513, 611)),
        ("RGBA", (400, 420)),
        ("P", (640, 480)),
        ("L", (200, 150)),
    ],
)
def test_agrees_with_reference_pipeline(tmp_path, mode, size):
    path = _speckle_png(tmp_path / "x.png", size, mode, seed=hash(mode) % 1000)
    ours = preprocess(path, PreprocessSettings(image_size=256))
    with Image.open(path) as img:
        ref = REFERENCE(img.convert("RGB"))
    assert ours.shape == ref.shape == (3, 256, 256)
    assert ours.dtype == torch.float32
    diff = (ours - ref).abs()
    assert diff.mean().item() <= 0.005
    assert diff.max().item() <= 0.06
    # the cached (uint8) form is what training sees: it must agree as well
    diff8 = (to_uint8(ours).float() / 255 - ref).abs()
    assert diff8.mean().item() <= 0.005 and diff8.max().item() <= 0.06


def test_sixteen_bit_is_scaled_by_full_range(tmp_path):
    arr = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    out = preprocess(tmp_path / "deep.png", PreprocessSettings(image_size=32))
    assert out.shape == (3, 32, 32)
    assert 0.0 <= out.min() < 0.05 and 0.95 < out.max() <= 1.0
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])


def test_cache_decodes_once_and_tracks_content(tmp_path):
    paths = [str(_speckle_png(tmp_path / f"{i}.png", (90, 70), "L", i)) for i in range(4)]
    settings = PreprocessSettings(image_size=24)
    root = tmp_path / "cache"
    first = load_cached(paths, settings, root=root, workers=1)
    assert (
        first.decoded == 4
        and first.images.shape == (4, 3, 24, 24)
        and first.images.dtype == torch.uint8
    )
    second = load_cached(paths, settings, root=root, workers=1)
    assert second.decoded == 0 and torch.equal(first.images, second.images)
    _speckle_png(paths[2], (90, 70), "L", 99)  # same name, new content
    third = load_cached(paths, settings, root=root, workers=1)
    assert third.decoded == 1 and not torch.equal(third.images[2], first.images[2])
    other = load_cached(paths, PreprocessSettings(image_size=16), root=root, workers=1)
    assert other.decoded == 4 and other.images.shape[-1] == 16


def test_cache_matches_direct_preprocessing_with_workers(tmp_path):
    paths = [str(_speckle_png(tmp_path / f"{i}.png", (80, 60), "RGB", i)) for i in range(20)]
    settings = PreprocessSettings(image_size=20)
    cached = load_cached(paths, settings, root=tmp_path / "c", workers=2)
    direct = torch.stack([to_uint8(preprocess(p, settings)) for p in paths])
    assert torch.equal(cached.images, direct)


@pytest.mark.parametrize("content", [b"", b"not a png at all", "truncated"])
def test_bad_image_names_the_file(tmp_path, content):
    good = _speckle_png(tmp_path / "good.png", (60, 60), "L", 1)
    bad = tmp_path / "bad(3).png"
    bad.write_bytes(good.read_bytes()[:200] if content == "truncated" else content)
    with pytest.raises(DataError, match=r"bad\(3\)\.png"):
        load_cached(
            [str(good), str(bad)], PreprocessSettings(image_size=16), root=tmp_path / "c", workers=1
        )


@pytest.mark.parametrize("damage", ["truncated", "object_array", "other_shape", "not_npy"])
def test_an_unreadable_cache_entry_is_rebuilt(tmp_path, damage):
    """Issue 25 #11: a truncated or object-array .npy in the cache crashed every run."""
    from medbench.errors import MedbenchWarning

    paths = [str(_speckle_png(tmp_path / f"{i}.png", (90, 70), "L", i)) for i in range(3)]
    settings = PreprocessSettings(image_size=24)
    root = tmp_path / "cache"
    first = load_cached(paths, settings, root=root, workers=1)
    entry = next(iter(sorted((root / settings.key()).rglob("*.npy"))))
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:100])
    elif damage == "object_array":
        np.save(entry, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif damage == "other_shape":
        np.save(entry, np.zeros((3, 8, 8), dtype=np.uint8))
    else:
        entry.write_bytes(b"garbage")
    with pytest.warns(MedbenchWarning, match="1 unreadable entries of the preprocessing cache"):
        again = load_cached(paths, settings, root=root, workers=1)
    assert again.decoded == 1 and torch.equal(again.images, first.images)
    third = load_cached(paths, settings, root=root, workers=1)  # repaired for good
    assert third.decoded == 0 and torch.equal(third.images, first.images)
