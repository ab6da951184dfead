"""Preparing datasets: the fingerprint (unchanged without patients), data cards by layout, and
external datasets prepared with the training data's preprocessing."""

import dataclasses
import hashlib

import pandas as pd
import pytest
import torch

from medbench.config import data_settings, load_config
from medbench.data.dataset import (
    dataset_fingerprint,
    external_name,
    prepare_dataset,
    prepare_externals,
)
from medbench.data.read.manifest import read_manifest
from medbench.data.synth.synthetic_layouts import generate_layout
from medbench.errors import ConfigError
from tests.data.layouts import breastmnist_npz, busbra_layout, busi_layout, flat_layout


def _manifest(patients=None, split=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b"],
            "label": [0, 1],
            "site": ["S", None],
            "fold": pd.array([1, 2], dtype="Int64"),
            "patient": pd.array(patients or [None, None], dtype="str"),
            "split": pd.array(split or [None, None], dtype="str"),
        }
    )


def test_fingerprint_without_patients_is_the_one_of_before():
    digests = ["d1", "d2"]
    lines = "a|0|S|1|d1\nb|1|nan|2|d2\n"
    old = hashlib.sha256(lines.encode()).hexdigest()
    plain = _manifest()
    assert dataset_fingerprint(plain, digests) == old
    assert dataset_fingerprint(plain.drop(columns=["patient", "split"]), digests) == old
    with_patients = dataset_fingerprint(_manifest(patients=["p1", "p1"]), digests)
    assert with_patients != old
    other = dataset_fingerprint(_manifest(patients=["p1", "p2"]), digests)
    assert other != with_patients  # the patients shape the validation split
    assert dataset_fingerprint(_manifest(split=["train", "test"]), digests) != old


def test_external_names(tmp_path):
    busbra_layout(tmp_path / "bra")
    flat_layout(tmp_path / "My Scans!")
    ext = data_settings(load_config("demo", [], external_roots=[str(tmp_path)]).data).external[0]
    assert external_name(ext, read_manifest(tmp_path / "bra")) == "busbra"
    assert external_name(ext, read_manifest(tmp_path / "My Scans!")) == "My_Scans"
    named = dataclasses.replace(ext, name="site-b")
    assert external_name(named, read_manifest(tmp_path / "bra")) == "site-b"


def test_externals_are_preprocessed_like_the_training_data(tmp_path):
    rows = busbra_layout(tmp_path / "bra").rows
    busi_layout(tmp_path / "busi")
    config = load_config(
        "demo",
        ["data.image_size=24", "data.folds=stratified"],
        data_root=str(tmp_path / "busi"),
        external_roots=[str(tmp_path / "bra")],
    )
    externals = prepare_externals(data_settings(config.data))
    assert list(externals) == ["busbra"]
    bra = externals["busbra"]
    assert bra.images.shape == (60, 3, 24, 24) and bra.images.dtype == torch.uint8
    malignant = sum(r["Pathology"] == "malignant" for r in rows)
    assert bra.card == "busbra" and bra.labels.sum().item() == malignant == 19
    assert prepare_externals(data_settings(config.data))["busbra"] is bra  # once per process
    train = prepare_dataset(data_settings(config.data), 0)
    assert train.images.shape[1:] == bra.images.shape[1:] and train.card == "busi"


def test_two_externals_with_one_name_must_be_named(tmp_path):
    busbra_layout(tmp_path / "a")
    busbra_layout(tmp_path / "b")
    roots = [str(tmp_path / "a"), str(tmp_path / "b")]
    config = load_config("demo", ["data.image_size=16"], external_roots=roots)
    with pytest.raises(
        ConfigError, match=r"data.external\[1\]: a second external dataset named 'busbra'"
    ):
        prepare_externals(data_settings(config.data))


@pytest.mark.parametrize(
    "make, card",
    [
        (lambda root: breastmnist_npz(root / "breastmnist_64.npz", size=64), "breastmnist"),
        (lambda root: generate_layout("busi", root, n=30, seed=0), None),
        (lambda root: flat_layout(root), None),
    ],
)
def test_the_card_follows_the_layout(tmp_path, make, card):
    make(tmp_path / "data")
    config = load_config("demo", ["data.image_size=16", "data.folds=stratified", "data.n_folds=2"])
    config.data.root = str(tmp_path / "data")
    assert prepare_dataset(data_settings(config.data), 0).card == card


def test_generated_data_of_any_layout_is_marked_synthetic(tmp_path):
    """The BUS-BRA and BUSI twins have no card, but their folder holds the generator's marker."""
    generate_layout("busi", tmp_path / "twin", n=30, seed=0)
    flat_layout(tmp_path / "own")
    config = load_config("demo", ["data.image_size=16", "data.folds=stratified", "data.n_folds=2"])
    config.data.root = str(tmp_path / "twin")
    assert prepare_dataset(data_settings(config.data), 0).synthetic is True
    config.data.root = str(tmp_path / "own")
    assert prepare_dataset(data_settings(config.data), 0).synthetic is False


def test_data_exclude_leaves_images_out_before_the_folds_are_drawn(tmp_path):
    flat_layout(tmp_path / "own", n_benign=8, n_malignant=8)
    sets = ["data.image_size=16", "data.n_folds=2", "data.exclude=[benign (3), malignant (5)]"]
    config = load_config("demo", sets, data_root=str(tmp_path / "own"))
    assert config.data.exclude == ["benign (3)", "malignant (5)"]
    dataset = prepare_dataset(data_settings(config.data), 0)
    assert len(dataset.manifest) == 14 == len(dataset.images)
    assert not dataset.manifest["id"].isin(["benign (3)", "malignant (5)"]).any()
    assert dataset.folds == [1, 2] and dataset.fold_source == "stratified"
    full = load_config("demo", sets[:2], data_root=str(tmp_path / "own"))
    assert prepare_dataset(data_settings(full.data), 0).fingerprint != dataset.fingerprint
    typo = load_config(
        "demo", [*sets[:2], "data.exclude=[benign (33)]"], data_root=str(tmp_path / "own")
    )
    with pytest.raises(ConfigError, match="data.exclude: no image 'benign \\(33\\)'"):
        prepare_dataset(data_settings(typo.data), 0)
