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


def test_list_layouts(capsys):
    assert main(["list", "layouts"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "busbra",
        "busi",
        "breastmnist",
        "gdph_sysucc",
        "flat",
    ]
    assert "bus_data.csv" in lines[0]


def test_a_meaningless_setting_stops_before_any_data_or_store(capsys, tmp_path, monkeypatch):
    from pathlib import Path

    from medbench.cli import main

    monkeypatch.setenv("MEDBENCH_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["run", "demo", "--set", "optimizer.rho=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "medbench: error: optimizer.rho: must be > 0 for sam, gcsam (rho 0 makes SAM plain "
        "gradient descent with twice the cost)"
    ]
    assert not (tmp_path / "cache").exists() and not Path("mlflow.db").exists()


def test_list_describes_every_model_optimizer_and_config(capsys):
    from medbench.cli import main
    from medbench.config import list_configs
    from medbench.models import list_models
    from medbench.optim import list_optimizers

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [*list_models(), *list_optimizers(), *list_configs()]:
        line = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert len(line.split()) > 2, line  # a name and a description
    assert main(["list", "optimizers"]) == 0
    assert "GCSAM (Hassan et al. 2025)" in capsys.readouterr().out
