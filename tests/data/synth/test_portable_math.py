import numpy as np
import pytest

from medbench.data.synth import portable_math as pm

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("ours", "numpy", "x"),
    [
        (pm.exp, np.exp, RNG.uniform(-700, 700, 20000)),
        (pm.log, np.log, np.exp(RNG.uniform(-700, 700, 20000))),
        (pm.log10, np.log10, RNG.uniform(1e-6, 1e3, 20000)),
        (pm.sin, np.sin, RNG.uniform(-100, 100, 20000)),
        (pm.cos, np.cos, RNG.uniform(-100, 100, 20000)),
    ],
)
def test_agrees_with_numpy_to_float64_rounding(ours, numpy, x):
    np.testing.assert_allclose(ours(x), numpy(x), rtol=2e-14, atol=1e-15)


def test_atan2_hypot_and_wrap_on_every_quadrant_and_axis():
    y = np.concatenate([RNG.uniform(-5, 5, 20000), [0.0, 0.0, 1.0, -1.0, 0.0]])
    x = np.concatenate([RNG.uniform(-5, 5, 20000), [1.0, -1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(pm.atan2(y, x), np.arctan2(y, x), rtol=0, atol=2e-15)
    np.testing.assert_allclose(pm.hypot(y, x), np.hypot(y, x), rtol=1e-15)
    z = RNG.uniform(-20, 20, 1000)
    np.testing.assert_allclose(
        np.abs(pm.wrap_angle(z)), np.abs(np.angle(np.exp(1j * z))), rtol=0, atol=1e-12
    )


def test_scalars_and_float32_come_back_as_float64():
    assert pm.exp(0.0) == 1.0 and pm.log(1.0) == 0.0 and pm.cos(0.0) == 1.0
    assert pm.exp(np.float32(1.0)).dtype == np.float64
