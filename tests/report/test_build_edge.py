from pathlib import Path

from medbench.cli import main
from medbench.tracking import Tracker


def test_every_run_failed_still_gives_a_report_in_the_default_folder(mlflow_uri, capsys):
    tr = Tracker(mlflow_uri, "broken run")
    pid = tr.start_parent("m/adam", {"model": "m", "optimizer": "adam", "seed": 0}, "h", "f")
    for fold in (1, 2):
        cid = tr.start_child(
            pid,
            f"m/adam/fold{fold}",
            f"m/adam/fold{fold}/seed0",
            {"fold": fold, "seed": 0, "model": "m", "optimizer": "adam"},
            "h",
            "f",
        )
        tr.log_metrics(cid, {"train_loss": 0.7, "epoch_time_s": 1.0}, step=0)
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
