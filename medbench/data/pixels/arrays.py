"""Images held in array files (MedMNIST's ``.npz``), addressed like image files.

A manifest ``path`` names one image of an array file as ``FILE::ARRAY[INDEX]``, e.g.
``/data/breastmnist_64.npz::train_images[12]``, so that everything downstream of the manifest
reads it as it reads a PNG: :func:`medbench.data.pixels.images.read_rgb` decodes it, the preprocessing
cache keys it by the digest of its own pixels (:func:`member_digest`, not the whole file's), and
the audit hashes it. Each array is decompressed once per process, not once per image.
"""

from __future__ import annotations

import hashlib
import re
import threading
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from medbench.errors import DataError

SEPARATOR = "::"
_MEMBER = re.compile(r"(?P<file>.+)::(?P<array>[A-Za-z_][A-Za-z0-9_]*)\[(?P<index>\d+)\]")
_LOCK = threading.Lock()  # decoding threads ask for the same array at once: load it once


@dataclass(frozen=True)
class Member:
    """One image of an array file: ``file``, the array's name in it and the row."""

    file: Path
    array: str
    index: int

    def __str__(self) -> str:
        return f"{self.file}{SEPARATOR}{self.array}[{self.index}]"


def member_path(file: str | Path, array: str, index: int) -> str:
    """The manifest path of row ``index`` of ``array`` in ``file``."""
    return str(Member(Path(file), array, int(index)))


def parse(path: str | Path) -> Member | None:
    """The member a path names, or None for an ordinary file path."""
    found = _MEMBER.fullmatch(str(path))
    if found is None:
        return None
    return Member(Path(found["file"]), found["array"], int(found["index"]))


def array_names(file: Path) -> list[str]:
    """The arrays an ``.npz`` holds, without loading them."""
    try:
        with np.load(file, allow_pickle=False) as npz:
            return list(npz.files)
    except FileNotFoundError:
        raise DataError(f"{file}: array file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"{file}: not a readable .npz array file ({err})") from None


def load_array(file: Path, array: str) -> np.ndarray:
    """One array of an ``.npz``, loaded once per process (until the file changes)."""
    try:
        stat = file.stat()
    except FileNotFoundError:
        raise DataError(f"{file}: array file not found") from None
    with _LOCK:
        return _load(str(file), array, stat.st_size, stat.st_mtime_ns)


def _check_header(file: str, array: str, npz) -> None:
    """Refuse an array whose header promises more data than its file holds (a corrupt or
    crafted ``.npz``: numpy would try to allocate what the header says, a MemoryError), before
    anything is allocated."""
    info = npz.zip.getinfo(f"{array}.npy")
    with npz.zip.open(info) as member:
        version = np.lib.format.read_magic(member)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(member)
    if dtype.hasobject:
        raise DataError(f"{file}: array {array!r} holds Python objects, not numbers")
    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if declared > info.file_size:
        raise DataError(
            f"{file}: array {array!r} declares shape {shape} ({declared:,} bytes) but holds "
            f"{info.file_size:,} bytes: the file is damaged"
        )


@lru_cache(maxsize=16)
def _load(file: str, array: str, size: int, mtime_ns: int) -> np.ndarray:
    """Cached on (size, mtime) too, so that a rewritten file is read again."""
    try:
        with np.load(file, allow_pickle=False) as npz:
            if array not in npz.files:
                raise DataError(
                    f"{file}: no array {array!r}; it holds {', '.join(npz.files) or 'none'}"
                )
            _check_header(file, array, npz)
            values = npz[array]
    except DataError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise DataError(f"{file}: not a readable .npz array file ({err})") from None
    values.setflags(write=False)
    return values


def read_member(path: str | Path) -> np.ndarray:
    """The pixels of one member: (H, W) or (H, W, C), as stored."""
    member = parse(path)
    if member is None:
        raise ValueError(f"{path} does not name an array member (FILE::ARRAY[INDEX])")
    values = load_array(member.file, member.array)
    if not 0 <= member.index < len(values):
        raise DataError(f"{member}: no row {member.index}; {member.array} has {len(values)} rows")
    return values[member.index]


def member_digest(path: str | Path) -> str:
    """Digest of one member's pixels (dtype, shape, bytes): the cache key of its image."""
    pixels = np.ascontiguousarray(read_member(path))
    h = hashlib.sha1(f"{pixels.dtype.str}|{pixels.shape}|".encode())
    h.update(pixels.tobytes())
    return h.hexdigest()
