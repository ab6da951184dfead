"""A synthetic twin of the GDPH&SYSUCC breast-ultrasound release, in its exact on-disk layout.

The real data cannot be downloaded or redistributed, so every code path that serves it (layout
detection, the xlsx sheet, reader BI-RADS values, folds, image modes, near-duplicate audit) is
exercised on this twin instead, and the demo runs anywhere. The images are B-mode-like
(speckle, depth attenuation, a bright skin layer, breast tissue layers) with a hypoechoic
lesion whose BI-RADS-like morphology depends on a latent malignancy score. Benign and malignant
scores overlap on purpose, so the task is learnable but not trivial (a small CNN at 64x64 reaches
a test AUC near 0.9, never 1.0).

The layout (sheet file, worksheet, columns, site folders, image names) is the one the reader
reads, ``medbench.data.read.layouts.gdph_sysucc``; only the data are drawn here.

Everything is drawn from ``numpy.random`` generators seeded by ``(seed, image index)``, so the
same ``(n, seed)`` writes the same bytes, whatever order the images are rendered in.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import uniform_filter1d

from medbench.data.pixels.images import decode_workers
from medbench.data.read.labels import LABEL_NAMES
from medbench.data.read.layouts.gdph_sysucc import COLUMNS, SHEET_FILE, SITES, WORKSHEET, image_id
from medbench.data.synth import portable_math as pm
from medbench.errors import DataError
from medbench.optional import lazy_import
from medbench.paths import atomic_folder

openpyxl = lazy_import("openpyxl")  # only writing the sheet needs it (a tenth of a second)

#: Bumped whenever the same (n, seed) would write different files. Version 2: transcendental
#: functions from medbench.data.synth.portable_math, so the bytes no longer depend on the CPU.
GENERATOR_VERSION = 2
MARKER = ".medbench-synth.json"
N_FOLDS = 5
MIN_N = 20
#: Image counts of the real release by (site, label); the generator keeps these proportions.
REAL_COUNTS = {
    ("SYSUCC", "benign"): 443,
    ("SYSUCC", "malignant"): 1116,
    ("GDPH", "benign"): 443,
    ("GDPH", "malignant"): 403,
}
#: The categories the release's readers use, from least to most suspicious.
READER_CATEGORIES = ("2", "3", "4a", "4b", "4c", "5")

# Latent malignancy score s ~ N(+MU, 1) for malignant, N(-MU, 1) for benign: the overlap sets
# how hard the task is. Morphology features follow sigmoid(KAPPA * s) plus per-feature noise.
MU = 1.45
KAPPA = 1.6
FEATURE_NOISE = 0.15
# Readers see the same latent score with a shared and a personal error; the cut points give a
# sensitivity near 0.9 and a specificity near 0.65 at ">= 4a" (as radiologists on BUS).
READER_SHARED_SD = 0.9
READER_OWN_SD = 1.0
BIRADS_CUTS = (-2.2, -0.7, 0.3, 1.1, 2.0)  # 2|3, 3|4a, 4a|4b, 4b|4c, 4c|5
UPPERCASE_SHARE = 0.2  # share of 4a/4b/4c typed as 4A/4B/4C

# Image modes and sizes per site: GDPH mostly 8-bit grayscale, SYSUCC mostly RGB, a few others.
SITE_MODES = {
    "GDPH": (("L", 0.86), ("RGB", 0.06), ("P", 0.04), ("I;16", 0.04)),
    "SYSUCC": (("RGB", 0.88), ("RGBA", 0.06), ("L", 0.06)),
}
SITE_SIZES = {  # (height range, width range) in pixels
    "GDPH": ((400, 520), (500, 650)),
    "SYSUCC": ((400, 600), (420, 600)),
}


@dataclass(frozen=True)
class SizeProfile:
    """Image sizes of a generation: per site, (height range, width range) in pixels, and the
    factor between the output and the resolution the scan is simulated at (speckle grains span
    about ``work_scale`` output pixels)."""

    site_sizes: dict[str, tuple[tuple[int, int], tuple[int, int]]]
    work_scale: int


#: ``default``: small frames (400-650 px a side), quick to write and to preprocess; the demo and
#: the tests use it. ``release``: the real release's spread, roughly 500-1,000 px a side, for
#: full-scale timing (``medbench bench scale``); simulated at a quarter of the output resolution,
#: so generation costs about the same per image and the grains span 4 output pixels.
SIZE_PROFILES = {
    "default": SizeProfile(SITE_SIZES, 2),
    "release": SizeProfile(
        {"GDPH": ((500, 780), (560, 1000)), "SYSUCC": ((520, 900), (600, 1000))}, 4
    ),
}
NEAR_DUPLICATE_SHARE = 0.015
CONFLICTING_DUPLICATES = 2


@dataclass(frozen=True)
class NearDuplicate:
    """A planted near-duplicate: ``copy`` is a re-saved, slightly changed ``original``."""

    original: str
    copy: str
    same_label: bool
    crosses_folds: bool


@dataclass
class SynthSummary:
    """What :func:`generate` wrote (or found already written) in ``root``."""

    root: Path
    n: int
    seed: int
    #: (site, label name, fold) -> number of images
    counts: dict[tuple[str, str, int], int]
    sheet: Path
    images: list[Path]
    near_duplicates: list[NearDuplicate] = field(default_factory=list)
    reused: bool = False
    seconds: float = 0.0

    @property
    def paths(self) -> list[Path]:
        """Every file written: the sheet then the images."""
        return [self.sheet, *self.images]

    def by_site_label(self) -> dict[str, dict[str, int]]:
        out = {site: dict.fromkeys(LABEL_NAMES.values(), 0) for site in SITES}
        for (site, label, _), k in self.counts.items():
            out[site][label] += k
        return out

    def by_label(self) -> dict[str, int]:
        out = dict.fromkeys(LABEL_NAMES.values(), 0)
        for (_, label, _), k in self.counts.items():
            out[label] += k
        return out

    def by_fold(self) -> dict[int, int]:
        out = dict.fromkeys(range(1, N_FOLDS + 1), 0)
        for (_, _, fold), k in self.counts.items():
            out[fold] += k
        return out

    def __str__(self) -> str:
        lab = self.by_label()
        how = "found (same n and seed, not regenerated)" if self.reused else "written"
        lines = [
            f"synthetic BUS dataset {how}: {self.root}",
            f"  {self.n} images: {lab['benign']} benign / {lab['malignant']} malignant (seed {self.seed})",
        ]
        for site, c in self.by_site_label().items():
            lines.append(f"  {site}: {c['benign']} benign, {c['malignant']} malignant")
        folds = ", ".join(f"{k}: {v}" for k, v in self.by_fold().items())
        lines.append(f"  folds {folds}")
        dups = self.near_duplicates
        if dups:
            conflict = sum(not d.same_label for d in dups)
            cross = sum(d.crosses_folds for d in dups)
            pairs = ", ".join(f"{d.copy}~{d.original}" for d in dups)
            lines.append(
                f"  near-duplicates planted: {len(dups)} ({conflict} with conflicting labels, "
                f"{cross} crossing folds): {pairs}"
            )
        lines.append(f"  sheet: {self.sheet}")
        if not self.reused:
            lines.append(f"  took {self.seconds:.1f} s")
        return "\n".join(lines)


@dataclass
class _Case:
    """One image slot of the plan."""

    index: int
    site: str
    label: int
    number: int
    fold: int = 0
    score: float = 0.0
    birads: tuple[object, object] = ("", "")
    source: int | None = None  # index of the image this one is a near-duplicate of

    @property
    def id(self) -> str:
        return image_id(self.label, self.number)


# ----------------------------------------------------------------------------- the plan


def site_label_counts(n: int) -> dict[tuple[str, str], int]:
    """Split ``n`` images over (site, label) in the real release's proportions (largest remainder)."""
    if n < MIN_N:
        raise DataError(
            f"synthetic BUS: n={n} is too small; need at least {MIN_N} images so that every "
            f"site and label is present and each of the {N_FOLDS} folds holds both classes"
        )
    total = sum(REAL_COUNTS.values())
    exact = {key: n * c / total for key, c in REAL_COUNTS.items()}
    counts = {key: int(v) for key, v in exact.items()}
    order = sorted(exact, key=lambda key: -(exact[key] - counts[key]))  # stable on ties
    for key in order[: n - sum(counts.values())]:
        counts[key] += 1
    return counts


def _plan(n: int, seed: int) -> tuple[list[_Case], list[NearDuplicate]]:
    rng = np.random.default_rng([seed, 0])
    counts = site_label_counts(n)
    cases: list[_Case] = []
    for label, name in LABEL_NAMES.items():
        number = 0
        for site in SITES:
            for _ in range(counts[(site, name)]):
                cases.append(_Case(len(cases), site, label, number))
                number += 1
    _assign_folds(cases, rng)
    for c in cases:
        c.score = float(rng.normal(MU if c.label else -MU, 1.0))
    dups = _plant_duplicates(cases, rng)
    for c in cases:
        if c.source is not None:  # the readers see the same picture again
            c.score = cases[c.source].score
    _assign_birads(cases, rng)
    return cases, dups


def _assign_folds(cases: list[_Case], rng: np.random.Generator) -> None:
    """Deal folds round-robin within each label, site by site, so folds are stratified by both."""
    for label in (0, 1):
        start = int(rng.integers(N_FOLDS))
        i = 0
        for site in SITES:
            group = [c for c in cases if c.label == label and c.site == site]
            for j in rng.permutation(len(group)):
                group[j].fold = (start + i) % N_FOLDS + 1
                i += 1


def _plant_duplicates(cases: list[_Case], rng: np.random.Generator) -> list[NearDuplicate]:
    """Turn a few slots into re-saved copies of other images of the same site.

    Most copies keep the label; ``CONFLICTING_DUPLICATES`` carry the other label (as in the real
    release), and about two thirds sit in a different fold from their original.
    """
    n_dup = max(CONFLICTING_DUPLICATES + 1, round(NEAR_DUPLICATE_SHARE * len(cases)))
    used: set[int] = set()
    dups: list[NearDuplicate] = []
    for k in range(n_dup):
        conflicting = k < CONFLICTING_DUPLICATES
        cross = k % 3 != 2
        # Mostly SYSUCC, as it holds most images; fall back on any site and label with room left.
        first = (SITES[int(rng.random() < 0.35)], int(rng.integers(2)))
        options = [first] + [(s, lab) for s in SITES for lab in (0, 1) if (s, lab) != first]
        for site, label in options:
            free = [c for c in cases if c.index not in used and c.site == site]
            originals = [c for c in free if c.label == label]
            want = 1 - label if conflicting else label
            targets = [c for c in free if c.label == want]
            if originals and len(targets) > (want == label):
                break
        else:  # cannot happen for n >= MIN_N; kept as a guard
            break
        orig = originals[int(rng.integers(len(originals)))]
        targets = [c for c in targets if c is not orig]
        preferred = [c for c in targets if (c.fold != orig.fold) == cross] or targets
        copy = preferred[int(rng.integers(len(preferred)))]
        copy.source = orig.index
        used |= {orig.index, copy.index}
        dups.append(NearDuplicate(orig.id, copy.id, not conflicting, copy.fold != orig.fold))
    return dups


def _assign_birads(cases: list[_Case], rng: np.random.Generator) -> None:
    """Two correlated readers: each sees the latent score through a shared and an own error."""
    cuts = np.asarray(BIRADS_CUTS)
    for c in cases:
        shared = rng.normal(0.0, READER_SHARED_SD)
        values = []
        for _ in range(2):
            r = c.score + shared + rng.normal(0.0, READER_OWN_SD)
            cat = READER_CATEGORIES[int(np.searchsorted(cuts, r))]
            upper = rng.random() < UPPERCASE_SHARE
            values.append(_as_excel(cat, upper))
        c.birads = (values[0], values[1])


def _as_excel(category: str, upper: bool) -> int | str:
    """Store a category as Excel sheets from radiologists do: 2, 3, 5 as numbers, 4x as text."""
    if category.isdigit():
        return int(category)
    return category.upper() if upper else category


# ----------------------------------------------------------------------------- rendering


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]):
    """Low-frequency noise (zero mean, unit-ish sd): a coarse grid upsampled bicubically."""
    grid = rng.standard_normal((max(cells[0], 2), max(cells[1], 2)), dtype=np.float32)
    img = Image.fromarray(grid).resize((shape[1], shape[0]), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + pm.exp(-x)))


def _features(score: float, rng: np.random.Generator) -> dict[str, float]:
    """BI-RADS-like morphology in [0, 1] (0 benign-looking, 1 malignant-looking), noisy per feature."""
    t = _sigmoid(KAPPA * score)
    names = ("shape", "margin", "spicules", "posterior", "echo")
    return {k: float(np.clip(t + rng.normal(0.0, FEATURE_NOISE), 0.0, 1.0)) for k in names}


def _mean(values: np.ndarray) -> float:
    """An exactly rounded mean (math.fsum): the same on every CPU, whatever NumPy's SIMD."""
    return math.fsum(values.astype(np.float64).tolist()) / values.size


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _tissue(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, float, float]:
    """Echogenicity of breast tissue: skin, subcutaneous fat, fibroglandular layer, muscle."""
    y = (np.arange(h, dtype=np.float32) / h)[:, None]
    wav = [_smooth_noise(rng, (1, w), (1, 5))[0] for _ in range(3)]
    skin = rng.uniform(0.03, 0.06)
    fat = rng.uniform(0.1, 0.32) + 0.05 * wav[0]
    gland = rng.uniform(0.62, 0.9) + 0.05 * wav[1]
    soft = 0.012
    is_fat = np.clip((y - fat) / soft, -1, 1) * 0.5 + 0.5  # 0 above fat line, 1 below
    is_deep = np.clip((y - gland) / soft, -1, 1) * 0.5 + 0.5
    lobules = _smooth_noise(rng, (h, w), (h // 22, w // 22))
    streaks = _smooth_noise(rng, (h, w), (h // 9, w // 40))
    fat_level = rng.uniform(0.4, 0.7) + 0.18 * lobules
    # Fibroglandular density varies over the breast: broad brighter and darker patches.
    patches = pm.exp(0.6 * _smooth_noise(rng, (h, w), (3, 5))).astype(np.float32)
    gland_level = (1.0 + 0.35 * streaks) * patches
    deep_level = 0.55 + 0.25 * pm.sin(y * rng.uniform(60, 90) + 0.8 * streaks).astype(np.float32)
    tissue = fat_level + is_fat * (gland_level - fat_level)
    tissue = tissue + is_deep * (deep_level - tissue)
    skin_band = pm.exp(-(((y - skin) / 0.012) ** 2)).astype(np.float32) * rng.uniform(1.5, 2.5)
    tissue = tissue + skin_band + 0.6 * (y < skin)
    return np.clip(tissue, 0.05, None), _mean(fat), _mean(gland)


def _lesion(
    rng: np.random.Generator, f: dict[str, float], h: int, w: int, fat: float, gland: float
):
    """The lesion's bounding box and, inside it, its soft mask, echogenic halo and capsule rim."""
    r0 = rng.uniform(0.09, 0.19) * w
    aspect = float(pm.exp(_lerp(pm.log(0.5), pm.log(1.35), f["shape"]) + rng.normal(0, 0.08)))
    a, b = r0 / np.sqrt(aspect), r0 * np.sqrt(aspect)  # horizontal, vertical semi-axes
    cy = rng.uniform(fat * h + b * 0.8, max(fat * h + b * 0.8 + 1, gland * h - b * 0.6))
    cx = rng.uniform(0.22, 0.78) * w
    tilt = rng.normal(0.0, 0.12 + 0.2 * f["shape"])

    theta = np.linspace(-np.pi, np.pi, 720, endpoint=False)
    radius = a * b / pm.hypot(b * pm.cos(theta - tilt), a * pm.sin(theta - tilt))
    wobble = np.zeros_like(theta)
    for k in range(2, 5):  # gentle lobulation, benign or not
        wobble += rng.uniform(0, 0.05) * pm.cos(k * theta + rng.uniform(0, 2 * np.pi))
    irregular = _lerp(0.0, 0.22, f["margin"])
    for k in range(4, 20):  # angular, microlobulated margins: a rough 1/k spectrum
        wobble += irregular / k * rng.normal() * pm.cos(k * theta + rng.uniform(0, 2 * np.pi))
    radius = radius * (1 + wobble)
    n_spic = int(round(_lerp(-8, 10, f["spicules"])))
    for _ in range(max(n_spic, 0)):
        at, width = rng.uniform(-np.pi, np.pi), rng.uniform(0.025, 0.06)
        d = np.abs(pm.wrap_angle(theta - at))
        radius = radius + r0 * rng.uniform(0.15, 0.5) * np.clip(1 - d / width, 0, 1) ** 2

    reach = int(radius.max() + 8)
    y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach, h)
    x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach, w)
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    rho = pm.hypot(yy, xx).astype(np.float32)
    idx = ((pm.atan2(yy, xx) + np.pi) * (720 / (2 * np.pi))).astype(np.int32) % 720
    dist = rho - radius.astype(np.float32)[idx]  # < 0 inside
    edge = _lerp(0.5, 2.5, f["margin"])
    inside = np.clip(0.5 - dist / (2 * edge), 0.0, 1.0)
    halo_w = _lerp(0.0, 5.0, f["margin"])
    halo = np.clip(1 - np.abs(dist - halo_w / 2) / max(halo_w, 0.5), 0, 1) * (halo_w > 1)
    rim = np.clip(1 - np.abs(dist) / 1.2, 0, 1) * _lerp(0.6, 0.0, f["margin"])
    box = (slice(y0, y1), slice(x0, x1))
    return box, inside, halo, rim


def _render(case: _Case, seed: int, sizes: SizeProfile = SIZE_PROFILES["default"]) -> np.ndarray:
    """One B-mode-like frame as an (H, W) uint8 array."""
    rng = np.random.default_rng([seed, 1, case.index])
    f = _features(case.score, rng)
    (h_lo, h_hi), (w_lo, w_hi) = sizes.site_sizes[case.site]
    height, width = int(rng.integers(h_lo, h_hi + 1)), int(rng.integers(w_lo, w_hi + 1))
    # Work at a lower resolution: speckle grains then span 2-3 output pixels (default), as on
    # real scanners.
    h, w = height // sizes.work_scale, width // sizes.work_scale
    top = int(rng.uniform(0.0, 0.1) * h)
    side = int(rng.uniform(0.0, 0.1) * w)
    fh, fw = h - top, w - 2 * side  # the imaging field inside the black frame

    img, fat, gland = _tissue(rng, fh, fw)
    box, inside, halo, rim = _lesion(rng, f, fh, fw, fat, gland)
    region = img[box]
    level = _lerp(0.16, 0.06, f["echo"]) * (
        1 + _lerp(0.1, 0.6, f["echo"]) * _smooth_noise(rng, inside.shape, (4, 4))
    )
    region = region * (1 - inside) + np.clip(level, 0.03, None) * inside
    region = region * (1 + 0.9 * halo + rim)
    img[box] = region

    # Posterior acoustic features: the tissue below the lesion, in its columns, is shadowed
    # (malignant-looking) or enhanced (benign-looking, e.g. cysts and fibroadenomas).
    shadow = _lerp(-0.6, 0.85, f["posterior"]) + rng.normal(0, 0.08)
    rows, cols = slice(box[0].start, fh), box[1]
    column = np.zeros((fh - rows.start, cols.stop - cols.start), dtype=np.float32)
    column[: inside.shape[0]] = inside
    below = np.maximum.accumulate(column, axis=0) * (1 - column)
    below = uniform_filter1d(below, size=max(int(0.25 * below.shape[1]), 3), axis=1)
    img[rows, cols] *= np.clip(1 - shadow * below, 0.08, None)

    y = (np.arange(fh, dtype=np.float32) / fh)[:, None]
    x = (np.arange(fw, dtype=np.float32) / fw)[None, :]
    # Depth attenuation, partly undone by the operator's time-gain-compensation sliders.
    tgc = pm.exp(0.3 * _smooth_noise(rng, (fh, 1), (5, 1))).astype(np.float32)
    lateral = (2 * x - 1) * (2 * x - 1)
    depth = pm.exp(-rng.uniform(0.7, 2.4) * y).astype(np.float32)
    attenuation = depth * tgc * (1 - 0.25 * lateral * lateral)
    img = img * attenuation

    sw = max(int(fw / 1.6), 2)  # laterally elongated speckle
    g = rng.standard_normal((2, fh, sw), dtype=np.float32)
    speckle = pm.hypot(g[0], g[1]).astype(np.float32) * np.float32(1 / 1.2533)  # Rayleigh
    speckle = np.asarray(Image.fromarray(speckle).resize((fw, fh), Image.BILINEAR))
    img = img * speckle

    dyn = rng.uniform(36, 46)  # display dynamic range in dB
    drop = rng.uniform(9, 14)  # dB below white for mean glandular echo
    db = 20 * pm.log10(img + 1e-4)
    field8 = np.clip((db + dyn - drop) * (255.0 / dyn), 0, 255).astype(np.uint8)

    frame = np.zeros((h, w), dtype=np.uint8)
    frame[top:, side : side + fw] = field8
    if side >= 4:  # depth scale ticks in the margin, as scanners draw them
        ticks = np.arange(top + 4, h, max(h // 12, 4))
        frame[ticks[:, None], np.arange(side - 3, side - 1)] = 200
    out = Image.fromarray(frame).resize((width, height), Image.BILINEAR)
    return np.asarray(out)


def _near_duplicate(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A re-saved copy: a slight crop (up to ~0.5% a side, as an export trims the frame), a
    brightness change and a little fresh noise; the audit's perceptual hash finds every one."""
    h, w = pixels.shape
    t, b = int(rng.integers(1, h // 200 + 2)), int(rng.integers(1, h // 200 + 2))
    le, ri = int(rng.integers(1, w // 200 + 2)), int(rng.integers(1, w // 200 + 2))
    crop = pixels[t : h - b, le : w - ri].astype(np.float32)
    crop = crop * rng.uniform(0.92, 1.08) + rng.uniform(-5, 5)
    crop += rng.normal(0, 2.0, crop.shape).astype(np.float32)
    return np.clip(crop, 0, 255).astype(np.uint8)


def _to_mode(gray: np.ndarray, mode: str, rng: np.random.Generator) -> Image.Image:
    """Store a grayscale frame in ``mode``, as scanners and exports do."""
    if mode == "L":
        return Image.fromarray(gray)
    if mode == "P":
        img = Image.frombytes("P", (gray.shape[1], gray.shape[0]), gray.tobytes())
        img.putpalette([v for i in range(256) for v in (i, i, i)])
        return img
    if mode == "I;16":
        return Image.fromarray(gray.astype(np.uint16) * 257)
    # A scanner's faint colour cast, applied by lookup tables (PIL's point is much faster).
    ramp = np.arange(256, dtype=np.float32)
    base = Image.fromarray(gray)
    bands = [
        base.point(np.clip(ramp * k, 0, 255).astype(np.uint8).tolist())
        for k in rng.uniform(0.96, 1.04, 3)
    ]
    if mode == "RGBA":
        bands.append(Image.new("L", base.size, 255))
    return Image.merge(mode, bands)


def _pick_mode(site: str, rng: np.random.Generator) -> str:
    modes, weights = zip(*SITE_MODES[site], strict=True)
    return modes[int(rng.choice(len(modes), p=np.asarray(weights) / sum(weights)))]


# ----------------------------------------------------------------------------- writing


def _write_sheet(path: Path, cases: list[_Case]) -> None:
    """The xlsx with fixed timestamps, so that its bytes depend on the data only."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = WORKSHEET
    ws.append(list(COLUMNS))
    for c in sorted(cases, key=lambda c: (c.label, c.number)):
        row = {
            "id": c.id,
            "birads_reader1": c.birads[0],
            "birads_reader2": c.birads[1],
            "fold": c.fold,
        }
        ws.append([row[role] for role in COLUMNS.values()])
    wb.properties.created = datetime(2023, 1, 1)
    buf = io.BytesIO()
    wb.save(buf)  # stamps the modification time into docProps/core.xml: replaced below
    buf.seek(0)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>2023-01-01T00:00:00Z\g<2>",
                    data,
                )
            entry = zipfile.ZipInfo(info.filename, date_time=(2023, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, data)


def _write_images(root: Path, cases: list[_Case], seed: int, sizes: SizeProfile) -> list[Path]:
    """Render and write every image, on worker threads (numpy and PNG encoding release the
    GIL); each image depends on its own seeded generators only, so the bytes are the same in
    any order. Originals first: a near-duplicate copies its original's pixels."""
    for site in SITES:
        (root / site).mkdir()
    pixels: dict[int, np.ndarray] = {}
    sources = {c.source for c in cases if c.source is not None}

    def write(c: _Case) -> Path:
        rng = np.random.default_rng([seed, 2, c.index])
        if c.source is None:
            gray = _render(c, seed, sizes)
            if c.index in sources:
                pixels[c.index] = gray
        else:
            gray = _near_duplicate(pixels[c.source], rng)
        path = root / c.site / f"{c.id}.png"
        _to_mode(gray, _pick_mode(c.site, rng), rng).save(path, compress_level=1)
        return path

    with ThreadPoolExecutor(decode_workers()) as pool:
        originals = list(pool.map(write, [c for c in cases if c.source is None]))
        copies = list(pool.map(write, [c for c in cases if c.source is not None]))
    return sorted(originals + copies)


def _counts(cases: list[_Case]) -> dict[tuple[str, str, int], int]:
    counts: dict[tuple[str, str, int], int] = {}
    for c in cases:
        key = (c.site, LABEL_NAMES[c.label], c.fold)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _marker(n: int, seed: int, counts, dups: list[NearDuplicate], sizes: str) -> dict:
    marker = {
        # the generator's name when the format was set, not its module now: the marker is one of
        # the generated files, whose bytes change only with GENERATOR_VERSION
        "generator": "medbench.data.synthetic",
        "version": GENERATOR_VERSION,
        "n": n,
        "seed": seed,
        "counts": [[s, label, f, k] for (s, label, f), k in counts.items()],
        "near_duplicates": [d.__dict__ for d in dups],
    }
    if sizes != "default":  # the default's marker keeps its bytes
        marker["sizes"] = sizes
    return marker


def _existing(root: Path, n: int, seed: int, sizes: str) -> SynthSummary | None:
    """The summary of a finished generation of (n, seed, sizes) in ``root``; None when ``root``
    is empty."""
    if not root.exists():
        return None
    if not root.is_dir():
        raise DataError(
            f"{root}: exists and is not a folder; choose a new folder for synthetic data"
        )
    if not any(root.iterdir()):
        return None
    try:
        meta = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DataError(
            f"{root}: folder is not empty and holds no synthetic BUS generation; "
            "choose a new or empty folder"
        ) from None
    found = (meta.get("version"), meta.get("n"), meta.get("seed"), meta.get("sizes", "default"))
    if found != (GENERATOR_VERSION, n, seed, sizes):
        raise DataError(
            f"{root}: folder already holds a synthetic BUS generation with n={found[1]}, "
            f"seed={found[2]}, sizes {found[3]}, generator version {found[0]} (asked: n={n}, "
            f"seed={seed}, sizes {sizes}, version {GENERATOR_VERSION}); delete it or choose "
            "another folder"
        )
    images = sorted(p for site in SITES for p in (root / site).glob("*.png"))
    sheet = root / SHEET_FILE
    if len(images) != n or not sheet.is_file():
        raise DataError(
            f"{root}: synthetic BUS generation is incomplete ({len(images)} of {n} images"
            f"{'' if sheet.is_file() else ', no ' + SHEET_FILE}); delete the folder and generate again"
        )
    counts = {(s, label, int(f)): int(k) for s, label, f, k in meta["counts"]}
    dups = [NearDuplicate(**d) for d in meta.get("near_duplicates", [])]
    return SynthSummary(root, n, seed, counts, sheet, images, dups, reused=True)


def generate(out: str | Path, n: int = 600, seed: int = 0, sizes: str = "default") -> SynthSummary:
    """Write ``n`` synthetic BUS images in the GDPH&SYSUCC layout into ``out``.

    The demo calls this on every run, so a folder holding this very generation is returned as
    is. Files are written in a sibling temporary folder, then renamed into place, so a crash
    never leaves half a dataset.

    Parameters
    ----------
    out : str or Path
        The dataset folder: new, empty, or holding this generation (same ``n`` and ``seed``).
    n : int, default 600
        Number of images, at least ``MIN_N``; split over sites and labels in the release's
        proportions.
    seed : int, default 0
        Seed of every draw (``>= 0``); the same ``(n, seed, sizes)`` writes the same bytes.
    sizes : {"default", "release"}
        Image sizes (:data:`SIZE_PROFILES`): ``default`` 400-650 px a side, ``release`` the
        real release's 500-1,000 px. Only the pixels change: labels, folds, readers and
        near-duplicates are the same for the same ``(n, seed)``.

    Returns
    -------
    SynthSummary
        What was written (or found): counts by site, label and fold, the sheet and image
        paths, and the planted near-duplicates.

    Raises
    ------
    DataError
        For ``n`` too small, a negative ``seed``, unknown ``sizes``, or an ``out`` that is a
        file, holds other files, another generation or an incomplete one.
    """
    start = time.perf_counter()
    root = Path(out).expanduser().resolve()  # a name even for "." (the temporary sibling needs one)
    n, seed = int(n), int(seed)
    if seed < 0:
        raise DataError(f"synthetic BUS: seed must be >= 0, got {seed}")
    if sizes not in SIZE_PROFILES:
        raise DataError(f"synthetic BUS: sizes {sizes!r} is not one of {', '.join(SIZE_PROFILES)}")
    site_label_counts(n)  # validates n before touching the disk
    found = _existing(root, n, seed, sizes)
    if found is not None:
        return found
    cases, dups = _plan(n, seed)
    counts = _counts(cases)

    def fill(tmp: Path) -> None:
        _write_images(tmp, cases, seed, SIZE_PROFILES[sizes])
        _write_sheet(tmp / SHEET_FILE, cases)
        marker = json.dumps(_marker(n, seed, counts, dups, sizes), indent=1, sort_keys=True)
        (tmp / MARKER).write_text(marker + "\n", encoding="utf-8")

    atomic_folder(root, fill, last=MARKER)  # an empty root (the working folder) keeps its inode
    images = sorted(p for site in SITES for p in (root / site).glob("*.png"))
    return SynthSummary(
        root, n, seed, counts, root / SHEET_FILE, images, dups, seconds=time.perf_counter() - start
    )
