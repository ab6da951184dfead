"""Near-duplicate search on perceptual hashes: every pair within a Hamming distance, exactly.

Comparing every pair costs O(n²): fine for the 2,405 images of the BUS release, a minute at ten
times that. :func:`near_duplicate_pairs` uses multi-index hashing instead (Norouzi, Punjani and
Fleet, "Fast search in Hamming space with multi-index hashing", CVPR 2012): the ``b`` hash bits
are dealt into ``m`` substrings; by the pigeonhole principle two hashes at most ``d`` bits apart
differ in at most ``r = d // m`` bits of some substring. So it is enough to look up, for every
hash and every substring, the hashes whose substring equals it or differs from it in up to ``r``
bits (a sorted table and binary search), then verify the full distance of each candidate. The
result is exactly the brute-force one (:func:`pairs_by_matrix_product`, the previous method,
kept as the reference).

Substrings of about 20 bits with ``r = 1`` (``m = d // 2 + 1``: 13 substrings for the audit's 24
bits of 256) make chance candidates rare (``n / 2**20`` per lookup) at ~21 lookups per hash and
substring, so the work grows as ``n log n`` (the sort) up to about a million hashes. Bits are
dealt round-robin, so the low-frequency bits that B-mode images tend to share spread over every
substring instead of making one substring nearly constant.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

#: Longest substring, in bits: keys are unsigned 64-bit integers.
MAX_SUBSTRING_BITS = 62
#: Candidate pairs expanded at once, bounding memory when many hashes share a substring.
CHUNK_PAIRS = 1 << 22
_POPCOUNT8 = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint16)


def _readable(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row numbers without NaN, their bits as bool): unreadable images never match."""
    ok = np.flatnonzero(~np.isnan(hashes).any(axis=1))
    return ok, hashes[ok] > 0.5


def _empty() -> np.ndarray:
    return np.empty((0, 2), dtype=np.int64)


def plan(bits: int, max_distance: int) -> tuple[int, int]:
    """(substrings m, bits r searched around each): ``r = max_distance // m`` <= 1 where possible."""
    m = max(max_distance // 2 + 1, math.ceil(bits / MAX_SUBSTRING_BITS))
    m = min(m, bits)
    return m, max_distance // m


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """Index pairs (i < j), sorted, whose hash bits differ in at most ``max_distance`` places.

    Parameters
    ----------
    hashes : ndarray of shape (n, b)
        One row of 0/1 bits per image; a row with a NaN (an unreadable image) never matches.
    max_distance : int
        Largest Hamming distance of a pair.

    Returns
    -------
    ndarray of shape (k, 2), int64
        Row numbers into ``hashes``, ``i < j``, in lexicographic order: the same array as
        :func:`pairs_by_matrix_product`.
    """
    ok, bits = _readable(hashes)
    n, b = bits.shape
    if n < 2 or max_distance < 0:
        return _empty()
    packed = np.packbits(bits, axis=1)
    m, r = plan(b, max_distance)
    found = []
    for j in range(m):
        sub = bits[:, j::m]
        keys = (sub.astype(np.uint64) << np.arange(sub.shape[1], dtype=np.uint64)).sum(
            axis=1, dtype=np.uint64
        )
        order = np.argsort(keys, kind="stable")
        table = keys[order]
        for flips in _flip_masks(sub.shape[1], r):
            lo = np.searchsorted(table, keys ^ flips, side="left")
            hi = np.searchsorted(table, keys ^ flips, side="right")
            for rows, cols in _expand(lo, hi, order):
                keep = rows < cols
                rows, cols = rows[keep], cols[keep]
                dist = _POPCOUNT8[packed[rows] ^ packed[cols]].sum(axis=1)
                close = dist <= max_distance
                found.append(rows[close] * n + cols[close])
    codes = np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
    return np.stack([ok[codes // n], ok[codes % n]], axis=1).astype(np.int64)


def _flip_masks(width: int, radius: int):
    """The XOR masks of every key within ``radius`` bits: 0, then each 1-bit mask, ..."""
    for k in range(radius + 1):
        for positions in itertools.combinations(range(width), k):
            yield np.uint64(sum(1 << p for p in positions))


def _expand(lo: np.ndarray, hi: np.ndarray, order: np.ndarray):
    """(row, candidate) arrays for every row i and table entry in ``lo[i]:hi[i]``, in chunks."""
    counts = hi - lo
    ends = np.cumsum(counts)
    start = 0
    while start < len(lo):
        done = ends[start - 1] if start else 0
        stop = int(np.searchsorted(ends, done + CHUNK_PAIRS, side="right"))
        stop = max(stop, start + 1)
        c = counts[start:stop]
        total = int(c.sum())
        if total:
            rows = np.repeat(np.arange(start, stop), c)
            offset = np.arange(total) - np.repeat(np.cumsum(c) - c, c)
            yield rows, order[np.repeat(lo[start:stop], c) + offset]
        start = stop


def pairs_by_matrix_product(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """The same pairs by comparing every hash with every other: O(n²), the reference.

    Hamming distances come from two matrix products over 0/1 bits, in row blocks so that memory
    stays bounded.
    """
    ok, as_bool = _readable(hashes)
    bits = as_bool.astype(np.float32)
    flipped = 1.0 - bits
    pairs = [_empty()]
    block = 1024
    for start in range(0, len(bits), block):
        chunk = bits[start : start + block]
        dist = chunk @ flipped.T + (1.0 - chunk) @ bits.T
        i, j = np.nonzero(dist <= max_distance + 0.5)
        i = i + start
        keep = j > i
        pairs.append(np.stack([ok[i[keep]], ok[j[keep]]], axis=1))
    return np.concatenate(pairs).astype(np.int64)


# -- what to do about them ------------------------------------------------------------------------


def ids_to_exclude(pairs: pd.DataFrame, every_pair: bool = False) -> list[str]:
    """The images to leave out (``data.exclude``) so that no near-duplicate pair leaks a copy of
    a test image into training: the second image of a pair with one label, both images of a
    pair whose labels differ (which label is right is unknown).

    ``pairs`` has columns ``id_a``, ``id_b``, ``same_fold``, ``same_label``. Pairs within one
    fold with one label leak nothing and are kept, unless ``every_pair``: folds medbench draws
    are drawn again once images are left out, so any pair may end up split.
    """
    out: list[str] = []
    for row in pairs.itertuples():
        if not (every_pair or not row.same_fold or not row.same_label):
            continue
        for image in [row.id_b] if row.same_label else [row.id_a, row.id_b]:
            if str(image) not in out:
                out.append(str(image))
    return out


def exclude_advice(ids: list[str]) -> str:
    """What to do, as ``data check`` prints it: the ``--set`` that leaves ``ids`` out."""
    listed = ", ".join(ids)
    return (
        f"what to do: leave out one image of each pair (both when their labels differ) with "
        f"--set 'data.exclude=[{listed}]' on run (or data.exclude in the config), or drop those "
        f"{len(ids)} files from the dataset"
    )
