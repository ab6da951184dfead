import pytest

from medbench.data.synthetic import generate


@pytest.fixture(scope="session")
def tiny_bus(tmp_path_factory):
    """A small synthetic dataset in the GDPH&SYSUCC layout (shared, read-only)."""
    root = tmp_path_factory.mktemp("tiny-bus") / "bus"
    generate(root, n=60, seed=3)
    return root


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
