"""Command line: parses arguments and calls library functions; holds no logic of its own."""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
import warnings
from collections.abc import Sequence

from medbench import __version__
from medbench.engine.interrupts import sigterm_as_interrupt
from medbench.errors import ConfigError, MedbenchError, MedbenchWarning, closest
from medbench.invocation import medbench_words


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """One line per user-facing warning; library warnings keep Python's format."""
    if issubclass(category, MedbenchWarning):
        print(f"medbench: warning: {message}", file=sys.stderr)
    else:
        print(
            warnings.formatwarning(message, category, filename, lineno, line),
            end="",
            file=sys.stderr,
        )


def _exit_code(result) -> int:
    """1 when any job failed (said in one line), else 0."""
    failed = [o for o in result.outcomes if o.status == "FAILED"]
    if not failed:
        return 0
    print(
        f"medbench: error: {len(failed)} of {len(result.outcomes)} jobs failed "
        f"(first: {failed[0].job.run_name}: {failed[0].reason}); the report lists them",
        file=sys.stderr,
    )
    return 1


def _cmd_run(args: argparse.Namespace) -> int:
    from medbench.pipeline import run_benchmark

    result = run_benchmark(
        args.config,
        data_root=args.data_root,
        external_roots=args.external_root,
        overrides=args.set,
        executor=args.executor,
        ray_address=args.ray_address,
        report=not args.no_report,
    )
    return _exit_code(result)


def _cmd_demo(args: argparse.Namespace) -> int:
    from medbench.cpu_paths import pin_x86_v3

    pin_x86_v3()  # before torch is imported: the same metrics on every x86 CPU
    from medbench.pipeline import run_demo

    return _exit_code(run_demo(overrides=args.set, report=not args.no_report))


def _cmd_ui(args: argparse.Namespace) -> int:
    from medbench.tracking.ui import serve_ui

    return serve_ui(host=args.host, port=args.port, tracking_uri=args.tracking_uri)


def _cmd_report(args: argparse.Namespace) -> int:
    from medbench.tracking.store import check_store, resolve_tracking_uri

    # a missing store is one line at once, before the report's packages (seconds) load
    check_store(resolve_tracking_uri(args.tracking_uri), create=False)
    from medbench.report.build import build_report
    from medbench.report.summary import read_bottom_lines, render_verdict

    out = build_report(args.experiment, tracking_uri=args.tracking_uri, out_dir=args.out)
    print(f"report written to {out}")
    verdict = render_verdict(read_bottom_lines(out))  # the report's own bottom lines
    if verdict:
        print(verdict)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from medbench.report.compare import build_comparison

    out = build_comparison(
        args.experiments,
        tracking_uris=args.tracking_uri,
        out_dir=args.out,
        allow_different=args.allow_different,
    )
    print(f"comparison written to {out}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from medbench.report.plan import plan_experiment, render_plan

    plan = plan_experiment(args.experiment, args.tracking_uri, args.delta, args.power)
    print(render_plan(plan))
    return 0


def _cmd_data_synth(args: argparse.Namespace) -> int:
    if args.layout == "gdph_sysucc":
        from medbench.data.synth.synthetic import generate

        summary = generate(args.out, n=args.n, seed=args.seed, sizes=args.sizes)
    else:
        from medbench.data.synth.synthetic_layouts import generate_layout

        if args.sizes != "default":
            raise ConfigError(
                f"--sizes {args.sizes}: only the gdph_sysucc layout has size profiles"
            )
        summary = generate_layout(args.layout, args.out, n=args.n, seed=args.seed)
    print(summary)
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from medbench.data.audit.check import audit_dataset

    report = audit_dataset(
        args.root,
        phash=not args.no_phash,
        sheet=args.sheet,
        layout=args.layout,
        include_normal=args.include_normal,
        labels=args.labels,
        max_image_pixels=args.max_image_pixels,
        repeats=args.repeats,
        n_folds=args.n_folds,
        fold_seed=args.seed,
    )
    print(report.render())
    return 0 if report.usable else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    from medbench.bench.suite import run_bench

    run_bench(args)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    # light registries: listing imports neither torch nor scikit-learn (tests/test_cli.py)
    from medbench.config import describe_configs
    from medbench.data.read.layouts import LAYOUTS
    from medbench.models import MODELS
    from medbench.optim.registry import describe_optimizers

    sections = {
        "models": {name: MODELS[name].description for name in sorted(MODELS)},
        "optimizers": describe_optimizers(),
        "configs": describe_configs(),
        "layouts": {name: layout.DESCRIPTION for name, layout in LAYOUTS.items()},
    }
    chosen = [args.what] if args.what else list(sections)
    # whole descriptions: wrapped under their column on a terminal, one line each in a pipe
    columns = max(shutil.get_terminal_size().columns, 60) if sys.stdout.isatty() else 0
    for i, what in enumerate(chosen):
        if len(chosen) > 1:
            print(("\n" if i else "") + what)
        entries = sections[what]
        width = max(map(len, entries))
        for name, text in entries.items():
            head = f"{'  ' if len(chosen) > 1 else ''}{name:<{width}}  "
            if columns:
                text = textwrap.fill(text, columns - len(head), subsequent_indent=" " * len(head))
            print(head + text)
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return port


class _Parser(argparse.ArgumentParser):
    """argparse with examples kept as written and a "did you mean" for a mistyped command."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def _check_value(self, action: argparse.Action, value: object) -> None:
        # argparse checks a command against its choices before it runs the subparser; one line
        # with the closest command replaces its usage and list of every choice
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            kind = "action" if action.dest == "data_command" else "command"
            known = list(action.choices)
            where = "medbench" + self.prog.removeprefix(" ".join(medbench_words()))
            self.exit(
                2,
                f"{where}: error: unknown {kind} {value!r}{closest(str(value), known)}; "
                f"{kind}s: {', '.join(known)}\n",
            )
        super()._check_value(action, value)


def _examples(*commands: str) -> str:
    """The epilog of a ``--help`` page: commands as they can be typed where medbench was started
    (``.venv/bin/medbench ...`` after ``make demo``)."""
    start = " ".join(medbench_words())
    return "examples:\n" + "\n".join(f"  {start} {command}" for command in commands)


def _global_flags(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """``--debug`` and ``--version``, accepted before and after the command (``medbench run demo
    --debug``). A command's copy leaves ``--debug`` unset unless given, so that it does not undo
    the top-level flag."""
    parser.add_argument(
        "--version", action="version", version=f"medbench {__version__}", help="print the version"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="show tracebacks for errors",
    )


def _share_global_flags(parser: argparse.ArgumentParser) -> None:
    """Give every command (and every action of a command, as ``data check``) the global flags;
    done once the parser is built, so that a command added later gets them too."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):  # aliases share one parser
                _global_flags(command)
                _share_global_flags(command)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=" ".join(medbench_words()),
        description="Cross-validated benchmarks of optimizers and models on medical images.",
        epilog=_examples("demo", "list", "run demo --set train.epochs=3 --debug")
        + "\n\nEach command's --help ends with examples; --debug and --version go anywhere.",
    )
    _global_flags(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key, e.g. --set train.epochs=3 (repeatable)",
        )
        p.add_argument(
            "--no-report", action="store_true", help="do not build the report at the end"
        )

    p = sub.add_parser(
        "run",
        help="run a benchmark grid from a config",
        epilog=_examples(
            "run demo --set train.epochs=3",
            "run paper --data-root /data/GDPH_SYSUCC",
            "run my-config.yaml --external-root /data/BUSBRA --no-report",
        ),
    )
    p.add_argument(
        "config", help="a YAML file or the name of a shipped config (demo, demo-fair, paper, fair)"
    )
    p.add_argument("--data-root", help="dataset folder (overrides data.root)")
    p.add_argument(
        "--external-root",
        action="append",
        default=[],
        metavar="PATH",
        help="an external dataset to test every fold's checkpoint on (added to data.external; "
        "repeatable)",
    )
    p.add_argument(
        "--executor", choices=["local", "ray"], help="where jobs run (overrides executor.kind)"
    )
    p.add_argument("--ray-address", help="Ray cluster address, e.g. ray://head:10001 or auto")
    overrides(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "demo",
        help="generate the synthetic BUS dataset (once) and run the demo grid",
        epilog=_examples("demo", "demo --set train.epochs=2 --no-report"),
    )
    overrides(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "ui",
        help="open the MLflow UI on the tracking store",
        epilog=_examples(
            "ui",
            "ui --port 5001",
            "ui --tracking-uri sqlite:////path/to/mlflow.db",
        ),
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=_port, default=5000, help="TCP port, 1-65535 (default 5000)")
    p.add_argument(
        "--tracking-uri", help="tracking store (default: MLFLOW_TRACKING_URI or ./mlflow.db)"
    )
    p.set_defaults(func=_cmd_ui)

    p = sub.add_parser(
        "report",
        help="build figures, tables and report.md/html from MLflow",
        epilog=_examples(
            "report medbench-demo",
            "report medbench-demo --out /tmp/demo-report",
            "report medbench-paper --tracking-uri http://mlflow-host:5000",
        ),
    )
    p.add_argument("experiment", help="MLflow experiment name (the config's name)")
    p.add_argument(
        "--tracking-uri", help="tracking store (default: MLFLOW_TRACKING_URI or ./mlflow.db)"
    )
    p.add_argument("--out", help="output folder (default reports/EXPERIMENT)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "compare",
        help="one report over several experiments (data sets): forest plot, pooled",
        epilog=_examples(
            "compare bus-gdph bus-busbra bus-busi",
            "compare gdph busi --tracking-uri sqlite:///a.db --tracking-uri sqlite:///b.db",
        ),
    )
    p.add_argument("experiments", nargs="+", metavar="EXPERIMENT", help="two or more experiments")
    p.add_argument(
        "--tracking-uri",
        action="append",
        default=[],
        metavar="URI",
        help="tracking store: once for all experiments, or once per experiment in their order "
        "(default: MLFLOW_TRACKING_URI or ./mlflow.db)",
    )
    p.add_argument("--out", help="output folder (default reports/compare-EXPERIMENTS)")
    p.add_argument(
        "--allow-different",
        action="store_true",
        help="compare experiments whose settings differ beyond their data (the report says so)",
    )
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser(
        "plan",
        help="repeats of the cross-validation a pilot experiment needs, and their compute",
        epilog=_examples("plan medbench-demo", "plan pilot --delta 0.02 --power 0.9"),
    )
    p.add_argument("experiment", help="the pilot: an MLflow experiment name (the config's name)")
    p.add_argument(
        "--delta", type=float, default=0.01, help="true AUC difference to detect (default 0.01)"
    )
    p.add_argument("--power", type=float, default=0.8, help="power to detect it (default 0.8)")
    p.add_argument(
        "--tracking-uri", help="tracking store (default: MLFLOW_TRACKING_URI or ./mlflow.db)"
    )
    p.set_defaults(func=_cmd_plan)

    data = sub.add_parser(
        "data",
        help="dataset tools: synth, check",
        epilog=_examples("data check /data/GDPH_SYSUCC", "data synth /tmp/busbra --layout busbra"),
    ).add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = data.add_parser(
        "synth",
        help="write a synthetic BUS dataset in a real dataset's layout",
        epilog=_examples(
            "data synth /tmp/bus",
            "data synth /tmp/busbra --layout busbra --n 300",
            "data synth /tmp/own --layout flat",
        ),
    )
    p.add_argument("out", help="output folder")
    p.add_argument(
        "--layout",
        default="gdph_sysucc",
        choices=["gdph_sysucc", "busbra", "busi", "flat"],
        help="the layout to write (default gdph_sysucc)",
    )
    p.add_argument("--n", type=int, default=600, help="number of images (default 600)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sizes",
        choices=["default", "release"],
        default="default",
        help="image sizes: default 400-650 px a side; release the real release's 500-1,000 px",
    )
    p.set_defaults(func=_cmd_data_synth)
    p = data.add_parser(
        "check",
        help="audit a dataset folder: counts, the folds run will make, problems",
        epilog=_examples(
            "data check /data/GDPH_SYSUCC",
            "data check /data/BUSBRA --sheet 10-fold-cv.csv",
            "data check /data/BUSI --include-normal --no-phash",
        ),
    )
    p.add_argument("root", help="dataset folder")
    p.add_argument("--no-phash", action="store_true", help="skip the near-duplicate search")
    p.add_argument("--layout", help="the dataset's layout (default: detected)")
    p.add_argument(
        "--sheet", help="worksheet, sheet file, fold file (BUS-BRA) or .npz file to read"
    )
    p.add_argument(
        "--include-normal",
        action="store_true",
        help="fold normal images (BUSI) into benign instead of leaving them out",
    )
    p.add_argument(
        "--labels",
        choices=["check", "sheet", "names"],
        default="check",
        help="a label column against the file names: check (an error where they disagree), "
        "or which one wins (as data.labels)",
    )
    p.add_argument(
        "--max-image-pixels",
        type=int,
        default=89_478_485,
        help="Pillow's decompression-bomb limit (as data.max_image_pixels)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="R",
        help="also show the folds of each of R repeats of the cross-validation (as cv.repeats)",
    )
    p.add_argument(
        "--n-folds",
        type=int,
        default=5,
        help="without folds in the dataset: the stratified folds run draws (as data.n_folds; 5)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="the seed of those folds (the lowest of seeds; 0)"
    )
    p.set_defaults(func=_cmd_data_check)

    p = sub.add_parser(
        "bench",
        help="measure speed: data pipeline, optimizers, training, scale, packing, demo",
        epilog=_examples(
            "bench optim --model resnet18",
            "bench data --repetitions 3",
            "bench paper --models resnet18 --n 600 --epochs 2   # on a GPU",
        ),
    )
    p.add_argument(
        "part",
        nargs="?",
        default="all",
        choices=["all", "data", "optim", "train", "scale", "packing", "paper", "demo"],
        help="all = every part but paper (paper is for GPUs)",
    )
    p.add_argument("--model", default="resnet18", help="optim, train")
    p.add_argument("--image-size", type=int, help="optim/train 64, scale 256, paper: the config's")
    p.add_argument("--batch-size", type=int, help="optim/train/scale 32, paper: the config's")
    p.add_argument("--repetitions", type=int, default=5, help="interleaved repetitions (5)")
    p.add_argument("--min-seconds", type=float, default=1.0, help="least work per repetition (1 s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--n", type=int, help="scale, paper: synthetic images (2405)")
    p.add_argument(
        "--sizes", default="release", choices=["default", "release"], help="scale, paper"
    )
    p.add_argument("--models", nargs="+", help="paper: models (the paper config's)")
    p.add_argument("--optimizers", nargs="+", help="paper: optimizers (the paper config's)")
    p.add_argument("--epochs", type=int, help="paper: timed epochs per pair (5); packing (6)")
    p.add_argument(
        "--jobs", type=int, nargs="+", help="paper: jobs per device to try (GPU 1 2 4 8, CPU 1 2)"
    )
    p.add_argument(
        "--expected-epochs", type=int, default=30, help="paper: epochs per job, projected (30)"
    )
    p.add_argument("--jobs-per-device", type=int, default=2, help="packing: jobs at once (2)")
    p.add_argument("--out", default="reports/bench", help="where bench.json and bench.md go")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "list",
        help="list the models, optimizers, shipped configs and dataset layouts",
        epilog=_examples("list", "list configs"),
    )
    p.add_argument("what", nargs="?", choices=["models", "optimizers", "configs", "layouts"])
    p.set_defaults(func=_cmd_list)
    _share_global_flags(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        with sigterm_as_interrupt():  # a kill ends like Ctrl-C: exit 130
            return int(args.func(args) or 0)
    except MedbenchError as err:
        if args.debug:
            raise
        print(f"medbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
