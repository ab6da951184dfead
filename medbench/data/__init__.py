"""Data layer: dataset folder -> manifest -> folds -> preprocessed tensors.

Subpackages by job, each importing only those below it (``pixels`` <- ``read`` <- ``synth``,
``audit``; ``folds`` and ``dataset`` above them):

- ``read``: a dataset folder read into the manifest (one row per image) by its layout
  (``read.layouts``: one module per layout, shared with ``synth``), its sheets and cells, the
  BI-RADS categories and the label coding;
- ``pixels``: decoding images (files and arrays), the MONAI preprocessing with its on-disk
  cache, and batches;
- ``synth``: the synthetic release and its BUS-BRA and BUSI twins;
- ``audit``: the dataset audit (``medbench data check``) and the near-duplicate search;
- ``folds``: every fold concept, from the fold sources to the validation split;
- ``dataset``: a dataset prepared for the jobs (manifest, folds, images, fingerprint), from
  the plain settings of ``settings``;
- ``cards``: the data cards; ``messages``: the wording of problems.
"""
