"""The dataset audit (``medbench data check``).

- ``check``: counts by site x label x fold and every problem found, never stopping at the first;
- ``near_duplicates``: the search for near-duplicate images by perceptual hash.
"""
