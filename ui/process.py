"""The app's process, kept responsive between reruns."""

from __future__ import annotations

import gc
import sys

_modules_frozen = 0  # how many modules were imported when the process last froze its objects


def freeze_long_lived() -> None:
    """Takes every object alive now out of the cyclic collector's sweeps, whenever modules were imported since the
    last time (the library on a fresh server's first page; scikit-learn and torch._dynamo with the first models
    computed). Streamlit collects all generations after every script run (`runner.postScriptGC`): that sweep
    walked the objects of PyTorch, pandas, Plotly and Streamlit, which live as long as the process (about 270,000
    once the library is imported, 460,000 once models were computed), 140 to 210 ms of every rerun on these cores;
    with them frozen, 0.4 to 2 ms. Freezing itself is O(1)."""
    global _modules_frozen
    if len(sys.modules) > _modules_frozen:
        if _modules_frozen:  # reruns have left garbage since: frozen, its cycles would stay for good
            gc.collect()  # of what is not frozen yet: about 100 ms, once per wave of imports
        gc.freeze()
        _modules_frozen = len(sys.modules)
