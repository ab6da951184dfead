"""The plain data settings: what keys the per-process cache of prepared datasets."""

from dataclasses import replace

from medbench.data.settings import DataSettings, ExternalSettings

SETTINGS = DataSettings(
    root="/data/BUSI",
    layout="busi",
    sheet=None,
    include_normal=True,
    labels="check",
    folds="stratified",
    n_folds=4,
    folds_keep=("1", "2"),
    exclude=("benign (3)",),
    image_size=32,
    synthetic_n=600,
    synthetic_seed=0,
    max_image_pixels=1_000,
    external=(),
)


def test_the_key_names_each_setting_as_the_config_does():
    assert SETTINGS.key() == {
        "root": "/data/BUSI",
        "layout": "busi",
        "sheet": None,
        "include_normal": True,
        "labels": "check",
        "folds": "stratified",
        "n_folds": 4,
        "folds_keep": ["1", "2"],
        "exclude": ["benign (3)"],
        "image_size": 32,
        "synthetic.n": 600,
        "synthetic.seed": 0,
    }


def test_the_guard_and_the_external_datasets_leave_the_key_alone():
    other = replace(
        SETTINGS,
        max_image_pixels=5,
        external=(ExternalSettings("/data/BUSBRA", "busbra", "auto", None, False),),
    )
    assert other.key() == SETTINGS.key()
    assert replace(SETTINGS, image_size=64).key()["image_size"] == 64
