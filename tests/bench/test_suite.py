"""The bench commands run and write their figures (no timing is asserted: the bench prints them)."""

import argparse
import json

from medbench.bench.data import bench_data
from medbench.bench.suite import write_results
from medbench.bench.train import bench_train


def test_data_bench_figures():
    r = bench_data(n_images=24, image_size=32, batch_size=8, workers=0, epochs=2)
    assert r["images"] == 24 and r["warm_cache_decoded"] == 0
    for key in (
        "reference_first_epoch_ips",
        "reference_later_epochs_ips",
        "medbench_first_epoch_ips",
        "medbench_later_epochs_ips",
    ):
        assert r[key] > 0
    assert (
        r["data_speedup_later_epochs"]
        == r["medbench_later_epochs_ips"] / r["reference_later_epochs_ips"]
    )


def test_train_bench_figures():
    r = bench_train(
        model="smallcnn", image_size=16, batch_size=8, n_images=24, epochs=1, device="cpu"
    )
    assert set(r["epoch_time_s"]) == {"adam", "sam", "gcsam"}
    assert 0 <= r["data_wait_fraction"] < 1
    assert r["gcsam_over_adam_epoch_time"] == r["epoch_time_s"]["gcsam"] / r["epoch_time_s"]["adam"]


def test_results_merge_across_parts(tmp_path):
    m = {"processor": "x", "cpus": 2, "torch": "t", "cuda": None, "medbench": "0"}
    write_results(
        {"machine": m, "date": "d", "data_speedup_later_epochs": 30.0, "texts": {"data": "A"}},
        tmp_path,
    )
    write_results(
        {"machine": m, "date": "d", "demo_wall_s": 100.0, "texts": {"demo": "B"}}, tmp_path
    )
    merged = json.loads((tmp_path / "bench.json").read_text())
    assert merged["data_speedup_later_epochs"] == 30.0 and merged["demo_wall_s"] == 100.0
    md = (tmp_path / "bench.md").read_text()
    assert "demo_wall_s" in md and "## data" in md and "## demo" in md


def test_cli_routes_parts(monkeypatch, tmp_path):
    import medbench.bench.suite as suite

    seen = {}
    monkeypatch.setattr(
        "medbench.bench.data.bench_data",
        lambda: seen.setdefault("data", {"data_speedup_later_epochs": 2.0, "images": 1}),
    )
    monkeypatch.setattr("medbench.bench.data.render_data", lambda r: "data table")
    args = argparse.Namespace(
        part="data", out=str(tmp_path), model="m", image_size=8, batch_size=2, steps=1, device="cpu"
    )
    out = suite.run_bench(args)
    assert out["data_speedup_later_epochs"] == 2.0 and "data" in seen
