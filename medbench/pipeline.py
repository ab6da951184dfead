"""``medbench run`` and ``medbench demo``: grid, then report, then summary.

The only place that joins the engine and the report: the grid writes MLflow runs, and both the
report and the closing summary are computed from what MLflow holds by the report's analysis, so
the table printed at the end and the report agree to the last digit.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from medbench.config import Config, load_config
from medbench.data.messages import plural
from medbench.engine.device import Precision, resolve_device
from medbench.engine.executors import packing
from medbench.engine.executors.ray import task_resources
from medbench.engine.grid import GridPlan, GridResult, run_grid
from medbench.report.analysis import analyse
from medbench.report.build import default_out_dir, read_experiment, write_report
from medbench.report.summary import bottom_lines, render_summary, render_verdict, summary_table
from medbench.tracking import ExperimentRecord
from medbench.tracking.ui import ui_hint


@dataclass
class BenchmarkResult:
    grid: GridResult
    summary: pd.DataFrame  # model x optimizer: finished runs, AUC and accuracy over folds
    report_dir: Path | None = None

    @property
    def outcomes(self):
        return self.grid.outcomes


def run_benchmark(
    config: str | Path | Config,
    data_root: str | None = None,
    overrides: list[str] | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
    report: bool = True,
    progress: bool | None = None,
    external_roots: list[str] | None = None,
) -> BenchmarkResult:
    """Load the config, print the plan, run (or resume) the grid, build the report, print the
    summary and where to look next.

    ``data_root`` and ``external_roots`` are ``--data-root`` and ``--external-root``.
    ``progress``: progress bars (True), one line per finished job (False), or bars only when
    stderr is a terminal (None). An interrupted grid prints the summary of what finished and
    re-raises KeyboardInterrupt.
    """
    cfg = (
        config
        if isinstance(config, Config)
        else load_config(config, overrides, data_root, external_roots)
    )
    if progress is None:
        progress = sys.stderr.isatty()
    grid = run_grid(
        cfg,
        executor=executor,
        ray_address=ray_address,
        progress=progress,
        on_plan=lambda plan: print(render_plan(plan), file=sys.stderr, flush=True),
    )
    record = read_experiment(cfg.name, grid.tracking_uri, select=grid.select)
    if grid.interrupted and not _finished_any(record):  # nothing to sum up: exit 130, one line
        raise KeyboardInterrupt
    analysis = analyse(record)
    result = BenchmarkResult(grid, summary_table(analysis))
    if grid.interrupted:
        print(render_summary(result.summary), file=sys.stderr)
        raise KeyboardInterrupt
    if report and cfg.report.enabled:
        result.report_dir = write_report(record, analysis, cfg.report.out)
    print(render_summary(result.summary))
    verdict = render_verdict(bottom_lines(analysis))
    if verdict:
        print(verdict)
    if result.report_dir is not None:
        print(f"report: {result.report_dir / 'report.html'} (and report.md, figures, tables)")
    print(ui_hint(record.experiment_id, grid.tracking_uri))
    return result


def _finished_any(record: ExperimentRecord) -> bool:
    """Whether a fold run of the grid finished: an interrupt before the first one (packed
    workers still starting, or every job stopped mid-training) leaves nothing to analyse."""
    folds = record.folds
    return not folds.empty and bool((folds["status"] == "FINISHED").any())


def render_plan(plan: GridPlan) -> str:
    """What is about to run: experiment and store, dataset, grid, device, report."""
    cfg, ds = plan.config, plan.dataset
    n_mal = int(ds.manifest["label"].sum())
    took = f" ({ds.generation_s:.1f} s)" if ds.generation_s else ""
    where = (
        f"synthetic BUS (n={cfg.data.synthetic.n}, seed {cfg.data.synthetic.seed}) generated in {ds.root}{took}"
        if ds.generated
        else str(ds.root)
    )
    prepared = (
        f"{ds.decoded} images preprocessed in {ds.seconds - ds.generation_s:.1f} s"
        if ds.decoded
        else "images from the preprocessing cache"
    )
    # repeated cross-validation: each repeat re-partitions the images into as many folds
    folds = f"{len(ds.folds)} folds"
    if cfg.cv.repeats > 1:
        folds = f"{cfg.cv.repeats} repeats x {folds}"
    grid = (
        f"{len(cfg.models)} model(s) x {len(cfg.optimizers)} optimizer(s) x {folds}"
        f" x {len(cfg.seeds)} seed(s) = {len(plan.jobs)} jobs of up to {cfg.train.epochs} epochs"
    )
    done = len(plan.jobs) - len(plan.todo)
    grid += f"; {done} already finished, {len(plan.todo)} to run" if done else ""
    if plan.executor == "ray":
        share = task_resources(cfg.executor)
        device = f"Ray tasks ({share['num_gpus']:g} GPU, {share['num_cpus']:g} CPU each)"
    else:
        packed = plan.executor == "packed"
        dev = resolve_device(cfg.train.device)
        precision = Precision.for_device(dev, cfg.train.amp, cfg.train.channels_last).describe()
        shared = packing(cfg, dev)
        threads = (  # packed workers split the CPUs (executors.packed)
            shared.worker_threads if packed else shared.threads or torch.get_num_threads()
        )
        if dev.type == "cpu":  # both decide the metrics' last digits (medbench.cpu_paths)
            kernels = torch.backends.cpu.get_cpu_capability()
            device = f"cpu, {precision}, {kernels} kernels, {plural(threads, 'thread')}"
        else:
            device = f"{dev.type}, {precision}"
        if packed:
            jobs = min(shared.jobs, len(plan.todo))
            device += f" per job, {jobs} jobs at once (worker processes)"
    out = Path(cfg.report.out) if cfg.report.out else default_out_dir(cfg.name)
    lines = [
        f"experiment  {cfg.name} (id {plan.experiment_id}) in {plan.tracking_uri}",
        f"dataset     {where}: {len(ds.manifest)} images ({n_mal} malignant), "
        f"folds: {cfg.data.folds}; {prepared}",
        f"grid        {grid}",
        f"device      {device}",
        f"report      {out / 'report.html' if cfg.report.enabled else 'off'}",
    ]
    return "\n".join(lines)


def run_demo(overrides: list[str] | None = None, report: bool = True) -> BenchmarkResult:
    """The synthetic dataset (generated once into the cache) and the shipped ``demo`` config."""
    return run_benchmark("demo", overrides=overrides, report=report)
