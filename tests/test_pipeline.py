"""The pipeline end to end: the report reads what the engine writes, and the CLI's closing
table is the report's own numbers."""

import math
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from medbench.config import load_config
from medbench.data.synth.synthetic import generate
from medbench.pipeline import run_benchmark
from medbench.report.analysis import analyse
from medbench.report.build import read_experiment
from medbench.report.summary import read_bottom_lines, render_summary, render_verdict
from medbench.tracking import schema

pytestmark = pytest.mark.e2e  # grids, reports or generated datasets end to end


@pytest.fixture(scope="module")
def grid(tmp_path_factory, _empty_store):
    """A tiny grid run once through the real engine, with flatness, and its report."""
    root = tmp_path_factory.mktemp("pipeline")
    generate(root / "bus", n=60, seed=3)
    shutil.copy(_empty_store, root / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MEDBENCH_CACHE_DIR", str(root / "cache"))
        config = load_config(
            "demo",
            [
                "name=roundtrip",
                "models=[smallcnn]",
                "optimizers=[adam, sam]",
                "data.image_size=16",
                "data.folds=stratified",
                "data.n_folds=2",
                "train.epochs=2",
                "train.batch_size=16",
                "flatness.n_samples=16",
                "flatness.lanczos_steps=2",
                "flatness.hutchinson_samples=2",
                "flatness.landscape_points=3",
                "optimizer.rho=0.1",  # SAM trains at 0.1; flatness measures both at 0.05
                f"tracking.uri=sqlite:///{root / 'mlflow.db'}",
                f"report.out={root / 'report'}",
            ],
            data_root=str(root / "bus"),
        )
        result = run_benchmark(config, progress=False)
        record = read_experiment("roundtrip", config.tracking.uri)
    return result, record, analyse(record)


def test_report_recomputes_what_the_engine_logged(grid):
    _, record, a = grid
    logged = record.folds.set_index("run_id")
    assert len(a.inputs.per_unit) == 4
    for unit in a.inputs.per_unit.itertuples():
        for metric in ("auc", "accuracy", "sensitivity", "specificity", "f1", "ece", "brier"):
            assert getattr(unit, metric) == pytest.approx(
                logged.at[unit.run_id, schema.test_metric(metric)], abs=1e-12
            ), metric
    cost = a.result("cost").cost_per_unit.set_index("run_id")
    flat = a.result("flatness").per_unit.set_index("run_id")
    curves = a.result("training")
    for run_id, row in logged.iterrows():
        assert cost.at[run_id, "train_time_s"] == pytest.approx(row["train_time_s"])
        assert cost.at[run_id, "epochs"] == 2
        for metric in schema.FLATNESS_METRICS:
            assert flat.at[run_id, metric] == pytest.approx(row[metric]), metric
        assert row["flatness_hvps"] == 4  # 2 Lanczos steps and 2 probes
        measured = record.artifacts[run_id][schema.FLATNESS_FILE]
        assert measured["flatness_hvps"] == 4 and measured["method"] == "lanczos"
        assert measured["rho"] == 0.05  # one radius whatever the optimizer trained with
    assert set(curves["metric"]) >= {"train_loss", "val_auc", "epoch_time_s"}
    assert set(curves["step"]) == {0, 1}
    preds = record.predictions
    # without repeats no optional column: predictions.csv as before cv.repeats existed
    written = [c for c in schema.PREDICTION_COLUMNS if c not in schema.OPTIONAL_PREDICTION_COLUMNS]
    assert list(preds.columns[4:]) == written


def test_closing_table_is_the_reports_numbers(grid, capsys):
    result, _, a = grid
    summary = result.summary
    perf = a.result("performance").performance.set_index(["model", "optimizer"])
    for row in summary.itertuples():
        assert row.auc_mean == perf.at[(row.model, row.optimizer), "auc_mean"]
        assert row.accuracy_std == perf.at[(row.model, row.optimizer), "accuracy_std"]
    text = render_summary(summary)
    table = pd.read_csv(result.report_dir / "table_performance.csv")
    for row in table.itertuples():
        assert f"{row.auc_mean:.3f} ± {row.auc_std:.3f}" in text


def test_parent_aggregates_equal_the_childrens(grid):
    _, record, _ = grid
    for parent in record.parents.itertuples(index=False):
        kids = record.folds[record.folds["parent_run_id"] == parent.run_id]
        values = kids[schema.test_metric("auc")]
        assert getattr(parent, schema.cv_mean("test_auc")) == pytest.approx(values.mean())
        assert math.isclose(getattr(parent, schema.cv_std("test_auc")), values.std(ddof=1))


@pytest.mark.slow
def test_a_log_without_a_terminal_is_short_and_plain(tmp_path, tiny_bus):
    """Without a TTY: the plan first, one line per finished job, no progress bars or escape
    codes, and the last lines name report.html and the MLflow UI's runs view."""
    env = {**os.environ, "MEDBENCH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MLFLOW_TRACKING_URI", None)
    overrides = [
        "models=[smallcnn]",
        "optimizers=[adam, sam]",
        "data.image_size=16",
        "data.folds=stratified",
        "data.n_folds=2",
        "train.epochs=2",
        "flatness.enabled=false",
        "report.out=rep",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "medbench", "run", "demo", "--data-root", str(tiny_bus)]
        + [arg for item in overrides for arg in ("--set", item)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = proc.stderr + proc.stdout
    assert "\x1b" not in log and "\r" not in log
    assert len(log.splitlines()) < 40, log
    err = proc.stderr.splitlines()
    assert err[0].startswith("experiment  medbench-demo (id ")
    assert any(line.startswith("grid        1 model(s) x 2 optimizer(s) x 2 folds") for line in err)
    jobs = [line for line in err if line.startswith("[")]
    assert len(jobs) == 4 and all("FINISHED  test AUC" in line for line in jobs)
    out = proc.stdout.splitlines()
    # the verdict's bottom line closes the table, as the report has it
    lines = read_bottom_lines(tmp_path / "rep")
    assert set(lines) == {"smallcnn"} and render_verdict(lines) in proc.stdout
    assert out[-2].startswith("report: rep/report.html")
    # the command as this run was started (python -m medbench): it works as printed, here
    assert out[-1].startswith(
        f"compare the runs in the MLflow UI: {sys.executable} -m medbench ui, then open http"
    )
