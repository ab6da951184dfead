"""User YAML: every bad input is one line naming the file and line (issue 25 #12, #13)."""

from __future__ import annotations

import pytest

from medbench.config import load_config
from medbench.errors import ConfigError
from medbench.yaml_input import MAX_DEPTH, load_yaml, short

LAUGHS = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]"
            for p, n in zip("abcdefg", "bcdefgh", strict=True)
        ),
        "name: *h",
    ]
)


def _write(tmp_path, data: bytes):
    path = tmp_path / "config.yaml"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("name: x\n".encode("utf-16"), r"config.yaml: is UTF-16 text; save it as UTF-8"),
        (bytes(range(256)), r"config.yaml: is not a text file \(it holds NUL bytes\)"),
        ("models: [smallcnn]\nname: caf\xe9\n".encode("latin-1"), r"line 2: is not UTF-8 .*0xe9"),
        (
            b"train:\n  epochs: 3\nname: a\ntrain:\n  batch_size: 4\n",
            r"config.yaml line 4: key 'train' appears twice in one mapping \(first on line 1\)",
        ),
        (b"name: " + b"[" * 100_000 + b"]" * 100_000, rf"nested more than {MAX_DEPTH} levels"),
        (LAUGHS.encode(), r"expands to more than 100,000 values \(YAML aliases"),
        (b"name: [unclosed\n", r"config.yaml line 2: not valid YAML"),
    ],
)
def test_bad_config_files_are_one_line(tmp_path, data, match):
    with pytest.raises(ConfigError, match=match) as err:
        load_config(_write(tmp_path, data))
    message = str(err.value)
    assert "\n" not in message and len(message) < 400


def test_a_byte_order_mark_and_anchors_used_sensibly_are_fine(tmp_path):
    text = "\ufeffname: bom\nmodels: &m [smallcnn]\noptimizers: [adam]\ndata: {image_size: 32}\n"
    assert load_config(_write(tmp_path, text.encode("utf-8"))).name == "bom"


@pytest.mark.parametrize(
    ("override", "name"), [("name=010", "010"), ("name=1:30", "1:30"), ("name=1e3", "1e3")]
)
def test_string_settings_keep_the_text_that_was_written(override, name):
    """YAML 1.1 reads 010 as 8 and 1:30 as 90: experiment '8' was created for name=010."""
    config = load_config("demo", [override])
    assert config.name == name
    external = load_config("demo", ["data.external=[{root: /x, name: 007}]"]).data.external
    assert external[0].name == "007"


def test_numbers_stay_numbers_of_the_plain_types():
    config = load_config("demo", ["train.epochs=3", "optimizer.lr=0.001", "seeds=[1, 2]"])
    assert type(config.train.epochs) is int and config.train.epochs == 3
    assert type(config.optimizer.lr) is float and config.optimizer.lr == 0.001
    assert [type(s) for s in config.seeds] == [int, int]


def test_a_huge_value_is_cut_in_the_message():
    with pytest.raises(ConfigError) as err:
        load_config("demo", [f"train.epochs=[{', '.join(['1'] * 5000)}]"])
    assert len(str(err.value)) < 300
    assert "..." in short("x" * 1000) and len(short("x" * 1000)) <= 82


def test_load_yaml_names_its_source():
    with pytest.raises(ConfigError, match=r"^--set x line 1: key 'a' appears twice"):
        load_yaml("{a: 1, a: 2}", "--set x")
