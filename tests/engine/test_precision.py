"""SAM under low precision: every SAM-family fold run logs how faithfully the compute dtype
carries its perturbation, and warns when it does not (bf16 autocast runs on the CPU too)."""

import mlflow
import pytest

from medbench.errors import MedbenchWarning
from medbench.pipeline import run_benchmark


def _fidelity(uri):
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tiny"])
    kids = runs[runs["tags.mlflow.parentRunId"].notna()]
    return kids.set_index("params.optimizer")


def test_bf16_on_the_cpu_erases_sams_perturbation_and_warns(tiny_config):
    # a small rho: most elements of e are below half a bf16 step of their weight
    config = tiny_config(
        "optimizers=[adam, sam]", "train.amp=bf16", "optimizer.rho=0.005", "data.n_folds=2"
    )
    with pytest.warns(MedbenchWarning, match=r"smallcnn/sam/fold\d: under bf16 autocast .* cosine"):
        run_benchmark(config, report=False, progress=False)
    kids = _fidelity(config.tracking.uri)
    assert (kids.loc["sam", "metrics.perturbation_fidelity"] < 0.9).all()
    assert kids.loc["adam", "metrics.perturbation_fidelity"].isna().all()  # Adam has no e


def test_fp32_gives_a_faithful_perturbation(tiny_config, recwarn):
    config = tiny_config("optimizers=[gcsam]", "train.amp=off", "data.n_folds=2")
    run_benchmark(config, report=False, progress=False)
    kids = _fidelity(config.tracking.uri)
    assert kids["metrics.perturbation_fidelity"].to_numpy() == pytest.approx(1.0, abs=1e-6)
    assert kids["metrics.perturbation_norm_ratio"].to_numpy() == pytest.approx(1.0, abs=1e-3)
    assert not [w for w in recwarn if issubclass(w.category, MedbenchWarning)]
    # n_train + n_val + n_test is the dataset, and the compute is counted: 2 passes per step
    n = kids[["params.n_train", "params.n_val", "params.n_test"]].astype(int).sum(axis=1)
    assert set(n) == {60}
    steps = -(-kids["params.n_train"].astype(int) // 16)  # batches per epoch, batch size 16
    assert (kids["metrics.gradient_evals"] == 2 * 2 * steps).all()  # 2 epochs x 2 passes
