from pathlib import Path

import pytest

import medbench
from medbench.data.cards import card_folder, list_cards, read_card
from medbench.data.dataset import _card
from medbench.data.read import birads
from medbench.data.read.layouts import LAYOUTS, breastmnist, busbra, busi, gdph_sysucc
from medbench.errors import DataError


@pytest.fixture(scope="module")
def gdph():
    return read_card("gdph_sysucc_bus")


def test_cards_are_package_data():
    assert list_cards() == ["breastmnist", "busbra", "busi", "gdph_sysucc_bus", "synthetic_bus"]
    assert Path(str(card_folder())) == Path(medbench.__file__).parent / "data_cards"


def test_unknown_card_names_the_known_ones():
    with pytest.raises(DataError) as exc:
        read_card("gdph_sysucc")
    assert str(exc.value) == (
        "no data card 'gdph_sysucc' (did you mean 'gdph_sysucc_bus'?); "
        "medbench ships breastmnist, busbra, busi, gdph_sysucc_bus, synthetic_bus"
    )


@pytest.mark.parametrize(
    "text, problem",
    [
        ("# no front matter\n", "has no YAML front matter"),
        ("---\nname: x\n", "front matter is not closed"),
        ("---\n- a list\n---\nbody\n", "front matter must be a mapping"),
    ],
)
def test_bad_front_matter_is_a_one_line_error(tmp_path, monkeypatch, text, problem):
    (tmp_path / "broken.md").write_text(text, encoding="utf-8")
    monkeypatch.setattr("medbench.data.cards.card_folder", lambda: tmp_path)
    with pytest.raises(DataError, match=problem) as exc:
        read_card("broken")
    assert str(exc.value).startswith(str(tmp_path / "broken.md"))


def test_gdph_card_counts_add_up(gdph):
    meta, _ = gdph
    counts = meta["counts"]
    assert (counts["total"], counts["benign"], counts["malignant"]) == (2405, 886, 1519)
    assert counts["benign"] + counts["malignant"] == counts["total"]
    by_site = counts["by_site"]
    assert by_site == {
        "SYSUCC": {"benign": 443, "malignant": 1116},
        "GDPH": {"benign": 443, "malignant": 403},
    }
    for label in ("benign", "malignant"):
        assert sum(site[label] for site in by_site.values()) == counts[label]
    assert sorted(by_site) == sorted(site["name"] for site in meta["sites"])


def test_gdph_card_states_source_licence_and_use(gdph):
    meta, body = gdph
    assert meta["name"] == "gdph_sysucc_bus"
    assert "HoVer-Trans" in meta["source"]["citation"] and "2023" in meta["source"]["citation"]
    assert "Transactions on Medical Imaging" in meta["source"]["citation"]
    assert "not redistributable" in meta["licence"]["status"]
    assert any("diagnosis" in use for use in meta["not_intended_for"])
    assert any("near-duplicate" in issue.lower() for issue in meta["known_issues"])
    assert meta["folds"]["count"] == 5
    assert body.startswith("# GDPH&SYSUCC")


def test_gdph_card_matches_the_reader(gdph):
    meta, _ = gdph
    layout = meta["layout"]
    assert layout["reader"] == "medbench.data.read.manifest.read_manifest"
    assert layout["detected_as"] == gdph_sysucc.NAME
    assert layout["sheet"] == gdph_sysucc.SHEET_FILE == "BIRADS&FOLD.xlsx"
    assert layout["worksheet"] == gdph_sysucc.WORKSHEET == "prediction"
    assert layout["columns"] == list(gdph_sysucc.COLUMNS)
    assert sorted(layout["image_folders"]) == sorted(gdph_sysucc.SITES)
    assert meta["readers"]["columns"] == layout["columns"][1:3]
    assert all(birads.category(v) in birads.CATEGORIES for v in meta["readers"]["values"])
    assert birads.category(meta["readers"]["positive_at"]) == "4a"
    assert meta["preprocessing"]["size"] == [256, 256] and meta["preprocessing"]["range"] == [0, 1]


def test_the_release_card_applies_only_to_the_release_counts():
    import pandas as pd

    def manifest(counts):
        rows = [(site, label) for (site, label), n in counts.items() for _ in range(n)]
        frame = pd.DataFrame(rows, columns=["site", "label"])
        frame.attrs["layout"] = "gdph_sysucc"
        return frame

    release = {("SYSUCC", 0): 443, ("SYSUCC", 1): 1116, ("GDPH", 0): 443, ("GDPH", 1): 403}
    from pathlib import Path

    assert _card(Path("/nowhere"), manifest(release)) == "gdph_sysucc_bus"
    small = {("SYSUCC", 0): 20, ("SYSUCC", 1): 20, ("GDPH", 0): 10, ("GDPH", 1): 10}
    assert _card(Path("/nowhere"), manifest(small)) is None


def test_every_layout_card_is_shipped_and_names_its_layout():
    for name, layout in LAYOUTS.items():
        if layout.CARD is None:
            continue
        meta, body = read_card(layout.CARD)
        assert meta["name"] == layout.CARD and meta["layout"]["detected_as"] == name
        assert meta["licence"]["status"] and "doi" in meta["source"]
        assert any("diagnosis" in use for use in meta["not_intended_for"])
        assert body.startswith("# ")


def test_busbra_card_matches_the_reader():
    meta, _ = read_card("busbra")
    layout, counts = meta["layout"], meta["counts"]
    assert layout["clinical_file"] == busbra.CLINICAL_FILE
    assert layout["clinical_columns"] == list(busbra.RELEASE_COLUMNS)
    assert layout["fold_files"] == list(busbra.FOLD_FILES)
    assert layout["fold_columns"] == list(busbra.FOLD_COLUMNS)
    assert (layout["image_folder"], layout["mask_folder"]) == (
        busbra.IMAGE_FOLDER,
        busbra.MASK_FOLDER,
    )
    assert counts["benign"] + counts["malignant"] == counts["total"] == 1875
    assert sum(counts["patients_by_label"].values()) == counts["patients"] == 1064
    assert birads.category(meta["readers"]["positive_at"]) in birads.POSITIVE


def test_busi_card_matches_the_reader():
    meta, _ = read_card("busi")
    counts = meta["counts"]
    assert meta["layout"]["folder"] == busi.FOLDER
    assert meta["layout"]["class_folders"] == list(busi.CLASS_FOLDERS)
    assert counts["benign"] + counts["malignant"] + counts["normal"] == counts["total"] == 780


def test_breastmnist_card_states_the_inverted_label_map():
    meta, body = read_card("breastmnist")
    assert meta["label_map"]["medmnist"][0] == "malignant"
    assert meta["label_map"]["medbench"][1] == "malignant"
    assert (
        breastmnist.LABEL_MAP == {0: 1, 1: 0} and "1 - MedMNIST label" in meta["label_map"]["rule"]
    )
    assert sum(meta["counts"]["by_split"].values()) == meta["counts"]["total"] == 780
    assert meta["layout"]["arrays"] == [
        f"{split}_{kind}" for split in breastmnist.SPLITS for kind in ("images", "labels")
    ]
    assert "opposite of medbench's" in body
