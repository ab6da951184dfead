import pytest

from medbench.cli import build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "medbench" in capsys.readouterr().out


def test_every_command_has_help():
    parser = build_parser()
    for command in ["run", "demo", "ui", "report", "bench", "list"]:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([command, "--help"])
        assert exc.value.code == 0


def test_list_models(capsys):
    assert main(["list", "models"]) == 0
    names = capsys.readouterr().out.split()
    assert {"resnet18", "smallcnn", "vit_b_16", "swin_t"} <= set(names)
