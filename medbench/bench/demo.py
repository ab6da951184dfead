"""End-to-end benchmark: wall time of ``medbench demo`` from a cold start in a fresh folder.

Cold means: new working folder (new MLflow store) and an empty cache, so the time includes
generating the synthetic dataset, preprocessing, the 3 optimizers x 5 folds grid and the report:
what a user waits for after ``make demo`` has built the environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def bench_demo(overrides: list[str] | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="medbench-bench-demo-"))
    env = {**os.environ, "MEDBENCH_CACHE_DIR": str(work / "cache")}
    env.pop("MLFLOW_TRACKING_URI", None)
    args = [sys.executable, "-m", "medbench", "demo"]
    for item in overrides or []:
        args += ["--set", item]
    start = time.perf_counter()
    try:
        proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)  # noqa: S603
        wall = time.perf_counter() - start
        summary = [line for line in proc.stdout.splitlines() if line.strip()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        from medbench.errors import MedbenchError

        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise MedbenchError(f"bench demo: medbench demo failed (exit {proc.returncode}): {tail[0]}")
    return {"demo_wall_s": wall, "demo_summary": summary}


def render_demo(r: dict[str, Any]) -> str:
    lines = [f"demo grid (cold start, fresh folder and cache): {r['demo_wall_s']:.0f} s wall"]
    lines += ["  " + line for line in r["demo_summary"]]
    return "\n".join(lines)
