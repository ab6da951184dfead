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

from medbench.config import Config, load_config
from medbench.engine.grid import GridResult, run_grid


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
    progress: bool = True,
    external_roots: list[str] | None = None,
) -> BenchmarkResult:
    """Load the config, run (or resume) the grid, build the report, print the summary.

    ``data_root`` and ``external_roots`` are ``--data-root`` and ``--external-root``. An
    interrupted grid prints the summary of what finished and re-raises KeyboardInterrupt.
    """
    from medbench.report.analysis import analyse
    from medbench.report.build import read_experiment, write_report
    from medbench.report.summary import render_summary, summary_table

    cfg = (
        config
        if isinstance(config, Config)
        else load_config(config, overrides, data_root, external_roots)
    )
    grid = run_grid(cfg, executor=executor, ray_address=ray_address, progress=progress)
    record = read_experiment(cfg.name, grid.tracking_uri, select=grid.select)
    analysis = analyse(record)
    result = BenchmarkResult(grid, summary_table(analysis))
    if grid.interrupted:
        print(render_summary(result.summary), file=sys.stderr)
        raise KeyboardInterrupt
    if report and cfg.report.enabled:
        result.report_dir = write_report(record, analysis, cfg.report.out)
    print(render_summary(result.summary))
    if result.report_dir is not None:
        print(f"report: {result.report_dir / 'report.md'}")
    return result


def run_demo(overrides: list[str] | None = None, report: bool = True) -> BenchmarkResult:
    """The synthetic dataset (generated once into the cache) and the shipped ``demo`` config."""
    return run_benchmark("demo", overrides=overrides, report=report)
