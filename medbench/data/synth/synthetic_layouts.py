"""Synthetic twins of BUS-BRA and BUSI in their exact on-disk layouts (``medbench data synth
--layout busbra|busi``), so that their readers, patient-aware folds and external validation run
anywhere without the real data; and an example of the flat layout (``--layout flat``), the one
for your own data: an ``images/`` folder and ``labels.csv`` with the optional site, patient and
reader columns.

The images come from the B-mode renderer of :mod:`medbench.data.synth.synthetic` (the GDPH&SYSUCC
twin's): a latent malignancy score drawn per lesion sets its morphology. Only the layouts are
new here: BUS-BRA's ``bus_data.csv``, patient-level ``5-fold-cv.csv``/``10-fold-cv.csv``,
``Images/`` and ``Masks/``, several images per patient, four scanners and one reader's BI-RADS
category; BUSI's ``Dataset_BUSI_with_GT/{benign,malignant,normal}/`` with ``_mask`` (and some
``_mask_1``) files beside the images and a few planted near-duplicates; the flat layout's
``images/benign_0001.png``... with ``labels.csv`` (file name, site, patient, one reader), no
folds (``run`` draws them, by patient).

What the renderer does not expose is left honest rather than invented: masks are empty
(all-zero) placeholders of the image's size, BUS-BRA's ``BBOX`` is empty, and BUSI's "normal"
images are rendered as the most benign-looking lesions (the renderer always draws one).
Everything is drawn from generators seeded by ``(seed, layout, index)``: the same arguments
write the same files.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from medbench.data.read.labels import LABEL_NAMES
from medbench.data.read.layouts import busbra, busi
from medbench.data.synth import synthetic
from medbench.errors import DataError
from medbench.paths import atomic_folder

GENERATOR_VERSION = 1
#: BUS-BRA: images per patient (1, 2, 3) and their shares; the release has 1,875 / 1,064 = 1.76.
IMAGES_PER_PATIENT = ((1, 0.45), (2, 0.34), (3, 0.21))
BUSBRA_MALIGNANT_SHARE = 607 / 1875
DEVICES = ("scanner-1", "scanner-2", "scanner-3", "scanner-4")  # synthetic names
HISTOLOGY = {0: ("fibroadenoma", "cyst", "fibrocystic change"), 1: ("invasive ductal carcinoma",)}
#: BUS-BRA's BI-RADS categories from the latent score (cut points 2|3, 3|4, 4|5).
BUSBRA_CUTS = (-1.6, -0.2, 1.4)
#: BUSI's class counts (437 benign, 210 malignant, 133 normal) and share of second masks.
BUSI_COUNTS = {"benign": 437, "malignant": 210, "normal": 133}
SECOND_MASK_SHARE = 0.03
BUSI_DUPLICATE_SHARE = 0.04
#: Score of BUSI's "normal" images: the most benign-looking end of the renderer.
NORMAL_SCORE = -4.0
MIN_N = {"busbra": 60, "busi": 30, "flat": 40}
#: The flat example's two sites and its sheet.
FLAT_SITES = ("site-A", "site-B")
FLAT_SHEET = "labels.csv"
FLAT_FOLDER = "images"


@dataclass
class LayoutSummary:
    """What :func:`generate_layout` wrote (or found already written)."""

    root: Path
    layout: str
    n: int
    seed: int
    counts: dict[str, int]  # images by class (BUSI's normal included)
    n_patients: int | None = None
    near_duplicates: list[tuple[str, str]] = field(default_factory=list)
    reused: bool = False
    seconds: float = 0.0

    def __str__(self) -> str:
        how = "found (same n and seed, not regenerated)" if self.reused else "written"
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items())
        lines = [f"synthetic {self.layout} dataset {how}: {self.root}", f"  {counts}"]
        if self.n_patients is not None and self.layout == "flat":
            lines.append(f"  {self.n_patients} patients at 2 sites; no folds: run draws them")
        elif self.n_patients is not None:
            lines.append(f"  {self.n_patients} patients, 5- and 10-fold files by patient")
        if self.near_duplicates:
            pairs = ", ".join(f"{a}~{b}" for a, b in self.near_duplicates)
            lines.append(f"  near-duplicates planted: {pairs}")
        if not self.reused:
            lines.append(f"  took {self.seconds:.1f} s")
        return "\n".join(lines)


def _render(index: int, label: int, score: float, seed: int, layout: str) -> np.ndarray:
    """One B-mode frame (uint8, H x W) from the GDPH&SYSUCC twin's renderer; its size profile
    alternates between the twin's two sites."""
    case = synthetic._Case(index, synthetic.SITES[index % 2], label, index, score=score)
    return synthetic._render(case, seed + 1_000_003 * (1 + GENERATORS_ORDER.index(layout)))


def _score(rng: np.random.Generator, label: int) -> float:
    return float(rng.normal(synthetic.MU if label else -synthetic.MU, 1.0))


def _save(path: Path, pixels: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pixels)
    (img.convert(mode) if mode != "L" else img).save(path, compress_level=1)


def _mask(path: Path, pixels: np.ndarray) -> None:
    _save(path, np.zeros_like(pixels))


# -- BUS-BRA ---------------------------------------------------------------------------------


def _write_busbra(root: Path, n: int, seed: int) -> LayoutSummary:
    rng = np.random.default_rng([seed, 7, 1])
    sizes, shares = zip(*IMAGES_PER_PATIENT, strict=True)
    per_patient: list[int] = []
    while sum(per_patient) < n:
        per_patient.append(int(rng.choice(sizes, p=shares)))
    per_patient[-1] -= sum(per_patient) - n
    n_patients = len(per_patient)
    n_malignant = min(max(10, round(BUSBRA_MALIGNANT_SHARE * n_patients)), n_patients - 10)
    labels = np.r_[np.zeros(n_patients - n_malignant, int), np.ones(n_malignant, int)]
    rng.shuffle(labels)
    folds = {k: _patient_folds(labels, k, rng) for k in (5, 10)}
    (root / busbra.IMAGE_FOLDER).mkdir(parents=True)
    (root / busbra.MASK_FOLDER).mkdir()
    rows, index = [], 0
    for case, (count, label) in enumerate(zip(per_patient, labels, strict=True), start=1):
        side = "left" if rng.random() < 0.5 else "right"
        device = DEVICES[int(rng.integers(len(DEVICES)))]
        score = _score(rng, label)  # one lesion per patient, seen in each of its images
        histology = HISTOLOGY[label][int(rng.integers(len(HISTOLOGY[label])))]
        reading = score + rng.normal(0.0, 1.0)
        category = 2 + int(np.searchsorted(BUSBRA_CUTS, reading))
        for _ in range(count):
            index += 1
            id_ = f"bus_{index:04d}-{side[0]}"
            pixels = _render(index, int(label), score + rng.normal(0, 0.2), seed, "busbra")
            _save(root / busbra.IMAGE_FOLDER / f"{id_}.png", pixels)
            _mask(root / busbra.MASK_FOLDER / f"mask_{index:04d}-{side[0]}.png", pixels)
            rows.append(
                {
                    "ID": id_,
                    "Case": case,
                    "Histology": histology,
                    "Pathology": LABEL_NAMES[int(label)],
                    "BIRADS": category,
                    "Device": device,
                    "Height": pixels.shape[0],
                    "Width": pixels.shape[1],
                    "Side": side,
                    "BBOX": "",
                    "kFold5": folds[5][case - 1],
                    "kFold10": folds[10][case - 1],
                }
            )
    _write_csv(root / busbra.CLINICAL_FILE, rows, list(busbra.RELEASE_COLUMNS))
    for k, file in zip((5, 10), busbra.FOLD_FILES, strict=True):
        fold_rows = [{**r, "kFold": r[f"kFold{k}"]} for r in rows]
        _write_csv(root / file, fold_rows, list(busbra.FOLD_COLUMNS))
    counts = {name: sum(r["Pathology"] == name for r in rows) for name in LABEL_NAMES.values()}
    return LayoutSummary(root, "busbra", n, seed, counts, n_patients=n_patients)


def _patient_folds(labels: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """1-based fold of each patient, dealt round-robin within each label (stratified)."""
    folds = np.zeros(len(labels), dtype=int)
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = int(rng.integers(k))
        folds[members] = (start + np.arange(len(members))) % k + 1
    return folds.tolist()


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


# -- BUSI ------------------------------------------------------------------------------------


def _write_busi(root: Path, n: int, seed: int) -> LayoutSummary:
    rng = np.random.default_rng([seed, 7, 2])
    total = sum(BUSI_COUNTS.values())
    counts = {cls: max(5, round(n * c / total)) for cls, c in BUSI_COUNTS.items()}
    counts["benign"] = n - counts["malignant"] - counts["normal"]
    base = root / busi.FOLDER
    made: dict[str, list[np.ndarray]] = {}
    index = 0
    for cls, count in counts.items():
        label = busi.LABELS.get(cls, 0)
        made[cls] = []
        for k in range(1, count + 1):
            index += 1
            score = NORMAL_SCORE if cls == busi.NORMAL else _score(rng, label)
            pixels = _render(index, label, score, seed, "busi")
            made[cls].append(pixels)
            stem = base / cls / f"{cls} ({k})"
            _save(stem.with_name(stem.name + ".png"), pixels, "RGB")
            _mask(stem.with_name(stem.name + "_mask.png"), pixels)
            if cls != busi.NORMAL and rng.random() < SECOND_MASK_SHARE:
                _mask(stem.with_name(stem.name + "_mask_1.png"), pixels)
    duplicates = []
    for cls in busi.LABELS:  # re-saved copies overwrite a few images of the same class
        n_dup = max(1, round(BUSI_DUPLICATE_SHARE * counts[cls]))
        for copy, original in rng.choice(counts[cls], size=(n_dup, 2), replace=False) + 1:
            pixels = synthetic._near_duplicate(made[cls][original - 1], rng)
            _save(base / cls / f"{cls} ({copy}).png", pixels, "RGB")
            _mask(base / cls / f"{cls} ({copy})_mask.png", pixels)
            duplicates.append((f"{cls} ({copy})", f"{cls} ({original})"))
    return LayoutSummary(root, "busi", n, seed, counts, near_duplicates=duplicates)


# -- flat ------------------------------------------------------------------------------------


def _write_flat(root: Path, n: int, seed: int) -> LayoutSummary:
    """Patients of 1-3 images at two sites; the label in the file name, a reader's category."""
    rng = np.random.default_rng([seed, 7, 3])
    sizes, shares = zip(*IMAGES_PER_PATIENT, strict=True)
    rows, index, patient = [], 0, 0
    while index < n:
        patient += 1
        label = int(rng.random() < BUSBRA_MALIGNANT_SHARE)
        site = FLAT_SITES[int(rng.integers(len(FLAT_SITES)))]
        score = _score(rng, label)
        reading = score + rng.normal(0.0, 1.0)
        category = 2 + int(np.searchsorted(BUSBRA_CUTS, reading))
        for _ in range(min(int(rng.choice(sizes, p=shares)), n - index)):
            index += 1
            name = f"{LABEL_NAMES[label]}_{index:04d}.png"
            pixels = _render(index, label, score + rng.normal(0, 0.2), seed, "flat")
            _save(root / FLAT_FOLDER / name, pixels)
            rows.append(
                {"file": name, "site": site, "patient": f"P{patient:04d}", "reader1": category}
            )
    _write_csv(root / FLAT_SHEET, rows, ["file", "site", "patient", "reader1"])
    counts = {name: sum(r["file"].startswith(name) for r in rows) for name in LABEL_NAMES.values()}
    return LayoutSummary(root, "flat", n, seed, counts, n_patients=patient)


# -- writing ---------------------------------------------------------------------------------

# the order seeds each layout's images: a new layout goes last, so the others keep their bytes
GENERATORS: dict[str, Callable[[Path, int, int], LayoutSummary]] = {
    "busbra": _write_busbra,
    "busi": _write_busi,
    "flat": _write_flat,
}
GENERATORS_ORDER = tuple(GENERATORS)


def _marker(summary: LayoutSummary) -> dict:
    return {
        # the generator's name when the format was set, not its module now: the marker is one of
        # the generated files, whose bytes change only with GENERATOR_VERSION
        "generator": "medbench.data.synthetic_layouts",
        "layout": summary.layout,
        "version": GENERATOR_VERSION,
        "n": summary.n,
        "seed": summary.seed,
        "counts": summary.counts,
        "n_patients": summary.n_patients,
        "near_duplicates": summary.near_duplicates,
    }


def _existing(root: Path, layout: str, n: int, seed: int) -> LayoutSummary | None:
    """The summary of this very generation in ``root``; None when ``root`` is new or empty."""
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: is a file; choose a new folder for synthetic data")
    if not root.exists() or not any(root.iterdir()):
        return None
    try:
        meta = json.loads((root / synthetic.MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    found = (meta.get("layout"), meta.get("version"), meta.get("n"), meta.get("seed"))
    if found != (layout, GENERATOR_VERSION, n, seed):
        raise DataError(
            f"{root}: folder is not empty and holds no synthetic {layout} generation with n={n}, "
            f"seed={seed}; choose a new or empty folder"
        )
    pairs = [tuple(p) for p in meta.get("near_duplicates", [])]
    return LayoutSummary(
        root, layout, n, seed, meta["counts"], meta.get("n_patients"), pairs, reused=True
    )


def generate_layout(layout: str, out: str | Path, n: int = 200, seed: int = 0) -> LayoutSummary:
    """Write ``n`` synthetic images in the on-disk layout of ``layout`` (``busbra``, ``busi`` or
    ``flat``).

    Files are written in a sibling temporary folder and renamed into place, so a crash never
    leaves half a dataset; a folder that holds this very generation is returned as is.

    Raises
    ------
    DataError
        For an unknown layout, ``n`` too small, a negative ``seed``, or an ``out`` that is a file
        or holds other files.
    """
    if layout not in GENERATORS:
        raise DataError(
            f"no synthetic generator for layout {layout!r}; medbench generates gdph_sysucc, "
            f"{', '.join(GENERATORS)}"
        )
    n, seed = int(n), int(seed)
    if n < MIN_N[layout]:
        raise DataError(f"synthetic {layout}: n={n} is too small; need at least {MIN_N[layout]}")
    if seed < 0:
        raise DataError(f"synthetic {layout}: seed must be >= 0, got {seed}")
    start = time.perf_counter()
    root = Path(out).expanduser().resolve()
    found = _existing(root, layout, n, seed)
    if found is not None:
        return found

    def fill(folder: Path) -> LayoutSummary:
        written = GENERATORS[layout](folder, n, seed)
        marker = json.dumps(_marker(written), indent=1, sort_keys=True)
        (folder / synthetic.MARKER).write_text(marker + "\n", encoding="utf-8")
        return written

    summary = atomic_folder(root, fill, last=synthetic.MARKER)
    summary.root, summary.seconds = root, time.perf_counter() - start
    return summary
