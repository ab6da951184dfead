"""``medbench compare`` on demo-sized experiments run through the real engine: the GDPH&SYSUCC twin
(two repeats) and the BUS-BRA twin of ``medbench data synth --layout busbra`` (one), and the
same twin trained for fewer epochs (a different setting)."""

import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from medbench.cli import main
from medbench.config import load_config
from medbench.data.synth.synthetic import generate
from medbench.data.synth.synthetic_layouts import generate_layout
from medbench.errors import ConfigError
from medbench.pipeline import run_benchmark
from medbench.report.compare import build_comparison
from medbench.report.compare_analysis import compare, config_differences, read_sources
from medbench.report.meta import SIGNED_RANK, bayesian_across_datasets, random_effects
from medbench.report.stats import corrected_resampled_ttest
from tests.engine.conftest import TINY

pytestmark = pytest.mark.e2e  # grids, reports or generated datasets end to end


@pytest.fixture(scope="module")
def twins(tmp_path_factory, _empty_store):
    """Three experiments in one store: gdph (2 repeats x 3 folds), busbra (1 x 3) and
    busbra-short (1 x 3, one epoch); the working folder holding their artifacts."""
    root = tmp_path_factory.mktemp("compare")
    generate(root / "gdph", n=60, seed=3)
    generate_layout("busbra", root / "busbra", n=60, seed=4)
    shutil.copy(_empty_store, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MEDBENCH_CACHE_DIR", str(root / "cache"))
        for name, data, extra in (
            ("gdph", "gdph", ["cv.repeats=2"]),
            ("busbra", "busbra", []),
            ("busbra-short", "busbra", ["train.epochs=1"]),
        ):
            config = load_config(
                "demo",
                [*TINY, f"name={name}", f"tracking.uri={uri}", *extra],
                data_root=root / data,
            )
            run_benchmark(config, report=False, progress=False)
    return root, uri


def test_compare_writes_the_forest_plot_the_pooled_estimate_and_the_bayesian_test(
    twins, monkeypatch
):
    root, uri = twins
    monkeypatch.chdir(root)
    out = build_comparison(["gdph", "busbra"], [uri], root / "cmp")
    for suffix in ("png", "svg"):
        assert (out / f"fig_forest_smallcnn_gcsam_vs_adam.{suffix}").stat().st_size > 1000
    datasets = pd.read_csv(out / "table_compare_datasets.csv")
    units = pd.read_csv(out / "table_compare_unit_differences.csv")
    pooled = pd.read_csv(out / "table_compare_pooled.csv").iloc[0]
    assert datasets["dataset_label"].tolist() == ["gdph", "busbra"]
    assert datasets["n_units"].tolist() == [6, 3] and datasets["n_repeats"].tolist() == [2, 1]
    assert datasets["dataset"].tolist() == ["synthetic_bus", "busbra"]
    for row in datasets.itertuples():
        mine = units[units["dataset_label"] == row.dataset_label]
        test = corrected_resampled_ttest(mine["diff"], mine["ratio"].mean())
        assert row.mean_diff == pytest.approx(mine["diff"].mean(), abs=1e-12)
        assert row.p == pytest.approx(test.p, abs=1e-12) and row.se == pytest.approx(test.scale)
    # the pooled estimate: REML random effects, the wider of the z and Knapp-Hartung intervals
    args = (datasets["mean_diff"], datasets["se"], "REML", list(datasets["dataset_label"]))
    z, hk = random_effects(*args), random_effects(*args, knapp_hartung=True)
    wider = hk if hk.ci_high - hk.ci_low > z.ci_high - z.ci_low else z
    assert pooled["estimate"] == pytest.approx(wider.estimate, abs=1e-12)
    assert (pooled["ci_low"], pooled["ci_high"]) == pytest.approx((wider.ci_low, wider.ci_high))
    assert pooled["tau2"] == pytest.approx(wider.tau2) and pooled["ci_method"] == wider.ci_method
    w = 1 / (datasets["se"] ** 2 + wider.tau2)
    assert pooled["estimate"] == pytest.approx((w * datasets["mean_diff"]).sum() / w.sum())
    across = bayesian_across_datasets(
        [units.loc[units["dataset_label"] == x, "diff"] for x in ("gdph", "busbra")], 0.01
    )
    assert pooled["bayes_test"] == SIGNED_RANK == across.test
    assert pooled["p_b_better"] == pytest.approx(across.p_b_better)
    assert pooled["bayes_max_p"] == pytest.approx(across.max_p)
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "**Across 2 data sets (gdph, busbra): " in text
    assert "Pooled estimate (REML random effects" in text and "tau² = " in text
    assert "Bayesian signed-rank test" in text and "can never exceed P = 0.96" in text
    assert "fig_forest_smallcnn_gcsam_vs_adam.png" in text and "Different settings" not in text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "data:image/svg+xml;base64," in html and "Across 2 data sets" in html


def test_experiments_with_other_settings_are_refused_unless_allowed(twins, monkeypatch, capsys):
    root, uri = twins
    monkeypatch.chdir(root)
    sources = read_sources(["gdph", "busbra-short"], [uri])
    assert config_differences(sources) == ["train.epochs (2 in gdph, 1 in busbra-short)"]
    assert config_differences(read_sources(["gdph", "busbra"], [uri])) == []  # data aside
    args = ["compare", "gdph", "busbra-short", "--tracking-uri", uri, "--out", "refused"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differ in train.epochs (2 in gdph, 1 in busbra-short)" in err[0]
    assert "--allow-different" in err[0] and not (root / "refused").exists()
    assert main([*args[:-1], "allowed", "--allow-different"]) == 0
    text = (root / "allowed" / "report.md").read_text(encoding="utf-8")
    assert (
        "**Different settings.**" in text and "train.epochs (2 in gdph, 1 in busbra-short)" in text
    )
    other = replace(sources[1], scores=sources[1].scores.assign(model="other"))
    with pytest.raises(ConfigError, match="share no model"):
        compare([sources[0], other], allow_different=True)


def test_a_missing_experiment_store_or_store_count_is_one_line(twins, monkeypatch, capsys):
    root, uri = twins
    monkeypatch.chdir(root)
    missing = root / "nowhere" / "mlflow.db"
    cases = [
        (["compare", "gdph", "gdhp", "--tracking-uri", uri], "no experiment named 'gdhp'"),
        (["compare", "gdph", "busbra", "--tracking-uri", f"sqlite:///{missing}"], "no tracking store"),
        (["compare", "gdph", "busbra", "busbra-short", "--tracking-uri", uri, "--tracking-uri", uri],
         "2 stores for 3 experiments"),
        (["compare", "gdph"], "at least two experiments"),
        (["compare", "gdph", "gdph", "--tracking-uri", uri], "is named twice"),
    ]  # fmt: skip
    capsys.readouterr()  # what the module's grids printed (a slow epoch's progress line)
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not missing.parent.exists()  # reading never creates a store


def test_per_dataset_differences_pair_the_units_both_optimizers_finished(twins, monkeypatch):
    root, uri = twins
    monkeypatch.chdir(root)
    (gdph,) = read_sources(["gdph", "busbra"], [uri])[:1]
    scores = gdph.scores
    assert scores.groupby(["optimizer", "repeat"]).size().to_dict() == {
        ("adam", 1): 3, ("adam", 2): 3, ("gcsam", 1): 3, ("gcsam", 2): 3
    }  # fmt: skip
    runs = gdph.record.folds.set_index("run_id")
    logged = runs.loc[scores["run_id"], "test_auc"].to_numpy()
    np.testing.assert_allclose(scores["score"], logged, atol=1e-12)  # recomputed = logged
