"""A regular install (a wheel, not ``pip install -e``) carries everything medbench reads at run
time: the shipped configs and the data cards, found with importlib.resources."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_runs_a_grid_from_another_folder_and_shows_the_card(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = dist.glob("medbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    configs = ("demo", "paper", "fair", "demo-fair")
    assert {f"medbench/configs/{name}.yaml" for name in configs} <= set(names)
    assert {
        "medbench/data_cards/synthetic_bus.md",
        "medbench/data_cards/gdph_sysucc_bus.md",
    } <= set(names)
    site = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),  # the installed copy, not this checkout
        "MEDBENCH_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    where = subprocess.run(
        [sys.executable, "-c", "import medbench; print(medbench.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(site)), where
    run = subprocess.run(
        [sys.executable, "-m", "medbench", "run", "demo"]
        + [
            f"--set={item}"
            for item in (
                "data.synthetic.n=40",
                "optimizers=[adam]",
                "data.image_size=16",
                "train.epochs=1",
                "flatness.enabled=false",
                "report.out=rep",
            )
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = (work / "rep" / "report.md").read_text()
    assert "From the data card `data_cards/synthetic_bus.md`" in report
    assert "Synthetic breast-ultrasound (BUS) dataset in the GDPH&SYSUCC layout" in report
