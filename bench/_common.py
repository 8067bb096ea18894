"""What every benchmark shares: machine facts and where figures are saved."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))


def machine() -> dict:
    import torch

    return {
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def save(name: str, figures: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **figures}, indent=2))
    print(f"saved {path.relative_to(REPO)}")
    return path


def compile_scripts_once() -> None:
    """AppTest as a server runs a rerun: each script compiled once. AppTest builds a new ScriptCache at every run, so
    it recompiles app.py and the page (Streamlit's magic rewrite included) each time: 13 to 19 ms a Compare rerun
    on these cores that a server, whose ScriptCache lives as long as it does, spends only on its first run."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = ScriptCache()
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared
