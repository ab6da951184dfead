"""End-to-end benchmark: wall time of ``medbench demo`` from a cold start, and where it goes.

Cold means: new working folder (new MLflow store) and an empty cache, so the time includes
generating the synthetic dataset, preprocessing, the 3 optimizers x 5 folds grid and the report:
what a user waits for after ``make demo`` has built the environment.

The demo runs as its own process, as a user starts it. Where its seconds go is read afterwards
from what it printed (generation and preprocessing times, in its plan) and from the MLflow store
it wrote (each fold run's start and end, training and flatness seconds): start-up (imports, the
store, the parent runs), generation, preprocessing, the jobs, and the report (from the last job's
end to the process's exit). Start-up splits at the first parent run's start: before it, the
command's own imports and the store; after it, the parent runs and the packed executor's worker
processes starting (their imports, the dataset loaded from the cache) up to the first job. CPU time is the process's and its workers', user plus system.
A figure of minutes is one run: its repetitions would take the better part of an hour.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from medbench.bench.timing import ended_children_cpu_seconds, load_average
from medbench.errors import MedbenchError
from medbench.tracking.reader import load_experiment

GENERATED = re.compile(r"generated in .* \((\d+(?:\.\d+)?) s\)")
PREPROCESSED = re.compile(r"(\d+) images preprocessed in (\d+(?:\.\d+)?) s")


def phases(
    plan: str, folds, started: float, ended: float, parents=None
) -> dict[str, float | int | list[float]]:
    """Seconds per phase of one demo run (see the module docstring).

    ``plan``: what the command printed; ``folds``: its fold runs (``start_time``/``end_time`` in
    ms since the epoch, ``train_time_s``, ``flatness_time_s``, ``flatness_hvps``); ``parents``:
    its parent runs (``start_time``), which split the start-up in two;
    ``started``/``ended``: the process's start and exit, in seconds since the epoch.
    ``flatness_share`` is the flatness seconds over the job-seconds; ``flatness_hvps`` the mean
    number of Hessian-vector products per fold run (0 without flatness).
    """
    generated = GENERATED.search(plan)
    preprocessed = PREPROCESSED.search(plan)
    generation = float(generated.group(1)) if generated else 0.0
    preprocessing = float(preprocessed.group(2)) if preprocessed else 0.0
    first, last = folds["start_time"].min() / 1e3, folds["end_time"].max() / 1e3
    job_seconds = float(((folds["end_time"] - folds["start_time"]) / 1e3).sum())
    training = float(folds["train_time_s"].sum())
    flatness = float(folds["flatness_time_s"].sum()) if "flatness_time_s" in folds else 0.0
    hvps = float(folds["flatness_hvps"].mean()) if "flatness_hvps" in folds else 0.0
    startup = first - started - generation - preprocessing
    split = {}
    if parents is not None and len(parents):
        command = parents["start_time"].min() / 1e3 - started - generation - preprocessing
        split = {"command_startup_s": command, "worker_startup_s": startup - command}
    return {
        "startup_s": startup,
        **split,
        "generation_s": generation,
        "preprocessing_s": preprocessing,
        "jobs_s": last - first,
        "jobs": len(folds),
        "job_seconds": job_seconds,
        "training_s": training,
        "flatness_s": flatness,
        "flatness_share": flatness / job_seconds if job_seconds > 0 else 0.0,
        "flatness_hvps": hvps,
        "job_other_s": job_seconds - training - flatness,
        "report_s": ended - last,
    }


def bench_demo(overrides: list[str] | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="medbench-bench-demo-"))
    env = {**os.environ, "MEDBENCH_CACHE_DIR": str(work / "cache")}
    env.pop("MLFLOW_TRACKING_URI", None)
    args = [sys.executable, "-m", "medbench", "demo"]
    for item in overrides or []:
        args += ["--set", item]
    loads = [load_average()]
    cpu = ended_children_cpu_seconds()
    started, start = time.time(), time.perf_counter()
    try:
        proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)  # noqa: S603
        wall, ended = time.perf_counter() - start, time.time()
        cpu = ended_children_cpu_seconds() - cpu
        loads.append(load_average())
        summary = [line for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode == 0:
            record = load_experiment("medbench-demo", f"sqlite:///{work / 'mlflow.db'}")
            split = phases(proc.stderr, record.folds, started, ended, record.parents)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise MedbenchError(f"bench demo: medbench demo failed (exit {proc.returncode}): {tail[0]}")
    return {
        "demo_wall_s": wall,
        "demo_cpu_s": cpu,
        "demo_flatness_share": split["flatness_share"],
        "flatness_hvps": split["flatness_hvps"],  # mean per fold run
        "cpus": os.cpu_count(),
        "load_average": loads,
        "phases": split,
        "demo_summary": summary,
    }


def render_demo(r: dict[str, Any]) -> str:
    p = r["phases"]
    lines = [
        f"demo grid (cold start, fresh folder and cache): {r['demo_wall_s']:.0f} s wall, "
        f"{r['demo_cpu_s']:.0f} s CPU on {r['cpus']} CPUs (one run; load average "
        f"{r['load_average'][0]} before, {r['load_average'][-1]} after)",
        "  where the wall-clock seconds go:",
        f"    start-up (imports, MLflow store, parent runs)  {p['startup_s']:>6.1f} s",
    ]
    if "worker_startup_s" in p:
        lines += [
            f"      the command's imports and the store {p['command_startup_s']:.1f} s; parent "
            f"runs and workers up to the first job {p['worker_startup_s']:.1f} s",
        ]
    lines += [
        f"    generating the synthetic dataset              {p['generation_s']:>6.1f} s",
        f"    preprocessing into the cache                  {p['preprocessing_s']:>6.1f} s",
        f"    the {p['jobs']} jobs, first start to last end          {p['jobs_s']:>6.1f} s",
        f"      job-seconds {p['job_seconds']:.1f}: training {p['training_s']:.1f}, flatness "
        f"{p['flatness_s']:.1f}, set-up, test and logging {p['job_other_s']:.1f}",
        f"      flatness: {p['flatness_share']:.0%} of the job-seconds, "
        f"{p['flatness_hvps']:.1f} Hessian-vector products per fold run",
        f"    aggregates, report and summary                {p['report_s']:>6.1f} s",
    ]
    lines += ["  " + line for line in r["demo_summary"]]
    return "\n".join(lines)
