"""``medbench bench``: runs the asked-for parts, prints their tables, writes bench.json/bench.md.

Every ratio is measured side by side within one process run; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import monai
import torch

from medbench import __version__
from medbench.bench.data import bench_data, render_data
from medbench.bench.demo import bench_demo, render_demo
from medbench.bench.optim import bench_optim, render_optim
from medbench.bench.packing import bench_packing, render_packing
from medbench.bench.paper import bench_paper, render_paper
from medbench.bench.scale import bench_scale, render_scale
from medbench.bench.train import bench_train, render_train

#: Every part, in the order bench.md shows them; ``all`` runs those of ALL (``paper`` is for
#: GPUs: on a CPU it takes hours at full scale, so it runs only when asked for).
PARTS = ("data", "optim", "train", "scale", "packing", "paper", "demo")
ALL = ("data", "optim", "train", "scale", "packing", "demo")
#: The figures each part contributes to the top of bench.json and bench.md.
HEADLINES = {
    "data": ("data_speedup_later_epochs",),
    "train": ("data_wait_fraction", "sam_over_adam_epoch_time", "gcsam_over_adam_epoch_time"),
    "scale": ("scale_check_s_2405", "scale_preprocess_s_2405", "scale_peak_rss_gb"),
    "packing": ("packing_speedup", "packing_cpu_ratio"),
    "paper": ("paper_grid_projected_h",),
    "demo": ("demo_wall_s", "demo_cpu_s", "demo_flatness_share", "flatness_hvps"),
}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "medbench": __version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    info["monai"] = monai.__version__
    return info


def _run_part(part: str, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """One part's result and its text, from the command line's arguments."""
    reps = {"repetitions": args.repetitions, "min_seconds": args.min_seconds}
    small = {"image_size": args.image_size or 64, "batch_size": args.batch_size or 32}
    if part == "data":
        result = bench_data(**reps)
        return result, render_data(result)
    if part == "optim":
        result = bench_optim(model=args.model, device=args.device, **small, **reps)
        return result, render_optim(result)
    if part == "train":
        result = bench_train(model=args.model, device=args.device, **small, **reps)
        return result, render_train(result)
    if part == "scale":
        result = bench_scale(
            n=args.n or 2405,
            sizes=args.sizes,
            image_size=args.image_size or 256,
            batch_size=args.batch_size or 32,
            **reps,
        )
        return result, render_scale(result)
    if part == "packing":
        result = bench_packing(
            jobs_per_device=args.jobs_per_device,
            repetitions=args.repetitions,
            epochs=args.epochs or 8,  # the demo's
        )
        return result, render_packing(result)
    if part == "paper":
        result = bench_paper(
            models=args.models,
            optimizers=args.optimizers,
            n=args.n or 2405,
            sizes=args.sizes,
            image_size=args.image_size,
            batch_size=args.batch_size,
            epochs=args.epochs or 5,
            device=args.device,
            jobs=tuple(args.jobs) if args.jobs else None,
            expected_epochs=args.expected_epochs,
        )
        return result, render_paper(result)
    result = bench_demo()
    return result, render_demo(result)


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run one part (or all) from the command line's arguments; write results under ``args.out``."""
    parts = ALL if args.part == "all" else (args.part,)
    out: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for part in parts:
        result, text = _run_part(part, args)
        print(text, flush=True)
        out.update({key: result[key] for key in HEADLINES.get(part, ()) if key in result})
        out[part] = result
        out.setdefault("texts", {})[part] = text
    write_results(out, Path(args.out))
    return out


def write_results(out: dict[str, Any], folder: Path) -> None:
    """Merge into an existing bench.json so that parts run separately end up in one file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench.json"
    merged: dict[str, Any] = {}
    if path.exists():
        try:
            merged = json.loads(path.read_text())
        except json.JSONDecodeError:
            merged = {}
    texts = {**merged.get("texts", {}), **out.get("texts", {})}
    merged.update(out)
    merged["texts"] = texts
    path.write_text(json.dumps(merged, indent=2, default=_jsonable) + "\n")
    m = merged["machine"]
    lines = [
        "# medbench bench",
        "",
        f"{merged['date']} · {m['processor']} · {m['cpus']} CPUs · torch {m['torch']} · "
        f"{m['cuda'] or 'no GPU'} · medbench {m['medbench']}",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    for key in (k for keys in HEADLINES.values() for k in keys):
        if key in merged:
            lines.append(f"| `{key}` | {_cell(merged[key])} |")
    for part in PARTS:
        if part in texts:
            lines += ["", f"## {part}", "", "```", texts[part], "```"]
    lines.append("")
    (folder / "bench.md").write_text("\n".join(lines))


def _cell(value: Any) -> str:
    """A headline figure: a number, or a mapping of named numbers."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
