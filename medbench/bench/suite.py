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

import torch

from medbench import __version__

PARTS = ("data", "optim", "train", "demo")
#: The figures each part contributes to the top of bench.json and bench.md.
HEADLINES = {
    "data": ("data_speedup_later_epochs",),
    "train": ("data_wait_fraction", "sam_over_adam_epoch_time", "gcsam_over_adam_epoch_time"),
    "demo": ("demo_wall_s",),
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
    try:
        import monai

        info["monai"] = monai.__version__
    except ImportError:  # pragma: no cover - a dependency
        pass
    return info


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run one part (or all) from the command line's arguments; write results under ``args.out``."""
    parts = PARTS if args.part == "all" else (args.part,)
    out: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for part in parts:
        if part == "data":
            from medbench.bench.data import bench_data, render_data

            result = bench_data()
            text = render_data(result)
        elif part == "optim":
            from medbench.bench.optim import bench_optim, render_optim

            result = bench_optim(
                model=args.model,
                image_size=args.image_size,
                batch_size=args.batch_size,
                steps=args.steps,
                device=args.device,
            )
            text = render_optim(result)
        elif part == "train":
            from medbench.bench.train import bench_train, render_train

            result = bench_train(
                model=args.model,
                image_size=args.image_size,
                batch_size=args.batch_size,
                device=args.device,
            )
            text = render_train(result)
        else:
            from medbench.bench.demo import bench_demo, render_demo

            result = bench_demo()
            text = render_demo(result)
        print(text, flush=True)
        out.update({key: result[key] for key in HEADLINES.get(part, ())})
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
            lines.append(f"| `{key}` | {merged[key]:.3f} |")
    for part in PARTS:
        if part in texts:
            lines += ["", f"## {part}", "", "```", texts[part], "```"]
    lines.append("")
    (folder / "bench.md").write_text("\n".join(lines))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
