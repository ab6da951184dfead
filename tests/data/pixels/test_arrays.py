"""Images of an array file addressed as FILE::ARRAY[INDEX]: decoding, cache keys and errors."""

import re
import warnings

import numpy as np
import pytest
import torch

from medbench.data.pixels import arrays
from medbench.data.pixels.images import read_rgb
from medbench.data.pixels.transforms import PreprocessSettings, file_digest, load_cached, preprocess
from medbench.errors import DataError, MedbenchWarning
from tests.data.layouts import pattern, write_png


@pytest.fixture
def npz(tmp_path):
    gray = np.stack([pattern(s, (40, 40)) for s in range(3)])
    gray[2] = gray[0]  # two members with the same pixels
    rgb = np.stack([np.stack([pattern(10 + s, (36, 36))] * 3, axis=-1) for s in range(2)])
    path = tmp_path / "data.npz"
    np.savez_compressed(path, gray=gray, rgb=rgb, labels=np.array([0, 1, 0]))
    return path, gray, rgb


def test_member_paths_round_trip(tmp_path):
    path = arrays.member_path(tmp_path / "breastmnist_64.npz", "train_images", 12)
    assert path == f"{tmp_path}/breastmnist_64.npz::train_images[12]"
    member = arrays.parse(path)
    assert (member.file, member.array, member.index) == (
        tmp_path / "breastmnist_64.npz",
        "train_images",
        12,
    )
    assert arrays.parse(tmp_path / "benign (1).png") is None
    assert arrays.parse("a.npz::train_images") is None


def test_members_decode_like_an_image_file_of_the_same_pixels(tmp_path, npz):
    path, gray, rgb = npz
    member = arrays.member_path(path, "gray", 1)
    as_rgb = read_rgb(member)
    assert as_rgb.dtype == np.uint8 and as_rgb.shape == (40, 40, 3)
    assert (as_rgb == gray[1][..., None]).all()
    assert (read_rgb(arrays.member_path(path, "rgb", 0)) == rgb[0]).all()
    png = write_png(tmp_path / "same.png", gray[1])
    settings = PreprocessSettings(image_size=16)
    assert torch.equal(preprocess(member, settings), preprocess(png, settings))


def test_a_sixteen_bit_member_is_scaled_by_its_depth_as_a_png_is(tmp_path):
    from PIL import Image

    twelve = np.linspace(0, 4095, 48 * 48).reshape(48, 48).astype(np.uint16)
    path = tmp_path / "scans.npz"
    np.savez(path, images=twelve[None])
    Image.fromarray(twelve).save(tmp_path / "scan.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MedbenchWarning)  # 12 bits in 16: said once per depth
        member, png = (
            read_rgb(arrays.member_path(path, "images", 0)),
            read_rgb(tmp_path / "scan.png"),
        )
    assert member.dtype == np.float32 and member.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(member, png)


def test_a_members_cache_key_is_its_own_pixels(tmp_path, npz):
    path, _, _ = npz
    digests = [file_digest(arrays.member_path(path, "gray", i)) for i in range(3)]
    assert digests[0] != digests[1] and digests[0] == digests[2]
    assert digests[0] != file_digest(path)
    paths = [arrays.member_path(path, "gray", i) for i in range(3)]
    cached = load_cached(paths, PreprocessSettings(image_size=8), root=tmp_path / "cache")
    assert cached.decoded == 2 and cached.images.shape == (3, 3, 8, 8)
    assert torch.equal(cached.images[0], cached.images[2])
    again = load_cached(paths, PreprocessSettings(image_size=8), root=tmp_path / "cache")
    assert again.decoded == 0 and torch.equal(again.images, cached.images)


def test_a_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.zeros((1, 4, 4), np.uint8))
    first = arrays.read_member(arrays.member_path(path, "a", 0)).copy()
    np.savez(path, a=np.full((1, 4, 4, 1), 7, np.uint8), b=np.ones(3))
    assert first.max() == 0 and arrays.read_member(arrays.member_path(path, "a", 0)).max() == 7


def test_tiny_members_warn_once_per_file(tmp_path):
    path = tmp_path / "breastmnist.npz"
    np.savez(path, train_images=np.zeros((3, 28, 28), np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            read_rgb(arrays.member_path(path, "train_images", i))
    tiny = [w for w in caught if issubclass(w.category, MedbenchWarning)]
    assert len(tiny) == 1 and "tiny images (28x28 pixels)" in str(tiny[0].message)


@pytest.mark.parametrize(
    "member, message",
    [
        ("missing.npz::a[0]", "missing.npz: array file not found"),
        ("data.npz::nope[0]", "no array 'nope'; it holds gray, rgb, labels"),
        ("data.npz::gray[3]", "data.npz::gray[3]: no row 3; gray has 3 rows"),
        ("data.npz::labels[0]", "an image array must be (H, W) or (H, W, 3)"),
    ],
)
def test_member_errors_name_the_file(tmp_path, npz, member, message):
    with pytest.raises(DataError, match=re.escape(message)):
        read_rgb(str(tmp_path / member))


def test_a_file_that_is_not_an_npz(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="broken.npz: not a readable .npz array file"):
        read_rgb(arrays.member_path(tmp_path / "broken.npz", "a", 0))


def _npz_with_header(path, shape, data: bytes):
    """An .npz whose ``x_images`` header declares ``shape`` (uint8) but holds ``data``."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x_images.npy", header.getvalue() + data)  # the header starts with the magic
    return path


def test_a_header_that_promises_a_huge_array_is_one_line(tmp_path):
    """Issue 25 #12: a BreastMNIST .npz declaring a huge array ended in a MemoryError."""
    path = _npz_with_header(tmp_path / "bomb.npz", (10**6, 10**4, 10**4), b"\0" * 64)
    with pytest.raises(DataError, match=r"bomb.npz: array 'x_images' declares shape .* damaged"):
        arrays.load_array(path, "x_images")


def test_arrays_of_empty_images_are_refused_where_they_are_read(tmp_path):
    """Issue 25 #12: (N, 0, 0) image arrays passed `data check` and crashed `run`."""
    path = tmp_path / "empty.npz"
    np.savez(path, x_images=np.zeros((4, 0, 0), dtype=np.uint8))
    with pytest.raises(DataError, match=r"empty.npz::x_images\[1\]: an empty image"):
        read_rgb(arrays.member_path(path, "x_images", 1))
