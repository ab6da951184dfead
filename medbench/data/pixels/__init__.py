"""From a manifest path to the tensors a model sees.

- ``images``: decoding an image file (any mode, 16-bit, palette) to RGB; ``arrays``: images
  stored in ``.npz`` files;
- ``transforms``: the MONAI preprocessing and its on-disk cache;
- ``loader``: batches, augmentation and their seeded order.
"""
