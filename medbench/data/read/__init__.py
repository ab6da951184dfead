"""Reading a dataset folder into the manifest.

- ``manifest``: the manifest (one row per image) and its reader, by layout;
- ``layouts``: one module per way a dataset lies on disk, shared with :mod:`medbench.data.synth`;
- ``sheets`` and ``cells``: label sheets and their cells; ``birads``: BI-RADS categories and
  reader calls; ``labels``: the codes of the manifest's label and split columns.
"""
