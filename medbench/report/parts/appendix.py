"""The appendix, folded away: the config the runs were made with (as logged), the dataset
(fingerprint, test images, data card), the environment (from the tags of the fold runs) and the
files beside the report."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import yaml

from medbench.data.cards import list_cards, read_card
from medbench.data.messages import plural
from medbench.errors import DataError
from medbench.report import document as d
from medbench.report.part import Analysis, Part, Writer
from medbench.tracking import schema
from medbench.tracking.reader import tag_column


def analyse(a: Analysis) -> None:
    """Nothing to compute: the appendix shows what the runs recorded."""
    return None


def sections(_: None, w: Writer) -> None:
    appendix = d.Details("Configuration, data card, environment and files (click to open)")
    w.doc.add(d.Heading("Appendix"), appendix)
    inside = dataclasses.replace(w, doc=appendix)
    for section in (_configuration, _dataset, _environment, _files):
        section(inside)


PART = Part("appendix", analyse, sections=sections)


def _configuration(c: Writer) -> None:
    c.doc.add(d.Heading("Configuration", 3))
    if c.record.config:
        c.doc.add(
            d.Paragraph("The config the runs were made with (`config.yaml` of the parent runs):"),
            d.Code(yaml.safe_dump(c.record.config, sort_keys=False, allow_unicode=True), "yaml"),
        )
    else:
        c.doc.add(d.Paragraph("No `config.yaml` artifact was found on the parent runs."))


def near_duplicates(parents: pd.DataFrame) -> dict | None:
    """The near-duplicate summary the parent runs logged (tag ``medbench.near_duplicates``), or
    None when they logged none (runs of an older medbench)."""
    col = tag_column(schema.TAG_NEAR_DUPLICATES)
    if col not in parents or parents[col].dropna().empty:
        return None
    try:
        return json.loads(parents[col].dropna().iloc[0])
    except ValueError:
        return None


def near_duplicates_text(found: dict) -> str:
    """The appendix's sentence on near-duplicate images: how many pairs, across folds and with
    different labels, and what to do (``data.exclude``)."""
    pairs, across, conflicting = found["pairs"], found["across_folds"], found["different_labels"]
    head = (
        f"Near-duplicate images among the training data (perceptual hashes of the preprocessed "
        f"images within {found.get('max_bits', 24)} of 256 bits): "
    )
    if not pairs:
        return head + "none."
    text = head + (
        f"{plural(pairs, 'pair')}, {across} across folds (a copy of a test image was in "
        f"training: that fold's test score is optimistic) and {conflicting} with different labels."
    )
    exclude = found.get("exclude") or []
    if exclude:
        more = found.get("exclude_more", 0)
        text += (
            f" To leave them out, run again with `--set 'data.exclude=[{', '.join(exclude)}]'` "
            "(one image of each pair, both when the labels differ"
            + (f"; {more} more ids did not fit here" if more else "")
            + "; `medbench data check` lists the pairs)."
        )
    return text


def _card_summary(meta: dict, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _card_summary(value, name + ".")
        elif isinstance(value, list):
            rows.append((name, ", ".join(str(v) for v in value)))
        else:
            rows.append((name, str(value)))
    return rows


def _dataset(c: Writer) -> None:
    c.doc.add(d.Heading("Dataset", 3))
    names = c.inputs.cards
    fingerprint = c.record.tags.get(schema.TAG_FINGERPRINT)
    if fingerprint:
        c.doc.add(
            d.Paragraph(
                f"Dataset fingerprint (ids, labels, sites, folds, image bytes): `{fingerprint}`."
            )
        )
    imgs = c.inputs.images
    if not imgs.empty:
        n_mal = int(imgs["label"].sum())
        text = (
            f"Test images seen in this experiment: {len(imgs)} ({n_mal} malignant, "
            f"{len(imgs) - n_mal} benign)"
        )
        if "site" in imgs and imgs["site"].notna().any():
            counts = imgs["site"].fillna("(none)").value_counts().sort_index()
            text += "; per site: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        c.doc.add(d.Paragraph(text + "."))
    if c.inputs.synthetic_tag:
        c.doc.add(
            d.Paragraph(
                "Generated data: the data folder holds the marker of medbench's generator "
                f"(`.medbench-synth.json`; tag `{schema.TAG_SYNTHETIC}` of the parent runs)."
            )
        )
    duplicates = near_duplicates(c.record.parents)
    if duplicates is not None:
        c.doc.add(d.Paragraph(near_duplicates_text(duplicates)))
    if not names:
        c.doc.add(
            d.Paragraph(
                "No data card describes this dataset: a card is shown only for the dataset it "
                "was written for (the GDPH&SYSUCC release with its 2,405 images, or the "
                f"synthetic generator's output; tag `{schema.TAG_DATASET_CARD}` of the parent runs)."
            )
        )
    for name in names:
        if name not in list_cards():
            c.doc.add(d.Paragraph(f"Data card `{name}`: not among the cards medbench ships."))
            continue
        try:
            meta, _ = read_card(name)
        except (OSError, DataError) as err:
            c.doc.add(d.Paragraph(f"Data card `{name}` cannot be read: {err}"))
            continue
        rows = _card_summary(meta)
        c.doc.add(d.Paragraph(f"From the data card `data_cards/{name}.md`:"))
        c.table(pd.DataFrame(rows, columns=["Field", "Value"]), keep=("Field", "Value"))


ENV_TAGS = (
    (schema.TAG_VERSION, "medbench"),
    (schema.TAG_TORCH, "PyTorch"),
    (schema.TAG_PYTHON, "Python"),
    (schema.TAG_PLATFORM, "Platform"),
    (schema.TAG_DEVICE, "Device"),
    (schema.TAG_PRECISION, "Precision"),
    (schema.TAG_CONFIG_HASH, "Config hash"),
    (schema.TAG_FINGERPRINT, "Dataset fingerprint"),
)


def _environment(c: Writer) -> None:
    folds = c.record.folds
    rows = []
    for tag, label in ENV_TAGS:
        col = tag_column(tag)
        if col in folds and folds[col].notna().any():
            counts = folds[col].dropna().value_counts()
            value = (
                str(counts.index[0])
                if len(counts) == 1
                else "; ".join(f"{k} ({v} runs)" for k, v in counts.items())
            )
        else:
            value = c.record.tags.get(tag, "not recorded")
        rows.append((label, value))
    c.doc.add(d.Heading("Environment", 3), d.Paragraph("From the tags of the fold runs:"))
    c.table(pd.DataFrame(rows, columns=["", "Value"]), keep=("", "Value"))


def _files(c: Writer) -> None:
    c.doc.add(
        d.Heading("Files", 3),
        d.Paragraph(
            "Every table is also a full-precision CSV beside this report (`table_*.csv`); every "
            "figure is a PNG (200 dpi) and an SVG (`fig_*`). The same files are attached to each "
            "parent run of the experiment under `report/`."
        ),
    )
