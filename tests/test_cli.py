import os
import subprocess
import sys
from pathlib import Path

import pytest

from medbench.cli import build_parser, main
from medbench.errors import ConfigError


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


def test_list_imports_no_heavy_package(tmp_path):
    """``medbench list`` reads the registries without torch, scikit-learn or mlflow (they took
    it to 10 s): checked in a fresh interpreter, on what it imported, not on time."""
    probe = (
        "import sys\n"
        "from medbench.cli import main\n"
        "assert main(['list']) == 0\n"
        "heavy = sorted(m for m in ('torch', 'sklearn', 'mlflow', 'monai', 'torchvision', "
        "'scipy', 'matplotlib') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "HEAVY []"
    assert "GCSAM (Hassan et al. 2025)" in proc.stdout


def test_list_prints_whole_descriptions(capsys, monkeypatch):
    """A config's description is its leading comment's whole first paragraph, wrapped."""
    from medbench.config import describe_configs

    monkeypatch.setenv("COLUMNS", "80")
    described = describe_configs()
    assert described["demo"].endswith("48x48 px; the sheet's 5 folds.")
    assert described["demo-fair"].endswith(
        "(the `fair` config's protocol, scaled down; see demo.yaml)."
    )
    assert main(["list", "configs"]) == 0  # in a pipe: one line per config
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(described)
    assert lines[0] == f"demo       {described['demo']}"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # on a terminal: wrapped
    assert main(["list", "configs"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80 < len(lines[0])
    assert " ".join(out.split()).count(" ".join(described["demo-fair"].split())) == 1


def test_global_flags_go_after_the_command_too(capsys):
    parser = build_parser()
    assert parser.parse_args(["run", "demo", "--debug"]).debug is True
    assert parser.parse_args(["--debug", "run", "demo"]).debug is True
    assert parser.parse_args(["run", "demo"]).debug is False
    assert parser.parse_args(["data", "check", "x", "--debug"]).debug is True
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["report", "x", "--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("medbench ")


def test_debug_after_the_command_shows_the_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDBENCH_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="optimizer.rho"):
        main(["run", "demo", "--set", "optimizer.rho=0", "--debug"])


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["rnu"], "medbench: error: unknown command 'rnu' (did you mean 'run'?); commands: run,"),
        (
            ["data", "chek", "x"],
            "medbench data: error: unknown action 'chek' (did you mean 'check'?)",
        ),
    ],
)
def test_a_mistyped_command_gets_one_line_with_the_closest(capsys, argv, line):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(line), err


def test_every_help_page_ends_with_examples_as_typed(capsys, monkeypatch, tmp_path):
    """After ``make demo`` medbench is ``.venv/bin/medbench``: the examples say so."""
    script = tmp_path / ".venv" / "bin" / "medbench"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "argv", [".venv/bin/medbench"])
    for argv in [
        [],
        ["run"],
        ["demo"],
        ["ui"],
        ["report"],
        ["data"],
        ["data", "synth"],
        ["data", "check"],
        ["bench"],
        ["list"],
    ]:
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        page = capsys.readouterr().out
        examples = page.split("examples:\n")[-1].splitlines()
        commands = [line for line in examples if line.startswith("  ")]
        assert 2 <= len(commands) <= 3, (argv, page)
        assert all(
            line.startswith(f"  .venv/bin/medbench {' '.join(argv)}".rstrip()) for line in commands
        )
        parsed = [line.split("#")[0].split()[1:] for line in commands]
        for words in parsed:  # every example parses
            build_parser().parse_args(words)


def test_report_in_an_empty_folder_is_one_line_at_once_and_leaves_it_empty(tmp_path):
    """``medbench report NAME`` in the wrong folder: exit 2, one line naming what was looked for
    and how to point at another store, nothing created, and no heavy package loaded first (the
    19 s it took; checked on what was imported, not on time)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    probe = (
        "import sys\n"
        "from medbench.cli import main\n"
        "code = main(['report', 'medbench-demo'])\n"
        "heavy = sorted(m for m in ('torch', 'mlflow', 'matplotlib', 'scipy') if m in sys.modules)\n"
        "print('EXIT', code, heavy)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(Path(__file__).parents[1])
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=empty
    )
    assert proc.stdout.splitlines()[-1] == "EXIT 2 []", proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"medbench: error: no tracking store at {empty / 'mlflow.db'}")
    assert "--tracking-uri" in line
    assert list(empty.iterdir()) == []
