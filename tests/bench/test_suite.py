"""The bench commands run and write their figures (no timing is asserted: the bench prints them)."""

import argparse
import json
import multiprocessing as mp
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from medbench.bench import suite, timing
from medbench.bench.data import bench_data, render_data
from medbench.bench.demo import GENERATED, PREPROCESSED, phases, render_demo
from medbench.bench.suite import ALL, PARTS, write_results
from medbench.bench.train import bench_train, render_train
from medbench.cli import build_parser
from medbench.config import data_settings, load_config
from medbench.data.dataset import prepare_dataset
from medbench.engine.grid import GridPlan
from medbench.pipeline import render_plan

QUICK = {"repetitions": 2, "min_seconds": 0.05}


def test_interleaved_repetitions_fill_the_least_time_and_rotate(monkeypatch):
    """On a fake clock that only the units of work move (no wall-clock time is asserted on):
    calibration, units per repetition, rotation and seconds per unit are exact."""
    now = [0.0]
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    monkeypatch.setattr(timing, "cpu_seconds", lambda: now[0] / 2)  # half the wall time on CPU
    calls = []

    def unit(name, seconds):
        def run():
            calls.append(name)
            now[0] += seconds

        return run

    timed = timing.interleaved(
        {"a": unit("a", 0.25), "b": unit("b", 1.0)}, repetitions=3, min_seconds=2.0
    )
    assert (timed["a"].units, timed["b"].units) == (8, 2)  # ceil(2 / seconds per unit)
    # calibration (one each), then repetitions in rotating order: a b, b a, a b
    a, b = ["a"] * 8, ["b"] * 2
    assert calls == ["a", "b"] + a + b + b + a + a + b
    assert timed["a"].wall.runs == [0.25] * 3 and timed["b"].wall.runs == [1.0] * 3
    assert timed["a"].cpu.runs == [0.125] * 3 and timed["b"].cpu.runs == [0.5] * 3


def test_spread_median_range_quartiles_and_paired_ratios():
    s = timing.Spread([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (s.median, s.low, s.high) == (3.0, 1.0, 5.0)
    assert s.iqr == (2.0, 4.0)
    assert s.to_dict()["q1"] == 2.0 and s.text(".1f", " s") == "3.0 s (1.0-5.0, n=5)"
    ratio = timing.Spread([2.0, 4.0]) / timing.Spread([1.0, 8.0])
    assert ratio.runs == [2.0, 0.5]
    assert timing.inverse(timing.Spread([0.5, 0.25]), 10).runs == [20.0, 40.0]
    assert timing.Spread([7.0]).text() == "7 (one run)"


def test_cpu_time_counts_worker_processes():
    start = timing.cpu_seconds()
    p = mp.get_context("spawn").Process(target=sum, args=(range(3_000_000),))
    p.start()
    p.join()
    assert timing.cpu_seconds() - start > 0.01  # the child's CPU, once it has ended


@pytest.mark.e2e
def test_data_bench_figures():
    r = bench_data(n_images=24, image_size=32, batch_size=8, workers=0, **QUICK)
    assert r["images"] == 24 and r["warm_cache_decoded"] == 0
    for key in ("reference", "medbench_first_epoch", "medbench_later_epochs"):
        assert len(r["ips"][key]["runs"]) == 2 and min(r["ips"][key]["runs"]) > 0
    ref = np.array(r["seconds"]["reference"]["cpu_s"]["runs"])
    later = np.array(r["seconds"]["medbench_later_epochs"]["cpu_s"]["runs"])
    assert r["speedup_cpu"]["later_epochs"]["runs"] == pytest.approx(list(ref / later))
    assert r["data_speedup_later_epochs"] == r["speedup_cpu"]["later_epochs"]["median"]
    assert "later epochs" in render_data(r)


def test_train_bench_figures():
    r = bench_train(
        model="smallcnn", image_size=16, batch_size=8, n_images=24, device="cpu", **QUICK
    )
    assert set(r["epoch_time_s"]) == {"adam", "sam", "gcsam"}
    assert 0 <= r["data_wait_fraction"] < 1
    assert r["gcsam_over_adam_epoch_time"] == pytest.approx(
        float(np.median(r["ratio_runs"]["gcsam/adam"]))
    )
    assert "SAM/Adam" in render_train(r)


def test_results_merge_across_parts(tmp_path):
    m = {"processor": "x", "cpus": 2, "torch": "t", "cuda": None, "medbench": "0"}
    write_results(
        {"machine": m, "date": "d", "data_speedup_later_epochs": 30.0, "texts": {"data": "A"}},
        tmp_path,
    )
    write_results(
        {
            "machine": m,
            "date": "d",
            "demo_wall_s": 100.0,
            "paper_grid_projected_h": {"sequential": 12.5, "packed": 3.25, "jobs_per_device": 4},
            "texts": {"demo": "B"},
        },
        tmp_path,
    )
    merged = json.loads((tmp_path / "bench.json").read_text())
    assert merged["data_speedup_later_epochs"] == 30.0 and merged["demo_wall_s"] == 100.0
    md = (tmp_path / "bench.md").read_text()
    assert "demo_wall_s" in md and "## data" in md and "## demo" in md
    assert "| `paper_grid_projected_h` | sequential 12.500, packed 3.250, jobs_per_device 4 |" in md


def _args(tmp_path, part, **extra):
    base = dict(
        part=part,
        out=str(tmp_path),
        model="m",
        image_size=8,
        batch_size=2,
        repetitions=1,
        min_seconds=0.1,
        device="cpu",
        n=None,
        sizes="default",
        models=None,
        optimizers=None,
        epochs=None,
        jobs=None,
        expected_epochs=30,
        jobs_per_device=2,
    )
    return argparse.Namespace(**{**base, **extra})


def test_cli_routes_parts(monkeypatch, tmp_path):
    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        return {"scale_check_s_2405": 2.0, "scale_peak_rss_gb": 1.5, "n": kwargs["n"]}

    monkeypatch.setattr(suite, "bench_scale", fake)
    monkeypatch.setattr(suite, "render_scale", lambda r: "scale table")
    out = suite.run_bench(_args(tmp_path, "scale", image_size=None, batch_size=None))
    assert out["scale_check_s_2405"] == 2.0 and "scale_preprocess_s_2405" not in out
    assert seen["n"] == 2405 and seen["image_size"] == 256 and seen["repetitions"] == 1
    assert "| `scale_peak_rss_gb` | 1.500 |" in (tmp_path / "bench.md").read_text()


def test_cli_all_leaves_the_gpu_part_out():
    assert set(PARTS) - set(ALL) == {"paper"}
    args = build_parser().parse_args(["bench", "paper", "--models", "resnet18", "--jobs", "1", "4"])
    assert args.models == ["resnet18"] and args.jobs == [1, 4]


def test_demo_phases_add_up():
    plan = (
        "dataset     synthetic BUS (n=600, seed 0) generated in /c/bus (6.5 s): 600 images (379 "
        "malignant), folds: sheet; 600 images preprocessed in 3.5 s\n"
    )
    t0 = 1_000.0
    folds = pd.DataFrame(
        {
            "start_time": [(t0 + 20) * 1e3, (t0 + 21) * 1e3, (t0 + 40) * 1e3],
            "end_time": [(t0 + 40) * 1e3, (t0 + 50) * 1e3, (t0 + 70) * 1e3],
            "train_time_s": [12.0, 20.0, 18.0],
            "flatness_time_s": [5.0, 6.0, 7.0],
            "flatness_hvps": [7.0, 7.0, 10.0],
        }
    )
    parents = pd.DataFrame({"start_time": [(t0 + 14) * 1e3, (t0 + 14.5) * 1e3]})
    p = phases(plan, folds, started=t0, ended=t0 + 80, parents=parents)
    assert (p["generation_s"], p["preprocessing_s"], p["startup_s"]) == (6.5, 3.5, 10.0)
    # the first parent run starts 14 s in: 4 s of the command's own start-up before the data
    assert (p["command_startup_s"], p["worker_startup_s"]) == (4.0, 6.0)
    assert (p["jobs_s"], p["job_seconds"], p["report_s"]) == (50.0, 79.0, 10.0)
    assert (p["training_s"], p["flatness_s"], p["job_other_s"]) == (50.0, 18.0, 11.0)
    assert p["flatness_share"] == 18.0 / 79.0 and p["flatness_hvps"] == 8.0  # mean per run
    text = render_demo(
        {
            "demo_wall_s": 80.0,
            "demo_cpu_s": 150.0,
            "cpus": 2,
            "load_average": [1.0, 2.0],
            "phases": p,
            "demo_summary": [],
        }
    )
    assert "23% of the job-seconds, 8.0 Hessian-vector products per fold run" in text
    assert "imports and the store 4.0 s; parent runs and workers up to the first job 6.0" in text
    assert "worker_startup_s" not in phases(plan, folds, t0, t0 + 80)  # no parents: no split
    total = p["startup_s"] + p["generation_s"] + p["preprocessing_s"] + p["jobs_s"] + p["report_s"]
    assert total == 80.0


def test_the_plan_line_is_what_the_demo_bench_reads():
    """The bench parses the generation and preprocessing seconds out of the command's plan."""
    config = load_config("demo", ["data.synthetic.n=20", "data.image_size=16"])
    dataset = prepare_dataset(data_settings(config.data), 0)
    dataset.generation_s, dataset.seconds, dataset.decoded = 2.25, 5.0, 20
    text = render_plan(GridPlan(config, "sqlite:///x.db", "1", "local", dataset, [], []))
    assert GENERATED.search(text).group(1) == "2.2"  # rounded to tenths
    assert PREPROCESSED.search(text).groups() == ("20", "2.8")
