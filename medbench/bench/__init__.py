"""Speed benchmarks of the suite's parts (``medbench bench``)."""
