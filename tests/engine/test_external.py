"""External validation through the real engine: every fold run tests its selected checkpoint on
each external dataset, logs external_{name}_* and predictions_external_{name}.csv, and the
report shows the section; ``data.folds: none`` trains on everything and tests externally only.
Also: ``medbench run demo --data-root`` finishes with a report on each new layout."""

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medbench.cli import main
from medbench.config import data_settings, load_config
from medbench.data import dataset as prepared
from medbench.data.dataset import prepare_dataset, prepare_externals
from medbench.engine.jobs import Job
from medbench.engine.runner import data_mismatch, fold_data
from medbench.engine.work import JobSpec
from medbench.metrics import METRIC_NAMES, binary_metrics
from medbench.pipeline import run_benchmark
from medbench.tracking import schema as s
from medbench.tracking.reader import read_predictions
from tests.data.layouts import breastmnist_npz, busbra_layout, busi_layout, pattern, write_png
from tests.engine.conftest import TINY, child_runs

pytestmark = pytest.mark.e2e  # grids, reports or generated datasets end to end

# the report on; TINY's other settings (smallcnn, 16 px, 2 epochs, 3 stratified folds)
SMALL = [o for o in TINY if not o.startswith("report.")]


def _artifact(run_id: str, name: str) -> pd.DataFrame:
    text = Path(mlflow.MlflowClient().download_artifacts(run_id, name)).read_text()
    return read_predictions(text)


#: Training images copied into the BUSI external set (issue 25 #5: not all of it is external).
COPIED = 3


@pytest.fixture(scope="module")
def externals(tmp_path_factory, tiny_bus):
    root = tmp_path_factory.mktemp("external")
    bra = busbra_layout(root / "BUSBRA")
    busi = busi_layout(root / "BUSI")
    train = sorted((tiny_bus / "GDPH").glob("*.png"))
    for k, image in enumerate(train[:COPIED]):
        shutil.copy(image, busi / "benign" / f"benign ({101 + k}).png")
    near = np.array(Image.open(train[COPIED]).convert("RGB")).astype(int)  # one more, brighter
    Image.fromarray(np.clip(near + 8, 0, 255).astype(np.uint8)).save(
        busi / "benign" / "benign (110).png"
    )
    return root, bra


def test_every_fold_run_is_tested_on_every_external_dataset(
    tiny_bus, externals, mlflow_uri, tmp_path, capsys
):
    root, bra = externals
    args = ["run", "demo", "--data-root", str(tiny_bus)]
    args += ["--external-root", str(root / "BUSBRA"), "--external-root", str(root / "BUSI")]
    for item in [*SMALL, f"tracking.uri={mlflow_uri}", "name=ext", f"report.out={tmp_path}/r"]:
        args += ["--set", item]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert (
        f"external dataset 'busi': {COPIED} of its 18 images are training images and 1 more "
        "near-duplicates of one" in err
    )
    assert "external dataset 'busbra'" not in err
    kids = child_runs(mlflow_uri, "ext")
    assert len(kids) == 6 and set(kids["status"]) == {"FINISHED"}
    for name, n in (("busbra", 60), ("busi", 14 + COPIED + 1)):
        for metric in (*METRIC_NAMES, "loss"):
            column = f"metrics.{s.external_metric(name, metric)}"
            assert column in kids and kids[column].notna().all(), column
        for _, row in kids.iterrows():
            preds = _artifact(row["run_id"], s.external_predictions_file(name))
            columns = [c for c in s.PREDICTION_COLUMNS if c not in s.OPTIONAL_PREDICTION_COLUMNS]
            assert list(preds.columns) == columns and len(preds) == n
            assert set(preds["fold"].astype(str)) == {row["params.fold"]}
            logged = binary_metrics(preds["label"], preds["prob_malignant"], 0.5)
            for metric in ("auc", "accuracy", "sensitivity", "brier"):
                value = row[f"metrics.external_{name}_{metric}"]
                assert value == pytest.approx(logged[metric], abs=1e-9), (name, metric)
    preds = _artifact(kids.iloc[0]["run_id"], s.external_predictions_file("busbra"))
    truth = pd.DataFrame(bra.rows).set_index("ID")
    assert (preds.set_index("id")["label"] == (truth["Pathology"] == "malignant")).all()
    assert (preds.set_index("id")["site"] == truth["Device"]).all()
    assert (preds.set_index("id")["birads_reader1"] == truth["BIRADS"].astype(str)).all()
    report = (tmp_path / "r" / "report.md").read_text()
    assert report.startswith("# medbench report: ext\n")
    assert "## External validation" in report
    section = report[report.index("## External validation") :][:3000]
    # constant columns (model, checkpoints) go to the caption: rows start at the optimizer
    assert "| gcsam | busbra |" in section and "| adam | busi |" in section, section
    assert "Same in every row: Model smallcnn; Checkpoints 3." in section
    assert f"**Not all external:** {COPIED} of the 18 images of `busi` are training" in section
    assert "images of `busbra`" not in section
    assert (tmp_path / "r" / "fig_external_roc_busbra_smallcnn.png").is_file()
    table = pd.read_csv(tmp_path / "r" / "table_external.csv")
    for opt in ("adam", "gcsam"):
        mine = kids[kids["params.optimizer"] == opt]
        row = table[(table["optimizer"] == opt) & (table["dataset"] == "busbra")].iloc[0]
        assert row["auc_mean"] == pytest.approx(mine["metrics.external_busbra_auc"].mean())
        assert row["internal_auc_mean"] == pytest.approx(mine["metrics.test_auc"].mean())
        assert row["n_images"] == 60 and row["n_units"] == 3


def test_an_external_root_that_is_the_training_data_is_refused(tiny_bus, mlflow_uri, capsys):
    """Issue 25 #5: ``--external-root`` equal to the data root tested the models on the images
    they trained on, and the report called it external validation."""
    args = ["run", "demo", "--data-root", str(tiny_bus), "--external-root", str(tiny_bus)]
    for item in [*SMALL, f"tracking.uri={mlflow_uri}", "name=self"]:
        args += ["--set", item]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("medbench: error: external dataset ")
    assert "all 60 images are training images" in err[-1] and "Traceback" not in "".join(err)
    mlflow.set_tracking_uri(mlflow_uri)
    assert mlflow.search_runs(experiment_names=["self"]).empty  # refused before any run


def test_every_repeats_checkpoints_are_tested_externally(tiny_bus, externals, mlflow_uri):
    """With cv.repeats, each repeat's fold checkpoints are tested on the external data: their
    predictions carry the checkpoint's fold and repeat."""
    root, _ = externals
    config = load_config(
        "demo",
        [*TINY, "optimizers=[adam]", "data.n_folds=2", "cv.repeats=2"]
        + [f"tracking.uri={mlflow_uri}", "name=ext-repeats"],
        data_root=str(tiny_bus),
        external_roots=[str(root / "BUSBRA")],
    )
    run_benchmark(config, progress=False)
    kids = child_runs(mlflow_uri, "ext-repeats")
    assert kids["tags.mlflow.runName"].tolist() == [
        "smallcnn/adam/fold1",
        "smallcnn/adam/fold2",
        "smallcnn/adam/r2/fold1",
        "smallcnn/adam/r2/fold2",
    ]
    assert kids["metrics.external_busbra_auc"].notna().all()
    for _, row in kids.iterrows():
        preds = _artifact(row["run_id"], s.external_predictions_file("busbra"))
        assert len(preds) == 60 and list(preds.columns) == list(s.PREDICTION_COLUMNS)
        assert set(preds["fold"].astype(str)) == {row["params.fold"]}
        assert set(preds["repeat"].astype(str)) == {row["params.repeat"]}


def test_folds_none_trains_on_everything_and_tests_externally(externals, mlflow_uri, tmp_path):
    root, _ = externals
    config = load_config(
        "demo",
        [*SMALL, "data.folds=none", "optimizers=[adam]", f"tracking.uri={mlflow_uri}"]
        + ["name=none", f"report.out={tmp_path}/r"],
        data_root=str(root / "BUSI"),
        external_roots=[str(root / "BUSBRA")],
    )
    run_benchmark(config, progress=False)
    kids = child_runs(mlflow_uri, "none")
    assert kids["tags.mlflow.runName"].tolist() == ["smallcnn/adam/foldall"]
    kid = kids.iloc[0]
    # 14 + 4 images copied from or like the training set (the fixture), minus 4 val
    assert kid["params.n_test"] == "0" and kid["params.n_train"] == "14"
    assert pd.isna(kid.get("metrics.test_auc")) and kid["metrics.external_busbra_auc"] > 0
    report = (tmp_path / "r" / "report.md").read_text()
    assert "No internal test fold (`data.folds: none`)" in report
    assert "## External validation" in report and "n/a (no internal test fold)" in report
    assert "tested on external data only" in report


@pytest.mark.parametrize("layout", ["busbra", "busi", "breastmnist"])
def test_demo_runs_on_each_dataset_and_writes_a_report(layout, tmp_path, mlflow_uri):
    """``medbench run demo --data-root`` with the demo's own folds (auto), made quick."""
    root = tmp_path / layout
    if layout == "busbra":
        busbra_layout(root)
    elif layout == "busi":
        busi_layout(root, n_benign=12, n_malignant=10, n_normal=2)
    else:
        breastmnist_npz(root / "breastmnist_64.npz", size=64)
    quick = ["models=[smallcnn]", "optimizers=[adam]", "data.image_size=16", "train.epochs=1"]
    quick += ["flatness.enabled=false", f"tracking.uri={mlflow_uri}", f"report.out={tmp_path}/r"]
    args = ["run", "demo", "--data-root", str(root)]
    assert main([*args, *[a for q in quick for a in ("--set", q)]]) == 0
    kids = child_runs(mlflow_uri, "medbench-demo")
    folds = {"busbra": 5, "busi": 5, "breastmnist": 1}[layout]
    assert len(kids) == folds and set(kids["status"]) == {"FINISHED"}
    assert (tmp_path / "r" / "report.md").is_file()
    if layout == "breastmnist":
        assert kids.iloc[0]["params.n_test"] == "10" and kids.iloc[0]["params.n_val"] == "5"
    if layout == "busbra":
        assert {"metrics.test_auc_site_GE", "metrics.test_auc_site_Siemens"} <= set(kids.columns)


def test_busbra_validation_split_never_shares_a_patient(externals):
    root, _ = externals
    config = load_config("demo", ["data.image_size=16"], data_root=str(root / "BUSBRA"))
    dataset = prepare_dataset(data_settings(config.data), 0)
    patient = dataset.manifest["patient"].to_numpy()
    for fold in dataset.folds:
        split = fold_data(dataset, config, Job("smallcnn", "adam", fold, 0)).split
        parts = [set(patient[split.train]), set(patient[split.val]), set(patient[split.test])]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert set(dataset.manifest["label"].iloc[split.val]) == {0, 1}


def test_a_worker_with_other_external_data_fails_the_job(externals, tiny_bus):
    root, _ = externals
    config = load_config(
        "demo", ["data.image_size=16"], str(tiny_bus), external_roots=[str(root / "BUSI")]
    )
    dataset = prepare_dataset(data_settings(config.data), 0)
    found = prepare_externals(data_settings(config.data))
    spec = JobSpec(Job("smallcnn", "adam", 1, 0), config, "", "", "h", dataset.fingerprint)
    assert data_mismatch(spec, dataset, found).startswith("the external dataset 'busi' differs")
    spec.external = {"busi": found["busi"].fingerprint}
    assert data_mismatch(spec, dataset, found) is None
    spec.external = {"busi": "0" * 64}
    assert "the grid's: 000000000000" in data_mismatch(spec, dataset, found)
    assert np.array_equal(found["busi"].labels.numpy(), found["busi"].manifest["label"].to_numpy())


def test_runs_tested_on_other_external_data_are_run_again(tiny_bus, mlflow_uri, tmp_path, capsys):

    base = busi_layout(tmp_path / "BUSI")
    overrides = [
        *TINY,
        "optimizers=[adam]",
        "data.n_folds=2",
        f"tracking.uri={mlflow_uri}",
        "name=tiny",
    ]
    config = load_config("demo", overrides, str(tiny_bus), external_roots=[str(tmp_path / "BUSI")])
    run_benchmark(config, report=False, progress=False)
    first = child_runs(mlflow_uri, "tiny").set_index("run_id")
    tag = f"tags.{s.TAG_EXTERNAL}"
    assert len(first) == 2 and first[tag].str.startswith("busi=").all()
    run_benchmark(config, report=False, progress=False)
    assert "2 already finished, 0 to run" in capsys.readouterr().err  # the plan's grid line
    write_png(base / "malignant" / "malignant (1).png", pattern(424242, (50, 40)), "RGB")
    prepared._EXTERNAL.clear()  # a new process would read the folder again
    run_benchmark(config, report=False, progress=False)
    assert "already finished" not in capsys.readouterr().err
    second = child_runs(mlflow_uri, "tiny").set_index("run_id")
    assert len(second) == 2 and not set(second.index) & set(first.index)  # stale runs deleted
    assert set(second[tag]) != set(first[tag]) and set(second["status"]) == {"FINISHED"}
