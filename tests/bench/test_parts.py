"""The scale, packing and paper benches produce consistent figures (timings are not checked)."""

import numpy as np
import pytest

from medbench.bench.scale import COPY_FLIPS, bench_scale, render_scale, scaled_hashes

QUICK = {"repetitions": 2, "min_seconds": 0.05}


def test_scaled_hashes_are_distinct_copies_with_the_measured_bits():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2, (50, 256)).astype(np.float32)
    hashes[4] = np.nan  # an unreadable image is left out
    big = scaled_hashes(hashes, 4)
    assert big.shape == (49 * 4, 256)
    ok = hashes[~np.isnan(hashes).any(axis=1)]
    for k in range(1, 4):
        assert (np.abs(big[k * 49 : (k + 1) * 49] - ok).sum(axis=1) == COPY_FLIPS).all()


@pytest.mark.e2e
def test_scale_figures_on_a_small_set():
    r = bench_scale(n=40, sizes="release", image_size=32, batch_size=8, workers=0, **QUICK)
    assert r["n"] == 40 and "scale_check_s_2405" not in r  # headlines only at the release's n
    assert r["source_side_px"]["max"] > 650  # release sizes
    assert (
        r["check_usable"]
        and r["near_duplicates"]["planted_found"] == r["near_duplicates"]["planted"]
    )
    hs = r["hash_search"]
    assert hs["same_pairs"] and (hs["n"], hs["n_large"]) == (40, 160)
    assert hs["growth_n_squared"] == 16.0
    assert hs["growth_n_log_n"] == pytest.approx(160 * np.log(160) / (40 * np.log(40)))
    assert r["cache_gb"] > 0 and r["peak_rss_gb"]["medbench"] > 0
    assert len(r["preprocess_first_epoch_s"]["runs"]) == 2
    text = render_scale(r)
    assert "multi-index hashing" in text and "n log n would be" in text


@pytest.mark.slow
def test_packing_bench_runs_the_grid_both_ways():
    from medbench.bench.packing import bench_packing, render_packing

    tiny = ["data.synthetic.n=40", "data.image_size=16", "flatness.enabled=false"]
    r = bench_packing(jobs_per_device=2, repetitions=1, epochs=1, extra=tiny)
    assert r["jobs"] == 4
    one, packed = r["wall_s"]["one_at_a_time"], r["wall_s"]["packed"]
    assert r["packing_speedup"] == pytest.approx(one["median"] / packed["median"])
    assert "jobs at once" in render_packing(r)


@pytest.mark.slow
def test_paper_bench_on_the_cpu():
    from medbench.bench.paper import bench_paper, render_paper

    r = bench_paper(
        models=["smallcnn"],
        optimizers=["adam", "sam"],
        n=40,
        sizes="default",
        image_size=32,
        batch_size=8,
        epochs=2,
        device="cpu",
        jobs=(1, 2),
        packing_epochs=1,
    )
    pairs = {(p["model"], p["optimizer"]): p for p in r["pairs"]}
    assert set(pairs) == {("smallcnn", "adam"), ("smallcnn", "sam")}
    for p in pairs.values():
        assert len(p["epoch_s"]["runs"]) == 2 and 0 <= p["data_wait_fraction"] < 1
        assert p["images_per_s"] == pytest.approx(p["train_images"] / p["epoch_s"]["median"])
    assert pairs["smallcnn", "sam"]["perturbation_fidelity"] == pytest.approx(1.0, abs=1e-6)
    assert pairs["smallcnn", "adam"]["perturbation_fidelity"] is None
    packing = r["packing"]["smallcnn"]
    assert packing["optimizer"] == "sam" and packing["speedup"][1] == 1.0
    # the projection: 5 folds x expected epochs x seconds per epoch, summed over the pairs
    seq = sum(5 * 30 * p["epoch_s"]["median"] for p in pairs.values()) / 3600
    assert r["projection"]["sequential"] == pytest.approx(seq)
    assert "paper_grid_projected_h" not in r  # a GPU figure
    prec = r["precision"]
    assert prec["fp32"]["perturbation_fidelity"] == pytest.approx(1.0, abs=1e-6)
    assert prec["bf16"]["perturbation_fidelity"] < 1.0 and "note" in prec["tf32"]
    assert "projected paper grid" in render_paper(r)


def test_projection_arithmetic():
    from medbench.bench.paper import project

    pairs = [
        {"model": "a", "epoch_s": {"median": 10.0}},
        {"model": "a", "epoch_s": {"median": 20.0}},
        {"model": "b", "epoch_s": {"median": 6.0}},
    ]
    packing = {"a": {"speedup": {1: 1.0, 2: 1.5, 4: 3.0}}, "b": {"speedup": {1: 1.0, 2: 2.0}}}
    out = project(pairs, packing, expected_epochs=12)
    a, b = 5 * 12 * 30.0, 5 * 12 * 6.0
    assert out["sequential"] == pytest.approx((a + b) / 3600)
    assert out["packed_by_k"] == {
        1: pytest.approx((a + b) / 3600),
        2: pytest.approx((a / 1.5 + b / 2) / 3600),
    }
    assert out["jobs_per_device"] == 2 and out["packed"] == out["packed_by_k"][2]


def test_tf32_rounding_keeps_ten_mantissa_bits():
    import torch

    from medbench.bench.paper import tf32_round

    x = torch.tensor([1.0 + 2**-10, 1.0 + 2**-11, 1.0 + 2**-12, -3.0 - 2**-12, 1e-30])
    y = tf32_round(x)
    assert y[0] == 1.0 + 2**-10  # representable
    assert y[1] == 1.0 + 2**-10  # a tie rounds away from zero
    assert y[2] == 1.0 and y[3] == -3.0
    assert torch.equal(tf32_round(y), y)
