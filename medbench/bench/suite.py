"""Entry point of ``medbench bench``: runs the asked-for part and prints its table."""

from __future__ import annotations

import argparse
from typing import Any

from medbench.errors import MedbenchError


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run one benchmark part from the command line's arguments; returns its result."""
    if args.part != "optim":
        raise MedbenchError(f"bench part {args.part} is not available yet")
    from medbench.bench.optim import bench_optim, render_optim

    result = bench_optim(
        model=args.model,
        image_size=args.image_size,
        batch_size=args.batch_size,
        steps=args.steps,
        device=args.device,
    )
    print(render_optim(result))
    return result
