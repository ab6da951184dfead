"""Elementwise exp, log, sin, cos, atan2 that give the same bits on every CPU.

NumPy picks SIMD implementations of its transcendental functions by CPU class (AVX2, AVX-512,
...), and they differ in the last bits; so did the synthetic images built from them, and with
the images the dataset fingerprint and the demo's numbers. These functions use only
IEEE-754 operations that every implementation rounds the same way (+, -, *, /, sqrt, floor,
frexp, ldexp) on float64, with range reduction and polynomials accurate to about 1e-15
relative: more than the synthetic images need, and identical everywhere.

Inputs are anything NumPy turns into float64 arrays; outputs are float64 arrays (0-d for
scalars). Arguments are assumed finite and of moderate size (|x| < 1e6 for sin/cos).
"""

from __future__ import annotations

import numpy as np

_LN2_HI = 6.93147180369123816490e-01  # ln 2, upper bits: k * _LN2_HI is exact for |k| < 2**20
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_LN10 = 2.302585092994045684
# pi/2 in three parts (Cody-Waite), so that x - k * pi/2 is accurate for |k| up to ~1e6
_PIO2_1 = 1.57079632673412561417e00
_PIO2_2 = 6.07710050650619224932e-11
_PIO2_3 = 2.02226624879595063154e-21
_2_OVER_PI = 6.36619772367581382433e-01
PI = 3.141592653589793


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _horner(x: np.ndarray, coefficients) -> np.ndarray:
    """c0 + c1 x + c2 x^2 + ..., coefficients from c0 up."""
    out = np.full_like(x, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        out = out * x + c
    return out


_EXP_TAYLOR = [1.0 / np.prod(np.arange(1, n + 1, dtype=np.float64)) for n in range(15)]


def exp(x) -> np.ndarray:
    """e**x: x = k ln2 + r with |r| <= ln2 / 2, a degree-14 Taylor polynomial, then 2**k."""
    x = np.clip(_f64(x), -745.0, 709.0)
    k = np.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    return np.ldexp(_horner(r, _EXP_TAYLOR), k.astype(np.int64))


_ATANH_ODD = [1.0 / (2 * n + 1) for n in range(12)]  # atanh(s)/s = sum s^(2n) / (2n + 1)


def log(x) -> np.ndarray:
    """Natural logarithm of x > 0: x = m 2**e with m in [sqrt(1/2), sqrt(2)), then
    log m = 2 atanh((m - 1) / (m + 1)) as an odd series in s^2 <= 0.03."""
    x = _f64(x)
    m, e = np.frexp(x)
    small = m < 0.7071067811865476
    m = np.where(small, m * 2.0, m)
    e = np.where(small, e - 1, e).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    log_m = 2.0 * s * _horner(s * s, _ATANH_ODD)
    return e * _LN2_HI + (e * _LN2_LO + log_m)


def log10(x) -> np.ndarray:
    return log(x) / _LN10


_SIN_TAYLOR = [(-1.0) ** n / np.prod(np.arange(1, 2 * n + 2, dtype=np.float64)) for n in range(10)]
_COS_TAYLOR = [(-1.0) ** n / np.prod(np.arange(1, 2 * n + 1, dtype=np.float64)) for n in range(10)]


def _reduce(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x = q pi/2 + r, |r| <= pi/4; returns (r, q mod 4)."""
    q = np.floor(x * _2_OVER_PI + 0.5)
    r = ((x - q * _PIO2_1) - q * _PIO2_2) - q * _PIO2_3
    return r, np.mod(q, 4.0)


def _sin_cos(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r2 = r * r
    return r * _horner(r2, _SIN_TAYLOR), _horner(r2, _COS_TAYLOR)


def sin(x) -> np.ndarray:
    r, q = _reduce(_f64(x))
    s, c = _sin_cos(r)
    return np.select([q == 0, q == 1, q == 2], [s, c, -s], -c)


def cos(x) -> np.ndarray:
    r, q = _reduce(_f64(x))
    s, c = _sin_cos(r)
    return np.select([q == 0, q == 1, q == 2], [c, -s, -c], s)


_ATAN_ODD = [(-1.0) ** n / (2 * n + 1) for n in range(12)]  # atan(u)/u, |u| <= tan(pi/16)


def _atan(t: np.ndarray) -> np.ndarray:
    """atan(t): halve the angle twice (atan t = 2 atan(t / (1 + sqrt(1 + t^2)))) after folding
    |t| > 1 onto 1/|t|, so the series sees |u| <= tan(pi/16) ~ 0.2."""
    a = np.abs(t)
    big = a > 1.0
    u = np.where(big, 1.0 / np.where(big, a, 1.0), a)
    for _ in range(2):
        u = u / (1.0 + np.sqrt(1.0 + u * u))
    angle = 4.0 * u * _horner(u * u, _ATAN_ODD)
    angle = np.where(big, PI / 2 - angle, angle)
    return np.copysign(angle, t)


def atan2(y, x) -> np.ndarray:
    """Angle of (x, y) in (-pi, pi]; 0 at the origin."""
    y, x = np.broadcast_arrays(_f64(y), _f64(x))
    safe_x = np.where(x == 0.0, 1.0, x)
    base = _atan(y / safe_x)
    out = np.where(x > 0.0, base, np.where(y >= 0.0, base + PI, base - PI))
    on_axis = np.where(y > 0.0, PI / 2, np.where(y < 0.0, -PI / 2, 0.0))
    return np.where(x == 0.0, on_axis, out)


def hypot(a, b) -> np.ndarray:
    """sqrt(a^2 + b^2) (no overflow guard: the generator's values are small)."""
    a, b = _f64(a), _f64(b)
    return np.sqrt(a * a + b * b)


def wrap_angle(x) -> np.ndarray:
    """x wrapped into [-pi, pi)."""
    return np.mod(_f64(x) + PI, 2 * PI) - PI
