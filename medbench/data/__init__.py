"""Data layer: dataset folder -> manifest -> folds -> preprocessed tensors.

- ``manifest``: a dataset folder read into the manifest (one row per image) by its layout;
- ``layouts``: one module per dataset layout, its detection and reading, shared with
  ``synthetic`` (the generator writes the layout the reader reads);
- ``sheets`` and ``cells``: label sheets and their cells; ``birads``: BI-RADS categories and
  reader calls; ``labels``: the label coding; ``messages``: the wording of problems;
- ``folds``, ``images``, ``transforms``, ``loader``: folds, decoding, preprocessing, batches;
- ``audit``, ``synthetic``, ``cards``: the dataset audit, the synthetic release, the data cards.
"""
