"""The optimizers' shared defaults and choices, importable without torch.

Config validation and ``medbench list`` read them; the optimizer classes (``sam.py``) and the
registry build with them.
"""

from __future__ import annotations

#: The paper's learning rate (the authors' code: Adam, lr 1e-4).
DEFAULT_LR = 1e-4
#: The neighbourhood radius of SAM's and GCSAM's papers and the authors' code (rho 0.05).
DEFAULT_RHO = 0.05
#: GCSAM's norm: ``raw`` (the authors' code, before centralizing) or ``centralized`` (the paper).
GC_NORMS = ("raw", "centralized")
