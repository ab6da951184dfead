"""BUSI (Al-Dhabyani et al., Data in Brief 2020): 780 images of Baheya Hospital, Cairo, in
three class folders, with the lesion masks beside the images.

On disk::

    ROOT/
      Dataset_BUSI_with_GT/
        benign/      'benign (1).png', 'benign (1)_mask.png', 'benign (100)_mask_1.png', ...
        malignant/   'malignant (1).png', 'malignant (1)_mask.png', ...
        normal/      'normal (1).png', 'normal (1)_mask.png', ...

``ROOT`` may also be ``Dataset_BUSI_with_GT`` itself. The label is the class folder; the ID is
the file stem. ``*_mask.png`` and ``*_mask_N.png`` are delineations, not images to classify.
Normal (lesion-free) images are left out of the benign/malignant task, and counted, unless
``include_normal`` folds them into benign. BUSI has no folds, sites, readers or patient ids:
medbench draws seeded stratified folds.
"""

from __future__ import annotations

import re
from pathlib import Path

from medbench.data.messages import problem
from medbench.data.read.labels import LABELS
from medbench.data.read.layouts.base import Found, ReadOptions
from medbench.data.read.layouts.listed import image_files
from medbench.errors import DataError

NAME = "busi"
CARD = "busi"
FOLDER = "Dataset_BUSI_with_GT"
NORMAL = "normal"
CLASS_FOLDERS = (*LABELS, NORMAL)  # benign, malignant, normal
DESCRIPTION = f"{FOLDER}/ with benign/, malignant/ (and normal/) image folders (BUSI)"
#: A BUSI file name: class, number in brackets, and a mask suffix for delineations.
FILE_NAME = re.compile(r"(?P<cls>[a-z]+) \((?P<number>\d+)\)(?P<mask>_mask(_\d+)?)?", re.I)
MASK = re.compile(r"_mask(_\d+)?$", re.I)
LEFT_OUT_NORMAL = "normal images (data.include_normal: false)"
LEFT_OUT_MASKS = "lesion masks (*_mask.png, *_mask_N.png)"


def class_folders(root: Path) -> dict[str, Path]:
    """The class folders of ``root`` or of its ``Dataset_BUSI_with_GT``, by lower-case name."""
    base = root / FOLDER if (root / FOLDER).is_dir() else root
    try:
        return {
            p.name.lower(): p
            for p in sorted(base.iterdir())
            if p.is_dir() and p.name.lower() in CLASS_FOLDERS
        }
    except OSError as err:
        raise DataError(f"{base}: cannot list the dataset folder ({err.strerror or err})") from None


def detect(root: Path, sheet: str | None = None) -> bool:
    """Whether ``root`` has benign/ and malignant/ folders holding BUSI-named images."""
    folders = class_folders(root)
    if not all(cls in folders for cls in LABELS):
        return False
    return any(FILE_NAME.fullmatch(p.stem) for cls in LABELS for p in folders[cls].iterdir())


def _images(folder: Path) -> tuple[list[Path], int]:
    """The images of a class folder and the number of masks beside them."""
    files = image_files(folder)
    images = [p for p in files if not MASK.search(p.stem)]
    return images, len(files) - len(images)


def read(root: Path, sheet: str | None = None, options: ReadOptions | None = None) -> Found:
    """One record per image of benign/ and malignant/ (and normal/ folded into benign on request)."""
    options = options or ReadOptions()
    folders = class_folders(root)
    missing = [cls for cls in LABELS if cls not in folders]
    if missing:
        raise DataError(f"{root}: no {' or '.join(missing)} folder; expected {DESCRIPTION}")
    records: list[dict] = []
    left_out: dict[str, int] = {}
    misnamed: list[str] = []
    seen: dict[str, Path] = {}
    duplicates: list[str] = []
    n_masks = 0
    for cls, folder in folders.items():
        images, masks = _images(folder)
        n_masks += masks
        if cls == NORMAL and not options.include_normal:
            if images:
                left_out[LEFT_OUT_NORMAL] = len(images)
            continue
        label = LABELS.get(cls, LABELS["benign"])  # normal is benign when included
        for path in images:
            named = FILE_NAME.fullmatch(path.stem)
            if named and named["cls"].lower() != cls:
                misnamed.append(f"{folder.name}/{path.name}")
            if path.stem in seen:
                duplicates.append(f"{path.stem!r} ({seen[path.stem].parent.name} and {cls})")
                continue
            seen[path.stem] = path
            records.append({"id": path.stem, "path": str(path.resolve()), "label": label})
    if n_masks:
        left_out[LEFT_OUT_MASKS] = n_masks
    base = next(iter(folders.values())).parent
    problems = [
        *problem("error", duplicates, f"{base}: the same file name in two folders: {{c}}", "ID"),
        *problem(
            "warning",
            misnamed,
            f"{base}: {{n}} named for another class than their folder (the folder is used): {{c}}",
            "image",
        ),
    ]
    return Found(records=records, source=str(base), problems=problems, left_out=left_out)
