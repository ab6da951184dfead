"""The engine on data it did not generate: a real-release-like layout, the flat layout, and
leave-one-site-out folds."""

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from medbench.config import load_config
from medbench.pipeline import run_benchmark
from medbench.tracking.schema import site_key
from tests.data.layouts import flat_layout, gdph_layout
from tests.engine.conftest import TINY, child_runs

pytestmark = pytest.mark.e2e  # grids, reports or generated datasets end to end


def test_run_on_a_real_release_layout(tmp_path, mlflow_uri):
    """Mixed sizes and modes (16-bit, palette, RGBA), BI-RADS as numbers and text, an extra sheet,
    a stray reader value, 1-based folds from the sheet."""
    ds = gdph_layout(
        tmp_path / "release", per_site={"SYSUCC": (10, 10), "GDPH": (10, 10)}, folds=(1, 2, 3)
    )
    config = load_config(
        "demo",
        [
            *TINY,
            "optimizers=[adam]",
            "data.folds=sheet",
            f"tracking.uri={mlflow_uri}",
            "name=release",
        ],
        data_root=str(ds.root),
    )
    with pytest.warns(UserWarning, match="4/5"):
        run_benchmark(config, report=False, progress=False)
    kids = child_runs(mlflow_uri, "release")
    assert sorted(kids["tags.mlflow.runName"]) == [f"smallcnn/adam/fold{k}" for k in (1, 2, 3)]
    assert set(kids["status"]) == {"FINISHED"}
    assert {"metrics.test_auc_site_GDPH", "metrics.test_auc_site_SYSUCC"} <= set(kids.columns)
    client = mlflow.MlflowClient()
    pred = client.download_artifacts(kids.iloc[0]["run_id"], "predictions.csv")
    text = Path(pred).read_text()
    assert "4a" in text and "4/5" not in text  # normalised readers, stray value left out
    # a folder in the release's layout is not the release: the release's card does not apply
    parents = mlflow.search_runs(experiment_names=["release"])
    assert (
        "tags.medbench.dataset_card" not in parents
        or parents["tags.medbench.dataset_card"].isna().all()
    )


def test_run_on_the_flat_layout(tmp_path, mlflow_uri):
    ds = flat_layout(tmp_path / "flat", n_benign=12, n_malignant=12)
    config = load_config(
        "demo",
        [*TINY, "optimizers=[adam]", "data.n_folds=2", f"tracking.uri={mlflow_uri}", "name=flat"],
        data_root=str(ds.root),
    )
    run_benchmark(config, report=False, progress=False)
    kids = child_runs(mlflow_uri, "flat")
    assert len(kids) == 2 and set(kids["status"]) == {"FINISHED"}


def test_leave_one_site_out(tiny_bus, mlflow_uri):
    config = load_config(
        "demo",
        [
            *TINY,
            "optimizers=[adam]",
            "data.folds=site",
            f"tracking.uri={mlflow_uri}",
            "name=loso",
            "report.enabled=true",
            "report.out=rep",
        ],
        data_root=str(tiny_bus),
    )
    result = run_benchmark(config, progress=False)
    kids = child_runs(mlflow_uri, "loso")
    assert sorted(kids["tags.mlflow.runName"]) == [
        "smallcnn/adam/foldGDPH",
        "smallcnn/adam/foldSYSUCC",
    ]
    for _, kid in kids.iterrows():
        site = kid["params.fold"]
        other = "SYSUCC" if site == "GDPH" else "GDPH"
        # trained on one hospital, tested on the other: only the held-out site has test metrics
        assert not pd_isna(kid.get(f"metrics.test_auc_site_{site}"))
        assert pd_isna(kid.get(f"metrics.test_auc_site_{other}"))
    text = (result.report_dir / "report.md").read_text()
    assert "2 fold run(s), 2 of which finished and count" in text  # site folds are folds too
    assert "| name | synthetic_bus |" in text  # generated data gets the synthetic card


def pd_isna(value):
    import pandas as pd

    return value is None or pd.isna(value)


def test_site_folders_with_odd_names_train_and_keep_their_names(tmp_path, mlflow_uri):
    """'SYSUCC (2)', 'GDPH&1' and non-ASCII site folders: metric names are sanitised, the real
    names kept in a tag and in predictions.csv, and no run is left RUNNING."""
    import json

    sites = {"SYSUCC (2)": (8, 8), "GDPH&1": (8, 8), "Hôpital": (8, 8)}
    ds = gdph_layout(tmp_path / "odd", per_site=sites, folds=(1, 2), stray=None)
    config = load_config(
        "demo",
        [*TINY, "optimizers=[adam]", "data.folds=sheet", f"tracking.uri={mlflow_uri}", "name=odd"],
        data_root=str(ds.root),
    )
    run_benchmark(config, report=False, progress=False)
    kids = child_runs(mlflow_uri, "odd")
    assert set(kids["status"]) == {"FINISHED"}
    keys = {site: site_key(site) for site in sites}
    assert keys["SYSUCC (2)"].startswith("SYSUCC _2__") and keys["GDPH&1"].startswith("GDPH_1_")
    assert {f"metrics.test_auc_site_{k}" for k in keys.values()} <= set(kids.columns)
    names = json.loads(kids.iloc[0]["tags.medbench.site_names"])
    assert names == {key: site for site, key in keys.items()}


def test_stray_folds_are_warned_marked_in_the_report_and_can_be_left_out(tmp_path, mlflow_uri):
    """Folds 0 (1 image) and 6 (2 images), typos in a 4-fold sheet: warned at the start of the
    run, marked in the report (its AUC on 2 images would otherwise lift the mean unseen), and
    left out with data.folds_keep."""
    import pandas as pd

    from medbench.errors import MedbenchWarning

    ds = flat_layout(tmp_path / "stray", n_benign=24, n_malignant=24)
    ds.columns = ("image", "fold")
    for i, r in enumerate(ds.rows):
        r["fold"] = i % 4 + 1
    ds.rows[0]["fold"] = 0
    ds.rows[1]["fold"] = ds.rows[2]["fold"] = 6
    ds.write_sheet()
    sets = [
        *TINY,
        "optimizers=[adam]",
        "data.folds=sheet",
        f"tracking.uri={mlflow_uri}",
        "name=stray",
        "report.enabled=true",
        f"report.out={tmp_path / 'rep'}",
    ]
    config = load_config("demo", sets, data_root=str(ds.root))
    with pytest.warns(MedbenchWarning, match=r"fold 6 holds 2 images, far fewer than the other"):
        run_benchmark(config, progress=False)
    per_fold = pd.read_csv(tmp_path / "rep" / "table_per_fold.csv")
    assert set(per_fold.loc[per_fold["small_fold"], "fold"]) == {0, 6}
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "Fold(s) far smaller than the rest: 0 (1 test images), 6 (2 test images)" in text
    kept = load_config("demo", [*sets, "data.folds_keep=[1, 2, 3, 4]"], data_root=str(ds.root))
    result = run_benchmark(kept, report=False, progress=False)
    assert sorted(o.job.fold for o in result.outcomes) == [1, 2, 3, 4]


@pytest.mark.slow
def test_a_busbra_twin_report_has_the_banner_and_one_reader(tmp_path, mlflow_uri):
    """``data synth --layout busbra`` writes no card, but its folder holds the generator's
    marker: the report says SYNTHETIC DATA; BUS-BRA has one reader: no Reader 2 row, no
    agreement between readers, and captions that say one reader."""
    from medbench.data.synth.synthetic_layouts import generate_layout

    generate_layout("busbra", tmp_path / "busbra", n=60, seed=0)
    config = load_config(
        "demo",
        [
            *TINY,
            "optimizers=[adam, sam]",
            f"tracking.uri={mlflow_uri}",
            "name=twin",
            "report.enabled=true",
            "report.out=rep",
        ],
        data_root=str(tmp_path / "busbra"),
    )
    result = run_benchmark(config, progress=False)
    assert {o.status.value for o in result.outcomes} == {"FINISHED"}
    parents = mlflow.search_runs(
        experiment_names=["twin"], filter_string="tags.medbench.parent != ''"
    )
    assert set(parents["tags.medbench.synthetic"]) == {"true"}
    text = (result.report_dir / "report.md").read_text()
    assert "**SYNTHETIC DATA.**" in text or "SYNTHETIC DATA." in text.split("\n## ")[0]
    assert "| Reader 1 |" in text and "Reader 2" not in text
    assert "both assessed" not in text and "two readers" not in text
    assert "and the reader's operating point (BI-RADS ≥ 4a called malignant)" in text
    assert "Generated data: the data folder holds the marker of medbench's generator" in text
    assert "Near-duplicate images among the training data" in text
    readers = pd.read_csv(result.report_dir / "table_readers.csv")
    assert readers["reader"].tolist() == ["birads_reader1"]
    assert not (result.report_dir / "table_reader_agreement.csv").exists()
