"""The demo's CPU code path: capped at AVX2 on x86-64-v3 CPUs, left alone elsewhere."""

import subprocess
import sys

import pytest

from medbench.cpu_paths import PINNED, has_x86_v3, pin_x86_v3

SKYLAKE_X = "processor\t: 0\nflags\t\t: fpu sse4_1 sse4_2 avx avx2 fma avx512f avx512bw\n"
SANDY_BRIDGE = "processor\t: 0\nflags\t\t: fpu sse4_1 sse4_2 avx\n"


def test_x86_v3_needs_avx2_and_fma():
    assert has_x86_v3(SKYLAKE_X)
    assert not has_x86_v3(SANDY_BRIDGE)
    assert not has_x86_v3("flags\t: avx2\n")  # no FMA
    assert not has_x86_v3("Features\t: fp asimd\n")  # an ARM cpuinfo


def test_pin_sets_both_caps_and_keeps_what_the_user_set():
    env = {}
    assert pin_x86_v3(env, SKYLAKE_X) and env == PINNED
    env = {"ATEN_CPU_CAPABILITY": "default"}
    pin_x86_v3(env, SKYLAKE_X)
    assert env == {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    env = {}
    assert not pin_x86_v3(env, SANDY_BRIDGE) and env == {}


@pytest.mark.subprocess
@pytest.mark.skipif(not has_x86_v3(), reason="needs an x86-64 CPU with AVX2 and FMA")
def test_the_cap_reaches_torch_when_set_before_its_import():
    code = (
        "import os; from medbench.cpu_paths import pin_x86_v3; "
        "[os.environ.pop(k, None) for k in ('ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA')]; "
        "pin_x86_v3(); import torch; print(torch.backends.cpu.get_cpu_capability())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "AVX2"
