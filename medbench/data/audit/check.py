"""Dataset audit (``medbench data check``): counts by site x label x fold and every problem found.

It reads the folder like the manifest reader does, but collects problems instead of stopping
at the first, decodes every image, and looks for near-duplicate images by perceptual hash:
the real release has some, a few with conflicting labels, and a pair split across folds
leaks test images into training (BUSI is known for many). A patient whose images lie in
several of a sheet's folds leaks the same way. Files that are not images of the task (masks,
BUSI's normal images by default) are counted, not read. Asked for repeats of the
cross-validation, it also shows the folds of every repeat as ``medbench run`` would draw them.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from medbench.data.audit.near_duplicates import (
    exclude_advice,
    ids_to_exclude,
    near_duplicate_pairs,
)
from medbench.data.folds import (
    assign_folds,
    fold_ids,
    make_folds,
    own_parts,
    patient_groups,
    patients_across_folds,
    repartition,
    single_class_folds,
    small_folds,
)
from medbench.data.messages import listing, plural
from medbench.data.pixels import arrays
from medbench.data.pixels.images import TINY_SIDE, decode_workers, read_rgb
from medbench.data.read.labels import LABEL_NAMES, SPLITS
from medbench.data.read.manifest import disagreement, label_disagreements, scan
from medbench.errors import ConfigError, DataError, MedbenchWarning
from medbench.optional import lazy_import

imagehash = lazy_import("imagehash")  # only the audit hashes

#: Perceptual hash side: 16 gives 256 bits. The common 8 (64 bits) cannot tell B-mode images
#: apart: their shared depth-attenuation profile dominates the lowest frequencies, and on
#: simulated scans distinct images came within 4 bits of each other once in a thousand pairs.
HASH_SIZE = 16
#: Images whose hashes differ in at most this many of the 256 bits are near-duplicates. On
#: simulated scans re-saved, rescaled, re-noised or brightened copies stayed within 10 bits and
#: distinct images (720,000 pairs) never came closer than 44.
NEAR_DUPLICATE_BITS = 24
_SHOWN = 10  # problem lines of one kind before they are summed up


@dataclass(frozen=True)
class Problem:
    """One finding: ``severity`` is "error" (the dataset is not usable) or "warning"."""

    severity: str
    message: str


@dataclass
class AuditReport:
    """What the audit found; ``usable`` when there is no error (warnings are allowed)."""

    root: str
    layout: str | None = None
    sheet: str | None = None
    n_images: int = 0
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    problems: list[Problem] = field(default_factory=list)
    near_duplicates: pd.DataFrame | None = None
    max_distance: int = NEAR_DUPLICATE_BITS
    n_patients: int | None = None  # None when the dataset has no patient ids
    left_out: dict[str, int] = field(default_factory=dict)  # files that are no task image
    hashes: np.ndarray | None = None  # the perceptual hashes searched (None: no search)
    #: with ``repeats`` > 1: each repeat's counts by site x label x fold, and how it was drawn
    repeats: dict[int, tuple[str, pd.DataFrame]] = field(default_factory=dict)
    folds: str = ""  # where the folds of the counts come from: the dataset's, or as run draws
    exclude: list[str] = field(default_factory=list)  # data.exclude for the near-duplicates

    @property
    def usable(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def render(self) -> str:
        """The terminal text: a heading, the counts table, then one line per problem."""
        lines = [f"dataset {self.root}"]
        if self.layout:
            sheet = f", sheet {self.sheet}" if self.sheet else ""
            patients = "" if self.n_patients is None else f", {self.n_patients} patients"
            lines.append(f"layout {self.layout}{sheet}, {self.n_images} images{patients}")
        if self.left_out:
            lines.append(
                "left out: " + ", ".join(f"{n} {what}" for what, n in self.left_out.items())
            )
        if self.folds:
            lines.append(f"folds: {self.folds}")
        if not self.counts.empty:
            lines += ["", self.counts.to_string(), ""]
        if self.repeats:
            lines += ["repeat 1: the folds above", ""]
        for repeat, (how, counts) in self.repeats.items():
            lines += [f"repeat {repeat}: {how}", "", counts.to_string(), ""]
        if self.near_duplicates is not None:
            nd = self.near_duplicates
            lines.append(
                f"near-duplicates: {len(nd)} pairs within {self.max_distance} of {HASH_SIZE**2} perceptual-hash bits "
                f"({int((~nd['same_fold']).sum())} across folds, "
                f"{int((~nd['same_label']).sum())} with different labels)"
            )
        lines += [f"{p.severity}: {p.message}" for p in self.errors + self.warnings]
        if self.exclude:
            lines.append(exclude_advice(self.exclude))
        n_warn = plural(len(self.warnings), "warning")
        lines.append(
            f"usable: yes ({n_warn})"
            if self.usable
            else f"not usable: {plural(len(self.errors), 'error')}, {n_warn}"
        )
        return "\n".join(lines)


def audit_dataset(
    root: str | Path,
    phash: bool = True,
    max_distance: int = NEAR_DUPLICATE_BITS,
    sheet: str | None = None,
    layout: str | None = None,
    include_normal: bool = False,
    labels: str = "check",
    max_image_pixels: int = Image.MAX_IMAGE_PIXELS,
    repeats: int = 1,
    n_folds: int = 5,
    fold_seed: int = 0,
) -> AuditReport:
    """Audit a dataset folder: counts and every problem, never stopping at the first.

    Parameters
    ----------
    root : str or Path
        The dataset folder.
    phash : bool, default True
        Look for near-duplicate images by perceptual hash.
    max_distance : int, default NEAR_DUPLICATE_BITS
        Hash bits (of 256) within which two images are near-duplicates.
    sheet : str, optional
        As for :func:`medbench.data.read.manifest.read_manifest`.
    layout : str, optional
        As for :func:`medbench.data.read.manifest.read_manifest`; detected by default.
    include_normal : bool, default False
        As for :func:`medbench.data.read.manifest.read_manifest`.
    labels : str, default "check"
        As for :func:`medbench.data.read.manifest.read_manifest`.
    max_image_pixels : int
        Pillow's decompression-bomb limit while decoding (its own default).
    repeats : int, default 1
        Repeats of the cross-validation to show (``cv.repeats``): the folds of repeats 2 and
        above, as ``medbench run`` draws them (:func:`repeat_counts`).
    n_folds, fold_seed : int
        For a dataset without folds of its own: the stratified folds ``run`` draws
        (``data.n_folds``, and the lowest of ``seeds``), which the counts and the near-duplicate
        search then use.

    Returns
    -------
    AuditReport
        Counts by site, label and fold, and the problems found (errors make it unusable).

    Raises
    ------
    DataError
        Only when there is nothing to audit: no folder, no layout that fits it, no sheet, no
        key column, no images.
    ConfigError
        ``repeats`` > 1 where folds cannot be drawn again (an official split).
    """
    Image.MAX_IMAGE_PIXELS = max_image_pixels
    found = scan(root, sheet, layout, include_normal, labels)
    manifest = found.manifest
    groups = patient_groups(manifest)
    report = AuditReport(
        root=str(root),
        layout=manifest.attrs.get("layout"),
        sheet=_sheet_label(manifest),
        n_images=len(manifest),
        problems=[Problem(s, m) for s, m in found.problems],
        max_distance=max_distance,
        n_patients=None if groups is None else len(set(groups.tolist())),
        left_out=found.left_out,
    )
    if manifest.empty:
        return report
    own = manifest
    manifest, report.folds, problems = _folds_run_makes(own, n_folds, fold_seed)
    report.problems += problems
    report.counts = count_table(manifest)
    if found.sheet_rows and labels == "sheet":  # otherwise scan already stopped or resolved it
        report.problems += _label_disagreements(own, found.sheet_rows, found.name_labels)
    report.problems += _single_class_folds(manifest)
    report.problems += [
        Problem(
            "warning",
            f"fold {fold} holds {plural(size, 'image')}, far fewer than the other folds (median "
            f"{median:g}): a typo in the fold column? medbench run would count it as a full "
            "fold; leave it out with data.folds_keep",
        )
        for fold, size, median in small_folds(manifest)
    ]
    report.problems += _patients_across_folds(manifest)
    if repeats > 1:
        try:
            report.repeats = repeat_counts(manifest, repeats)
        except DataError as err:  # the folds cannot be drawn: a problem of the data, said once
            report.problems.append(Problem("error", f"repeats: {err}"))
    hashes, problems = _decode_all(manifest, phash)
    report.problems += problems
    if phash:
        report.hashes = hashes
        pairs = near_duplicate_pairs(hashes, max_distance)
        report.near_duplicates = describe_pairs(manifest, pairs, hashes)
        drawn = own_parts(own)[0] is None
        report.problems += _near_duplicate_problems(manifest, report.near_duplicates, drawn)
        report.exclude = ids_to_exclude(report.near_duplicates, every_pair=drawn)
    return report


def repeat_counts(manifest: pd.DataFrame, repeats: int) -> dict[int, tuple[str, pd.DataFrame]]:
    """The folds of repeats 2 to ``repeats`` of a repeated cross-validation, as ``medbench run``
    with ``cv.repeats: repeats`` draws them: (how they were drawn, :func:`count_table`) by repeat.

    ``manifest`` holds repeat 1's folds (the dataset's own, or those ``run`` draws for it: the
    audit's counts); repeats 2 and above re-partition the same images
    (:func:`~medbench.data.folds.repartition`).
    """
    with warnings.catch_warnings():  # a far smaller fold is one of the audit's problems already
        warnings.simplefilter("ignore", MedbenchWarning)
        base = make_folds(manifest, "auto", 5, 0, (), repeats)  # checks the folds can repeat
    grouped = "grouped by patient, " if patient_groups(base) is not None else ""
    k = len(fold_ids(base))
    return {
        repeat: (
            f"the same images re-partitioned into {k} stratified folds ({grouped}seeded by the "
            "repeat)",
            count_table(repartition(base, repeat)),
        )
        for repeat in range(2, repeats + 1)
    }


def _folds_run_makes(
    manifest: pd.DataFrame, k: int, seed: int
) -> tuple[pd.DataFrame, str, list[Problem]]:
    """The manifest with the folds ``run`` uses (``data.folds: auto``), where they come from,
    and why it could not draw them: the dataset's own folds or split, else ``k`` stratified
    folds seeded by ``seed``, as ``run`` draws them."""
    parts, noun = own_parts(manifest)
    if parts is not None:
        where = "the dataset's own" if noun == "fold" else "the dataset's official split, as one"
        return manifest, f"{where} ({', '.join(map(str, sorted(set(parts.dropna()))))})", []
    try:
        drawn = assign_folds(manifest, source="stratified", k=k, seed=seed)
    except (ConfigError, DataError) as err:
        return manifest, "none (run cannot draw them)", [Problem("error", str(err))]
    whole = ", whole patients" if patient_groups(manifest) is not None else ""
    return (
        drawn,
        f"{k} stratified folds as run draws them (data.n_folds {k}, seed {seed}{whole})",
        [],
    )


def _sheet_label(manifest: pd.DataFrame) -> str | None:
    if not manifest.attrs.get("sheet_file"):
        return None
    name = Path(manifest.attrs["sheet_file"]).name
    worksheet = manifest.attrs.get("sheet_name")
    return f"{name} [{worksheet}]" if worksheet else name


def count_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per (site, label) row and fold column (or official split, for a dataset that has
    one and no folds), with totals; folds in their natural order (fold 2 before fold 10)."""
    by, name = own_parts(manifest)
    by = by if by is not None else manifest["fold"]
    values = by.astype(object).where(by.notna(), "-")
    rank = {part: i for i, part in enumerate(SPLITS)}  # train, val, test: in reading order
    order = sorted(set(values), key=lambda v: (isinstance(v, str), rank.get(v, len(rank)), v))
    columns = pd.Categorical(
        values.map(lambda f: f"{name} {f}"), categories=[f"{name} {v}" for v in order]
    )
    table = pd.crosstab(
        [
            manifest["site"].astype(object).where(manifest["site"].notna(), "-"),
            manifest["label"].map(LABEL_NAMES),
        ],
        columns,
        margins=True,
        margins_name="total",
    )
    table.index.names = ["site", "label"]
    table.columns.name = None
    return table


def _label_disagreements(
    manifest: pd.DataFrame, rows: list[int], name_labels: list[int | None]
) -> list[Problem]:
    """Rows whose sheet label contradicts the file name (the sheet's label was used)."""
    found = [disagreement(manifest, rows, i) for i in label_disagreements(manifest, name_labels)]
    if not found:
        return []
    return [
        Problem(
            "warning",
            f"{len(found)} sheet labels disagree with the file name (the sheet's label is used): "
            + listing(found),
        )
    ]


def _single_class_folds(manifest: pd.DataFrame) -> list[Problem]:
    return [
        Problem(
            "warning",
            f"fold {fold} has only {LABEL_NAMES[label]} images ({size}); "
            "its test AUC will be undefined",
        )
        for fold, label, size in single_class_folds(manifest)
    ]


def _patients_across_folds(manifest: pd.DataFrame) -> list[Problem]:
    """Patients whose images lie in several of the dataset's own folds."""
    found = [
        f"{p!r} (folds {', '.join(map(str, folds))})"
        for p, folds in patients_across_folds(manifest).items()
    ]
    if not found:
        return []
    return [
        Problem(
            "warning",
            f"{plural(len(found), 'patient')} with images in several folds (their images leak "
            f"between training and test): " + listing(found),
        )
    ]


def _decode_one(path: str, want_hash: bool) -> tuple[np.ndarray | None, str | None, tuple | None]:
    """(hash bits or None, error message or None, (w, h) when tiny)."""
    try:
        rgb = read_rgb(path)
    except DataError as err:
        return None, str(err), None
    h, w = rgb.shape[:2]
    tiny = (w, h) if min(h, w) < TINY_SIDE else None
    if not want_hash:
        return None, None, tiny
    if rgb.dtype != np.uint8:  # 16-bit files come back as floats in [0, 1]
        rgb = np.round(rgb * 255).astype(np.uint8)
    return hash_bits(rgb), None, tiny


def hash_bits(rgb: np.ndarray) -> np.ndarray:
    """The perceptual hash of one uint8 (H, W, 3) image as 0/1 bits."""
    return imagehash.phash(Image.fromarray(rgb), hash_size=HASH_SIZE).hash.reshape(-1)


def hash_images(images: np.ndarray) -> np.ndarray:
    """The perceptual hash bits of preprocessed images, uint8 (N, 3, S, S): one row each,
    hashed as the audit hashes the files (the hash looks at a 64 px thumbnail)."""
    hashes = np.zeros((len(images), HASH_SIZE**2), dtype=np.float32)
    for i, image in enumerate(images):
        hashes[i] = hash_bits(np.ascontiguousarray(image.transpose(1, 2, 0)))
    return hashes


def near_duplicates_of(manifest: pd.DataFrame, images: np.ndarray) -> pd.DataFrame:
    """The near-duplicate pairs (:func:`describe_pairs`, with the manifest's folds) among
    ``images``, uint8 (N, 3, S, S) in the manifest's order: the preprocessed images a grid
    trains on (:func:`hash_images`: the counts agree with ``data check``'s at the usual input
    sizes)."""
    hashes = hash_images(images)
    return describe_pairs(manifest, near_duplicate_pairs(hashes, NEAR_DUPLICATE_BITS), hashes)


def _decode_all(manifest: pd.DataFrame, want_hash: bool) -> tuple[np.ndarray, list[Problem]]:
    """Decode every image (threads: PNG decoding releases the GIL); hash bits, NaN rows for failures."""
    paths = manifest["path"].tolist()
    ids = manifest["id"].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MedbenchWarning)  # tiny images are summed up below
        with ThreadPoolExecutor(decode_workers()) as pool:
            results = list(pool.map(lambda p: _decode_one(p, want_hash), paths))
    hashes = np.full((len(paths), HASH_SIZE**2), np.nan, dtype=np.float32)
    unreadable, tiny = [], []
    for i, (bits, error, small) in enumerate(results):
        if error:
            unreadable.append(error)
        if small:
            name = ids[i] if arrays.parse(paths[i]) else Path(paths[i]).name  # a member: its ID
            tiny.append(f"{name} ({small[0]}x{small[1]})")
        if bits is not None:
            hashes[i] = bits
    problems = [Problem("error", msg) for msg in unreadable[:_SHOWN]]
    if len(unreadable) > _SHOWN:
        problems.append(
            Problem("error", f"... and {len(unreadable) - _SHOWN} more unreadable images")
        )
    if tiny:
        problems.append(
            Problem(
                "warning",
                f"{len(tiny)} tiny images (under {TINY_SIDE} pixels a side), upscaled for the model: "
                + listing(tiny),
            )
        )
    return hashes, problems


def describe_pairs(manifest: pd.DataFrame, pairs: np.ndarray, hashes: np.ndarray) -> pd.DataFrame:
    """Each near-duplicate pair (rows of ``manifest``) with its ids, distance, and whether both
    images share a fold (the manifest's folds, else its official split) and a label."""
    a, b = pairs[:, 0], pairs[:, 1]
    parts, _ = own_parts(manifest)
    part = parts.astype(object).to_numpy() if parts is not None else None
    label = manifest["label"].to_numpy()
    has_parts = parts is not None and bool(parts.notna().all())
    return pd.DataFrame(
        {
            "id_a": manifest["id"].to_numpy()[a],
            "id_b": manifest["id"].to_numpy()[b],
            "distance": np.abs(hashes[a] - hashes[b]).sum(axis=1).astype(int),
            "same_fold": (part[a] == part[b]) if has_parts else np.ones(len(a), dtype=bool),
            "same_label": label[a] == label[b],
            "a": a,
            "b": b,
        }
    )


def _near_duplicate_problems(
    manifest: pd.DataFrame, pairs: pd.DataFrame, drawn: bool = False
) -> list[Problem]:
    """One warning per suspicious pair (different labels, or split across folds); one for every
    pair when medbench draws the folds (``drawn``: they change as soon as an image is left
    out, so any pair may be split)."""
    site = manifest["site"].astype(object).to_numpy()
    parts, noun = own_parts(manifest)
    fold = parts.astype(object).to_numpy() if parts is not None else [pd.NA] * len(manifest)
    label = manifest["label"].to_numpy()
    across = "split across folds" if noun == "fold" else "split across train/val/test"

    def name(i: int) -> str:
        where = f"{site[i]}/" if isinstance(site[i], str) else ""
        described = [LABEL_NAMES[label[i]]]
        if not pd.isna(fold[i]):
            described.append(f"{noun} {fold[i]}")
        return f"{where}{manifest['id'].iloc[i]} ({', '.join(described)})"

    if (parts is None or drawn) and len(pairs):  # folds medbench draws may split the pairs
        found = [f"{name(r.a)} ~ {name(r.b)}" for r in pairs.itertuples()]
        conflicting = int((~pairs["same_label"]).sum())
        now = f", {int((~pairs['same_fold']).sum())} across the folds above" if drawn else ""
        return [
            Problem(
                "warning",
                f"{plural(len(found), 'near-duplicate pair')} ({conflicting} with different "
                f"labels{now}); the dataset has no folds of its own, so the folds medbench "
                "draws may put a copy in training and its twin in test: " + listing(found),
            )
        ]
    lines = []
    for row in pairs.itertuples():
        if row.same_label and row.same_fold:
            continue
        why = "different labels" if not row.same_label else across
        if not row.same_label and not row.same_fold:
            why = f"different labels, {across}"
        lines.append(
            f"near-duplicate images, {why}: {name(row.a)} ~ {name(row.b)}, {row.distance} bits apart"
        )
    problems = [Problem("warning", line) for line in lines[:_SHOWN]]
    if len(lines) > _SHOWN:
        problems.append(
            Problem(
                "warning",
                f"... and {len(lines) - _SHOWN} more near-duplicate pairs across folds or labels",
            )
        )
    return problems
