"""Fixtures of the report tests: the small store of ``mlflow_store`` and its report, built once;
the generated record of ``generated`` and its analysis."""

from __future__ import annotations

import pytest

from tests.report.mlflow_store import CARD, EXPERIMENT, make_store


@pytest.fixture(scope="module")
def built(_empty_store, tmp_path_factory):
    """The test store and the report built from it, shared by the tests of one module."""
    import shutil

    from medbench.report.build import build_report

    root = tmp_path_factory.mktemp("report")
    shutil.copy(_empty_store, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    card = root / "synthetic_bus.md"
    card.write_text(CARD, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # MLflow puts the artifacts of a SQLite store in the working folder
        mp.setattr("medbench.data.cards.card_folder", lambda: root)  # the test card only
        store = make_store(uri)
        out = build_report(EXPERIMENT, tracking_uri=uri, out_dir=root / "out")
    return store, out


@pytest.fixture(scope="module")
def generated():
    from tests.report.generated import make_record

    return make_record()


@pytest.fixture(scope="module")
def analysis(generated):
    from medbench.report.analysis import analyse

    return analyse(generated)
