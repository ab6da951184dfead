"""Reading one image: bit depths that their container misstates, and Pillow's bomb guard."""

import numpy as np
import pytest
from PIL import Image

from medbench.data.pixels import images
from medbench.data.pixels.images import read_rgb
from medbench.errors import DataError, MedbenchWarning


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(images, "_WARNED_DEPTH", set())


def _ramp(top: float, dtype) -> np.ndarray:
    """A 64 x 64 ramp from 0 to ``top``."""
    return np.linspace(0, top, 64 * 64).reshape(64, 64).astype(dtype)


def test_twelve_bit_data_in_a_sixteen_bit_png_keep_their_grey_levels(tmp_path):
    path = tmp_path / "scan.png"
    Image.fromarray(_ramp(4095, np.uint16)).save(path)
    with pytest.warns(MedbenchWarning, match=r"scan\.png: a 16-bit image holding 12-bit values"):
        rgb = read_rgb(path)
    assert rgb.dtype == np.float32 and rgb.max() == pytest.approx(1.0)
    # by the container's range the ramp would keep 16 grey levels once quantised to 8 bits
    assert len(np.unique(np.round(rgb[..., 0] * 255))) > 200
    assert len(np.unique(np.round(_ramp(4095, np.uint16) / 65535 * 255))) <= 17


def test_full_range_sixteen_bit_stays_as_it_is(tmp_path, recwarn):
    path = tmp_path / "full.png"
    Image.fromarray(_ramp(65535, np.uint16)).save(path)
    rgb = read_rgb(path)
    np.testing.assert_allclose(rgb[..., 0], _ramp(65535, np.uint16) / 65535, atol=1e-6)
    assert not [w for w in recwarn if issubclass(w.category, MedbenchWarning)]


@pytest.mark.parametrize(("dtype", "what"), [(np.float32, "float"), (np.int32, "32-bit")])
def test_eight_bit_values_in_a_float_or_int32_tiff(tmp_path, dtype, what):
    """Before: the float image came out mostly white (clipped at 1), the int32 one black."""
    path = tmp_path / f"scan-{what}.tif"
    ramp = _ramp(255, dtype)
    Image.fromarray(ramp).save(path)
    with pytest.warns(MedbenchWarning, match=rf"a {what} image holding 8-bit values"):
        rgb = read_rgb(path)
    np.testing.assert_allclose(rgb[..., 0], ramp.astype(np.float64) / 255, atol=1e-6)
    assert 0.45 < rgb.mean() < 0.55  # neither white nor black


def test_one_warning_per_kind_names_the_first_file(tmp_path, recwarn):
    for name in ("a.png", "b.png"):
        Image.fromarray(_ramp(4095, np.uint16)).save(tmp_path / name)
        read_rgb(tmp_path / name)
    said = [str(w.message) for w in recwarn if issubclass(w.category, MedbenchWarning)]
    assert len(said) == 1 and "a.png" in said[0]


def test_an_image_over_the_bomb_limit_names_the_file_and_the_setting(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(
        DataError,
        match=r"huge\.png: larger than Pillow's limit of 100 pixels.*data\.max_image_pixels",
    ):
        read_rgb(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert read_rgb(path).shape == (64, 64, 3)


def test_an_image_between_the_limit_and_twice_it_is_refused_too(tmp_path, monkeypatch, recwarn):
    """Issue 25 #13: Pillow only warns up to twice its limit (a 144-Mpx image passed an 89-Mpx
    limit with Pillow's raw warning); medbench enforces the limit itself."""
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 4,096 pixels: under twice the limit
    with pytest.raises(DataError, match=r"big\.png: 64x64 pixels, over the limit of 3,000"):
        read_rgb(path)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
