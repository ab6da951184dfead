"""Multi-index hashing finds exactly the pairs that comparing every pair finds."""

from itertools import combinations

import numpy as np
import pytest

import medbench.data.audit.near_duplicates as nd
from medbench.data.audit.check import HASH_SIZE, NEAR_DUPLICATE_BITS, _decode_all
from medbench.data.audit.near_duplicates import near_duplicate_pairs, pairs_by_matrix_product, plan
from medbench.data.read.manifest import read_manifest


def _planted(rng, n, bits, distance, share=0.2):
    """Random hashes plus copies of some of them with about ``distance`` bits flipped."""
    base = rng.integers(0, 2, (n, bits))
    k = int(n * share)
    flips = rng.random((k, bits)) < distance / bits
    return np.concatenate([base, base[:k] ^ flips]).astype(np.float32)


def _brute(hashes, d):
    return sorted(
        (i, j)
        for i, j in combinations(range(len(hashes)), 2)
        if not np.isnan(hashes[[i, j]]).any() and np.abs(hashes[i] - hashes[j]).sum() <= d
    )


@pytest.mark.parametrize(
    ("n", "bits", "d"),
    [(60, 64, 5), (400, 256, 24), (300, 256, 0), (120, 64, 40), (80, 16, 3), (50, 256, 300)],
)
def test_same_pairs_as_every_pair_compared(n, bits, d):
    rng = np.random.default_rng(n + bits + d)
    hashes = _planted(rng, n, bits, d)
    hashes[[2, 7]] = np.nan  # unreadable images never match
    found = near_duplicate_pairs(hashes, d)
    expected = pairs_by_matrix_product(hashes, d)
    assert found.dtype == np.int64 and found.shape[1] == 2
    assert np.array_equal(found, expected)
    if n <= 120:
        assert [tuple(p) for p in found.tolist()] == _brute(hashes, d)
    assert len(found) >= (1 if d else 0)


def test_pairs_at_exactly_the_limit_are_found_and_one_more_bit_is_not():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 256)
    near, far = a.copy(), a.copy()
    near[rng.choice(256, 24, replace=False)] ^= 1
    far[rng.choice(256, 25, replace=False)] ^= 1
    hashes = np.stack([a, near, far]).astype(np.float32)
    assert near_duplicate_pairs(hashes, 24).tolist() == [[0, 1]]


def test_hashes_that_share_most_bits_are_searched_in_bounded_chunks(monkeypatch):
    """Skewed hashes (every substring nearly constant) still give the exact answer."""
    monkeypatch.setattr(nd, "CHUNK_PAIRS", 97)
    rng = np.random.default_rng(5)
    common = rng.integers(0, 2, 256)
    hashes = np.tile(common, (150, 1))
    hashes[:, :40] = rng.integers(0, 2, (150, 40))  # only 40 bits vary
    hashes = hashes.astype(np.float32)
    found = near_duplicate_pairs(hashes, 24)
    assert np.array_equal(found, pairs_by_matrix_product(hashes, 24)) and len(found) > 100


def test_nothing_to_compare():
    assert near_duplicate_pairs(np.empty((0, 256), np.float32), 24).shape == (0, 2)
    assert near_duplicate_pairs(np.zeros((1, 256), np.float32), 24).shape == (0, 2)
    assert near_duplicate_pairs(np.full((4, 256), np.nan, np.float32), 24).shape == (0, 2)


def test_plan_keeps_one_bit_lookups_and_keys_that_fit_64_bits():
    assert plan(256, 24) == (13, 1)  # 13 substrings of ~20 bits: 24 // 13 = 1
    assert plan(256, 0) == (5, 0)  # keys of at most 62 bits
    assert plan(16, 100) == (16, 6)
    for bits, d in [(256, 24), (64, 5), (256, 1), (1024, 3)]:
        m, r = plan(bits, d)
        assert d // m == r <= 1 and -(-bits // m) <= nd.MAX_SUBSTRING_BITS


def test_real_perceptual_hashes_of_the_generator(tiny_bus):
    """On the pHashes the audit computes, with its threshold."""
    hashes, _ = _decode_all(read_manifest(tiny_bus), want_hash=True)
    assert hashes.shape[1] == HASH_SIZE**2
    found = near_duplicate_pairs(hashes, NEAR_DUPLICATE_BITS)
    assert np.array_equal(found, pairs_by_matrix_product(hashes, NEAR_DUPLICATE_BITS))
    assert len(found) >= 1  # the generator plants near-duplicates


def test_ids_to_exclude_keep_one_image_of_a_pair_and_none_of_a_conflict():
    import pandas as pd

    pairs = pd.DataFrame(
        {
            "id_a": ["a", "c", "e", "g"],
            "id_b": ["b", "d", "f", "a"],
            "same_fold": [False, True, True, False],
            "same_label": [True, False, True, True],
        }
    )
    # a~b across folds: b; c~d labels differ: both; e~f in one fold, one label: no leak; g~a: a
    assert nd.ids_to_exclude(pairs) == ["b", "c", "d", "a"]
    # folds medbench draws are drawn again once images are left out: every pair counts
    assert nd.ids_to_exclude(pairs, every_pair=True) == ["b", "c", "d", "f", "a"]
    assert nd.exclude_advice(["b", "c"]).endswith(
        "--set 'data.exclude=[b, c]' on run (or data.exclude in the config), or drop those 2 "
        "files from the dataset"
    )
