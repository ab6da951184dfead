import pytest

TINY = [
    "models=[smallcnn]",
    "optimizers=[adam, gcsam]",
    "data.image_size=16",
    "data.folds=stratified",
    "data.n_folds=3",
    "train.epochs=2",
    "train.batch_size=16",
    "optimizer.lr=0.003",
    "flatness.enabled=false",
    "report.enabled=false",
    "executor.jobs_per_device=1",  # in this process: tests patch what the jobs call
]


@pytest.fixture
def tiny_config(tiny_bus, mlflow_uri):
    from medbench.config import load_config

    def make(*extra):
        return load_config(
            "demo",
            [*TINY, f"tracking.uri={mlflow_uri}", "name=tiny", *extra],
            data_root=str(tiny_bus),
        )

    return make
