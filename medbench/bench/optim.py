"""What the SAM family costs: full training steps and optimizer-only time, Adam vs SAM vs GCSAM.

Every optimizer trains its own copy of one model on the same batch, and the optimizers take turns
(round-robin, the order rotating each repetition), each repetition at least a second of steps, so
a slow spell of a shared machine hits them all alike. Ratios are the median over repetitions of
the ratio within a repetition, which cancels such spells better than a ratio of medians.
pytorch-optimizer's ``SAM`` and ``SAM(use_gc=True)`` run as the reference implementation when
that package is installed.
"""

from __future__ import annotations

import copy
import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from medbench.bench.timing import MIN_SECONDS, REPETITIONS, one_thread
from medbench.data.messages import plural
from medbench.errors import ConfigError
from medbench.models import build_model
from medbench.optim import GCSAM, SAM
from medbench.optional import is_available, lazy_import

po = lazy_import("pytorch_optimizer", extra="bench")  # the comparison with its SAM

LR = 1e-4  # the paper's setting; speed does not depend on it
RHO = 0.05

# (numerator, denominator) pairs reported as ratios, when both were measured.
RATIOS = [
    ("sam", "adam"),
    ("gcsam", "sam"),
    ("ref_sam", "adam"),
    ("ref_gcsam", "ref_sam"),
    ("sam", "ref_sam"),
    ("gcsam", "ref_gcsam"),
]


@dataclass(frozen=True)
class Contender:
    """One optimizer under test: how to build it, and whether it needs two passes per step."""

    name: str
    label: str
    build: Callable[[list[nn.Parameter]], Optimizer]
    two_pass: bool


def contenders() -> list[Contender]:
    """Adam, our SAM and GCSAM, and pytorch-optimizer's as the reference when installed."""
    found = [
        Contender("adam", "torch.optim.Adam", lambda p: torch.optim.Adam(p, lr=LR), False),
        Contender("sam", "medbench SAM", lambda p: SAM(p, rho=RHO, lr=LR), True),
        Contender("gcsam", "medbench GCSAM", lambda p: GCSAM(p, rho=RHO, lr=LR), True),
    ]
    if not is_available("pytorch_optimizer"):
        return found
    adam = torch.optim.Adam
    return found + [
        Contender(
            "ref_sam",
            "pytorch_optimizer SAM",
            lambda p: po.SAM(p, adam, rho=RHO, lr=LR),
            True,
        ),
        Contender(
            "ref_gcsam",
            "pytorch_optimizer SAM(use_gc)",
            lambda p: po.SAM(p, adam, rho=RHO, lr=LR, use_gc=True),
            True,
        ),
    ]


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"bench: unknown device {device!r} (use auto, cpu or cuda)") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"bench: device {device!r} asked for, but CUDA is not available")
    return resolved


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCKS = {"": time.perf_counter, "cpu_": time.process_time}  # wall clock, process CPU time


def _timed_step(
    model: nn.Module, opt: Optimizer, two_pass: bool, x, y, device: torch.device
) -> dict[str, float]:
    """Seconds of one training step, in full and in optimizer calls alone, on both clocks.

    Process CPU time is the steadier figure on a CPU shared with other jobs: time the process
    spends preempted counts in the wall clock only.
    """
    loss_fn = nn.functional.cross_entropy
    in_opt = dict.fromkeys(CLOCKS, 0.0)

    def timed(call: Callable[[], None]) -> None:
        _sync(device)
        start = {k: clock() for k, clock in CLOCKS.items()}
        call()
        _sync(device)
        for k, clock in CLOCKS.items():
            in_opt[k] += clock() - start[k]

    _sync(device)
    start = {k: clock() for k, clock in CLOCKS.items()}
    opt.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    if two_pass:
        timed(lambda: opt.first_step(zero_grad=True))
        loss_fn(model(x), y).backward()
        timed(lambda: opt.second_step())
    else:
        timed(opt.step)
    _sync(device)
    out = {f"{k}step": clock() - start[k] for k, clock in CLOCKS.items()}
    out.update({f"{k}optimizer": in_opt[k] for k in CLOCKS})
    return out


def bench_optim(
    model: str = "resnet18",
    image_size: int = 64,
    batch_size: int = 32,
    repetitions: int = REPETITIONS,
    warmup: int = 3,
    device: str = "cpu",
    min_seconds: float = MIN_SECONDS,
) -> dict[str, Any]:
    """Median step and optimizer-only times per optimizer, and their paired ratios.

    Each repetition runs every optimizer for as many steps as fill ``min_seconds`` (from the
    warm-up's step time), the optimizers taking turns; a figure is the median over repetitions
    of the mean step time within one.
    """
    if repetitions < 1 or warmup < 1 or batch_size < 1:
        raise ConfigError("bench: repetitions, warmup and batch size must be at least 1")
    dev = resolve_device(device)
    torch.manual_seed(0)
    net = build_model(model, num_classes=2, image_size=image_size).to(dev).train()
    x = torch.randn(batch_size, 3, image_size, image_size, device=dev)
    y = torch.randint(0, 2, (batch_size,), device=dev)
    runs = []
    for contender in contenders():
        copy_ = copy.deepcopy(net)
        runs.append((contender, copy_, contender.build(list(copy_.parameters()))))

    figures = [f"{k}{what}" for k in CLOCKS for what in ("step", "optimizer")]
    steps: dict[str, int] = {}
    times: dict[str, list[dict[str, float]]] = {c.name: [] for c, _, _ in runs}
    collecting = gc.isenabled()
    gc.disable()  # as timeit does: a collection would land on whichever step is running
    try:
        with one_thread(dev.type == "cpu"):  # CPU time stays a measure of work under load
            threads = torch.get_num_threads()
            for contender, m, opt in runs:
                warm = [_timed_step(m, opt, contender.two_pass, x, y, dev) for _ in range(warmup)]
                per_step = statistics.median(t["step"] for t in warm)
                steps[contender.name] = max(1, math.ceil(min_seconds / max(per_step, 1e-9)))
            for round_ in range(repetitions):
                shift = round_ % len(runs)
                for contender, m, opt in runs[shift:] + runs[:shift]:
                    k = steps[contender.name]
                    total = dict.fromkeys(figures, 0.0)
                    for _ in range(k):
                        for f, v in _timed_step(m, opt, contender.two_pass, x, y, dev).items():
                            total[f] += v
                    times[contender.name].append({f: v / k for f, v in total.items()})
    finally:
        if collecting:
            gc.enable()

    optimizers = {
        c.name: {
            "label": c.label,
            "steps_per_repetition": steps[c.name],
            **{f"{f}_ms": 1e3 * statistics.median(t[f] for t in times[c.name]) for f in figures},
            **{f"{f}_ms_runs": [1e3 * t[f] for t in times[c.name]] for f in figures},
        }
        for c, _, _ in runs
    }
    ratio_runs = {
        f"{a}/{b}": {
            f: [p[f] / q[f] for p, q in zip(times[a], times[b], strict=True)] for f in figures
        }
        for a, b in RATIOS
        if a in times and b in times
    }
    ratios = {
        pair: {f: statistics.median(r) for f, r in by.items()} for pair, by in ratio_runs.items()
    }
    return {
        "part": "optim",
        "config": {
            "model": model,
            "image_size": image_size,
            "batch_size": batch_size,
            "repetitions": repetitions,
            "min_seconds": min_seconds,
            "warmup": warmup,
            "device": str(dev),
            "threads": threads,
            "torch": torch.__version__,
            "reference": "ref_sam" in times,
        },
        "optimizers": optimizers,
        "ratios": ratios,
        "ratio_runs": ratio_runs,
    }


def render_optim(result: dict[str, Any]) -> str:
    """The benchmark as a plain-text table."""
    cfg = result["config"]
    on_cpu = cfg["device"] == "cpu"
    head = ["full step", "optimizer"] + (["cpu step", "cpu optim"] if on_cpu else [])
    keys = ["step", "optimizer"] + (["cpu_step", "cpu_optimizer"] if on_cpu else [])
    main = "cpu_step" if on_cpu else "step"
    lines = [
        f"optimizer speed: {cfg['model']}, {cfg['image_size']}x{cfg['image_size']}, "
        f"batch {cfg['batch_size']}, {cfg['device']} ({plural(cfg['threads'], 'thread')}), "
        f"median of {cfg['repetitions']} interleaved repetitions of at least "
        f"{cfg['min_seconds']:g} s each (after {cfg['warmup']} warm-up steps)",
        "",
        f"{'ms/step':<11}{'implementation':<31}" + "".join(f"{h:>11}" for h in head),
    ]
    for name, row in result["optimizers"].items():
        cells = "".join(f"{row[k + '_ms']:>11.1f}" for k in keys)
        lines.append(f"{name:<11}{row['label']:<31}{cells}")
    lines += [
        "",
        f"{'ratio (median of paired ratios)':<42}"
        + "".join(f"{h:>11}" for h in head)
        + f"   {head[keys.index(main)]} min-max",
    ]
    for name, ratio in result["ratios"].items():
        runs = result["ratio_runs"][name][main]
        lines.append(
            f"{name:<42}"
            + "".join(f"{ratio[k]:>11.3f}" for k in keys)
            + f"   {min(runs):.3f}-{max(runs):.3f}"
        )
    if on_cpu:
        lines += [
            "",
            "cpu = process CPU time; torch on one thread, so that spinning threads of a busy "
            "machine do not count as work",
        ]
    if not cfg["reference"]:
        lines += ["", "(install pytorch-optimizer, the 'bench' extra, for the reference rows)"]
    return "\n".join(lines)
