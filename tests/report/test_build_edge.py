from pathlib import Path

import pytest

from medbench.cli import main
from medbench.tracking import Tracker


def test_every_run_failed_still_gives_a_report_in_the_default_folder(mlflow_uri, capsys):
    tr = Tracker(mlflow_uri, "broken run")
    pid = tr.start_parent("m", "adam", {"model": "m", "optimizer": "adam", "seed": 0}, "h", "f")
    for fold in (1, 2):
        params = {"fold": fold, "seed": 0, "model": "m", "optimizer": "adam"}
        cid = tr.start_child(pid, "m", "adam", fold, 0, params, "h", "f")
        tr.log_epoch(cid, 0, {"train_loss": 0.7, "epoch_time_s": 1.0})
        tr.finish(cid, "FAILED", f"diverged: training loss became nan in epoch {fold}")
    tr.finish(pid, "FAILED", "2 of 2 folds failed")

    assert main(["report", "broken run", "--tracking-uri", mlflow_uri]) == 0

    out = Path("reports/broken_run")
    assert str(out) in capsys.readouterr().out
    md = (out / "report.md").read_text()
    assert "No fold run finished" in md
    assert "epoch 1" in md and "epoch 2" in md
    assert "No `config.yaml` artifact" in md
    assert "<img" not in (out / "report.html").read_text()


def test_unknown_experiment_is_a_one_line_error(mlflow_uri, capsys):
    Tracker(mlflow_uri, "exists")
    assert main(["report", "exist", "--tracking-uri", mlflow_uri]) == 2
    assert "did you mean 'exists'" in capsys.readouterr().err


@pytest.mark.e2e
def test_seeds_are_paired_units_and_pooled_per_seed(mlflow_uri, tmp_path):
    import numpy as np
    import pandas as pd

    from medbench.metrics import binary_metrics
    from medbench.report.build import build_report

    tr = Tracker(mlflow_uri, "seeds")
    rng = np.random.default_rng(0)
    for opt in ("adam", "sam"):
        pid = tr.start_parent("m", opt, {"model": "m", "optimizer": opt}, "h", "f")
        for seed in (0, 1):
            for fold in (1, 2):
                params = {"fold": fold, "seed": seed, "model": "m", "optimizer": opt}
                cid = tr.start_child(pid, "m", opt, fold, seed, params, "h", "f")
                labels = np.arange(20) % 2
                pred = pd.DataFrame(
                    {
                        "id": [f"f{fold}-{i}" for i in range(20)],
                        "site": "",
                        "fold": fold,
                        "label": labels,
                        "prob_malignant": np.clip(0.4 * labels + 0.6 * rng.random(20), 0, 1),
                    }
                )
                tr.log_fold_result(
                    cid,
                    test=binary_metrics(pred["label"], pred["prob_malignant"]),
                    sites={},
                    predictions=pred,
                    test_loss=0.5,
                    best_epoch=0,
                    train_time_s=1.0,
                )
                tr.finish(cid)
        tr.finish(pid)

    out = build_report("seeds", tracking_uri=mlflow_uri, out_dir=tmp_path / "r", log=False)

    assert len(pd.read_csv(out / "table_per_fold.csv")) == 8
    pooled = pd.read_csv(out / "table_pooled_auc.csv")
    assert sorted(zip(pooled["optimizer"], pooled["seed"], strict=True)) == [
        ("adam", 0),
        ("adam", 1),
        ("sam", 0),
        ("sam", 1),
    ]
    assert set(pooled["n_images"]) == {40}
    paired = pd.read_csv(out / "table_paired_tests.csv")
    assert set(paired["n_pairs"]) == {4}
    md = (out / "report.md").read_text()
    assert "Per site" not in md and "Clinical context" not in md  # no sites, no readers


@pytest.mark.subprocess
def test_sigterm_while_building_leaves_no_half_report(tmp_path, _empty_store):
    """A kill during the build exits 130 with a message, and the report folder holds either the
    previous report or nothing: never half of a new one."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from tests.report.mlflow_store import make_store

    shutil.copy(_empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the SQLite store's artifacts live beside it
    try:
        store = make_store(uri)
    finally:
        os.chdir(cwd)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "medbench", "report", store.experiment]
        + ["--tracking-uri", uri, "--out", str(out)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not any(p.name.startswith(".out.building-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.time() < deadline, "the build never started"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "medbench: interrupted"
    assert not any(p.name.startswith(".out.building-") for p in tmp_path.iterdir())
    assert list(out.iterdir()) == []  # nothing was moved in: no half report


def _one_failed_run(uri: str, name: str) -> None:
    tr = Tracker(uri, name)
    pid = tr.start_parent("m", "adam", {"model": "m", "optimizer": "adam", "seed": 0}, "h", "f")
    params = {"fold": 1, "seed": 0, "model": "m", "optimizer": "adam"}
    tr.finish(tr.start_child(pid, "m", "adam", 1, 0, params, "h", "f"), "FAILED", "diverged")


def test_a_full_disk_while_the_report_is_logged_is_one_line(mlflow_uri, capsys, monkeypatch):
    """The report's files are attached to the parent runs: a full disk under the store's
    artifacts ended in an OSError traceback; the report itself was written and says where."""
    import errno

    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    def full(self, local_file, artifact_path=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LocalArtifactRepository, "log_artifact", full)
    _one_failed_run(mlflow_uri, "full")
    assert main(["report", "full", "--tracking-uri", mlflow_uri, "--out", "rep"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "medbench: error: the report was written to rep, but not attached to the runs: "
        f"tracking store {mlflow_uri}: log_artifact failed (OSError: [Errno 28] No space left "
    )
    assert (Path("rep") / "report.html").is_file()


def test_a_server_that_answers_health_but_fails_its_api_is_one_line(capsys, monkeypatch):
    """`medbench report` against a server whose /health answers while its API fails (a proxy,
    a broken database behind it): a traceback from MLflow's REST client."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Half(BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == "/health"
            self.send_response(200 if ok else 500)
            self.end_headers()
            self.wfile.write(b"OK" if ok else b"<html>Internal Server Error</html>")

        do_POST = do_GET

        def log_message(self, *args):
            pass

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Half)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        code = main(["report", "x", "--tracking-uri", uri])
    finally:
        server.shutdown()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith(
        f"medbench: error: tracking store {uri}: get_experiment_by_name failed"
    )
