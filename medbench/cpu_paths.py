"""One CPU code path for the demo, so that its metrics do not depend on which x86 CPU runs it.

PyTorch picks its vectorised kernels (ATen) and oneDNN's convolutions by the CPU's instruction
set: on this project's machines the demo's per-fold test AUC moved by up to 0.016 and its
accuracy by up to 0.17 between AVX-512, AVX2 and SSE4.1 paths, on byte-identical data. Capping
both at AVX2 (x86-64-v3, every x86 CPU since about 2015) gives one path on all of them, at about
1.2-1.35x the time per training step of AVX-512. The variables must be set before torch is
imported (spawned workers inherit them); ones the user set are kept.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: What :func:`pin_x86_v3` sets, unless already set.
PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def has_x86_v3(cpuinfo: str | None = None) -> bool:
    """Whether this is an x86-64 CPU with AVX2 and FMA (Linux's ``/proc/cpuinfo`` flags)."""
    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return False
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return {"avx2", "fma"} <= flags
    return False


def pin_x86_v3(environ: dict[str, str] | None = None, cpuinfo: str | None = None) -> bool:
    """Cap ATen and oneDNN at AVX2 where the CPU has it; returns whether the cap applies.

    Elsewhere (ARM, an older x86, another OS) nothing is set: those CPUs have their own paths,
    and the README says which numbers then move."""
    env = os.environ if environ is None else environ
    if not has_x86_v3(cpuinfo):
        return False
    for key, value in PINNED.items():
        env.setdefault(key, value)
    return True
