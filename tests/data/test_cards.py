import pytest

from medbench.data import birads
from medbench.data.cards import card_path, read_card


@pytest.fixture(scope="module")
def gdph():
    return read_card(card_path("gdph_sysucc_bus"))


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
    assert layout["sheet"] == "BIRADS&FOLD.xlsx" and layout["worksheet"] == "prediction"
    assert layout["columns"] == ["ID", "BIRADS-reader1", "BIRADS-reader2", "fold"]
    assert meta["readers"]["columns"] == layout["columns"][1:3]
    assert all(birads.category(v) in birads.CATEGORIES for v in meta["readers"]["values"])
    assert birads.category(meta["readers"]["positive_at"]) == "4a"
    assert meta["preprocessing"]["size"] == [256, 256] and meta["preprocessing"]["range"] == [0, 1]
