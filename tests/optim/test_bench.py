"""The optimizer benchmark runs end to end on a tiny model (its timings are not checked)."""

from __future__ import annotations

import argparse
import json

import pytest

from medbench.bench.optim import bench_optim, render_optim
from medbench.bench.suite import run_bench
from medbench.errors import ConfigError


def test_bench_optim_measures_every_contender_and_the_ratios():
    result = bench_optim(
        model="smallcnn", image_size=16, batch_size=2, repetitions=2, warmup=1, min_seconds=0.05
    )
    rows = result["optimizers"]
    assert {"adam", "sam", "gcsam"} <= set(rows)
    for row in rows.values():
        assert len(row["step_ms_runs"]) == 2 and row["steps_per_repetition"] >= 1
        assert 0 < row["optimizer_ms"] < row["step_ms"]
    assert {"sam/adam", "gcsam/sam"} <= set(result["ratios"])
    runs = result["ratio_runs"]["sam/adam"]["cpu_step"]
    assert len(runs) == 2 and result["ratios"]["sam/adam"]["cpu_step"] == sum(runs) / 2
    if result["config"]["reference"]:
        assert {"ref_sam", "ref_gcsam", "gcsam/ref_gcsam"} <= set(rows) | set(result["ratios"])
    table = render_optim(result)
    assert "gcsam/sam" in table and "medbench GCSAM" in table


def _args(part: str, out) -> argparse.Namespace:
    return argparse.Namespace(
        part=part,
        model="smallcnn",
        image_size=16,
        batch_size=2,
        repetitions=1,
        min_seconds=0.05,
        device="cpu",
        out=str(out),
    )


def test_run_bench_prints_the_optimizer_table(capsys, tmp_path):
    result = run_bench(_args("optim", tmp_path))
    assert "full step" in capsys.readouterr().out
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["optim"]["ratios"] == json.loads(json.dumps(result["optim"]["ratios"]))


def test_bad_device_is_a_config_error():
    with pytest.raises(ConfigError, match="device"):
        bench_optim(model="smallcnn", image_size=16, batch_size=2, repetitions=1, device="tpu9")
