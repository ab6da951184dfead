"""Job packing (``executor.jobs_per_device``): the same small grid one job at a time and packed.

A 4-job slice of the demo (SmallCNN at its 48 px, Adam and SAM on two folds, flatness included) runs
through the real engine (:func:`medbench.engine.grid.run_grid`, a new MLflow store each time)
one job at a time with all the CPU threads (``train.threads``: the CPUs), and
``jobs_per_device`` at a time with the threads split between them (``train.threads``: CPUs //
N), in interleaved repetitions. The demo's config pins one thread per job, so both arms set the
thread count themselves: the question is whether N narrow jobs beat one wide one, which is what
``executor.jobs_per_device: auto`` decides. The thread count changes the sums' order, so the arms'
metrics differ in their last digits: this bench measures time only.

The figure is the median of the paired ratios of wall time: the grid's time to result. Worker
start-up (spawning, importing torch) is counted: it is part of what packing costs. The same
ratio in CPU seconds (this process and its workers) is given beside it: on a busy machine a
multi-threaded job loses more wall time than CPU time (its threads wait for each other whenever
one is descheduled), so the CPU ratio is the steadier guide to an idle machine, where every
thread of either arm keeps its core busy and wall time is about CPU time over the cores.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from medbench.bench.timing import REPETITIONS, Spread, cpu_seconds, load_average
from medbench.config import data_settings, load_config
from medbench.data.dataset import prepare_dataset
from medbench.engine.executors.packed import available_cpus, threads_per_job
from medbench.engine.grid import run_grid

#: The grid: 1 model x 2 optimizers x 2 folds, demo settings otherwise.
GRID = [
    "name=bench-packing",
    "optimizers=[adam, sam]",
    "data.folds=stratified",
    "data.n_folds=2",
    "report.enabled=false",
]


def bench_packing(
    jobs_per_device: int = 2,
    repetitions: int = REPETITIONS,
    epochs: int = 8,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """Wall and CPU seconds of the grid at 1 and ``jobs_per_device`` jobs at once."""
    tmp = Path(tempfile.mkdtemp(prefix="medbench-bench-packing-"))
    before = os.environ.get("MEDBENCH_CACHE_DIR")
    os.environ["MEDBENCH_CACHE_DIR"] = str(tmp / "cache")  # the workers inherit it
    wall: dict[int, list[float]] = {1: [], jobs_per_device: []}
    cpu: dict[int, list[float]] = {1: [], jobs_per_device: []}
    loads = [load_average()]
    jobs = 0
    threads = {1: available_cpus(), jobs_per_device: threads_per_job(jobs_per_device)}
    try:
        base = load_config("demo", [*GRID, *(extra or [])])
        prepare_dataset(
            data_settings(base.data), min(base.seeds)
        )  # generated and cached before any timing
        for r in range(repetitions):
            order = [1, jobs_per_device] if r % 2 == 0 else [jobs_per_device, 1]
            for k in order:
                config = load_config(
                    "demo",
                    [
                        *GRID,
                        f"train.epochs={epochs}",
                        f"executor.jobs_per_device={k}",
                        f"train.threads={threads[k]}",
                        f"tracking.uri=sqlite:///{tmp / f'store-{r}-{k}.db'}",
                        *(extra or []),
                    ],
                )
                with contextlib.redirect_stderr(io.StringIO()):  # the per-job lines
                    w, c = time.perf_counter(), cpu_seconds()
                    result = run_grid(config, progress=False)
                    wall[k].append(time.perf_counter() - w)
                    cpu[k].append(cpu_seconds() - c)
                if result.interrupted:  # Ctrl-C or SIGTERM stopped the grid: stop the bench too
                    raise KeyboardInterrupt
                jobs = len(result.outcomes)
        loads.append(load_average())
    finally:
        if before is None:
            os.environ.pop("MEDBENCH_CACHE_DIR", None)
        else:
            os.environ["MEDBENCH_CACHE_DIR"] = before
        shutil.rmtree(tmp, ignore_errors=True)
    one, packed = Spread(wall[1]), Spread(wall[jobs_per_device])
    speedup = one / packed
    cpu_ratio = Spread(cpu[1]) / Spread(cpu[jobs_per_device])
    return {
        "jobs": jobs,
        "jobs_per_device": jobs_per_device,
        "epochs": epochs,
        "repetitions": repetitions,
        "cpus": os.cpu_count(),
        "threads": {"one_at_a_time": threads[1], "packed": threads[jobs_per_device]},
        "wall_s": {"one_at_a_time": one.to_dict(), "packed": packed.to_dict()},
        "cpu_s": {
            "one_at_a_time": Spread(cpu[1]).to_dict(),
            "packed": Spread(cpu[jobs_per_device]).to_dict(),
        },
        "speedup_runs": speedup.runs,
        "cpu_ratio_runs": cpu_ratio.runs,  # CPU seconds, one at a time / packed
        "packing_cpu_ratio": cpu_ratio.median,
        "load_average": loads,
        "packing_speedup": speedup.median,
    }


def render_packing(r: dict[str, Any]) -> str:
    one = Spread(r["wall_s"]["one_at_a_time"]["runs"])
    packed = Spread(r["wall_s"]["packed"]["runs"])
    cpu_one = Spread(r["cpu_s"]["one_at_a_time"]["runs"])
    cpu_packed = Spread(r["cpu_s"]["packed"]["runs"])
    k, threads = r["jobs_per_device"], r["threads"]
    return "\n".join(
        [
            f"job packing: a {r['jobs']}-job grid (demo settings, {r['epochs']} epochs, flatness) on "
            f"{r['cpus']} CPUs, median (min-max) of {r['repetitions']} interleaved repetitions",
            f"  one job at a time ({threads['one_at_a_time']} threads): {one.text('.1f', ' s')} "
            f"wall, {cpu_one.text('.1f', ' s')} CPU",
            f"  {k} jobs at once ({threads['packed']} thread(s) each): {packed.text('.1f', ' s')} "
            f"wall, {cpu_packed.text('.1f', ' s')} CPU (worker start-up included)",
            f"  time to result, one at a time / packed: {Spread(r['speedup_runs']).text('.2f', 'x')}"
            f"; in CPU seconds: {Spread(r['cpu_ratio_runs']).text('.2f', 'x')}",
            f"  load average (1, 5, 15 min) before and after: {r['load_average'][0]} -> {r['load_average'][-1]}",
        ]
    )
