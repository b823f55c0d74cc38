"""What every numba-compiled loop in StarBridge shares: the options, and the log line that says an import is
about to compile (once per install: the signatures are given, so a module's import compiles its kernels or
loads them from numba's on-disk cache, next to the module in __pycache__ or in NUMBA_CACHE_DIR)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

#: The options of every kernel (njit: no Python objects): the GIL released, cached on disk; IEEE division
#: (x / 0 = inf, no exception) and no bounds checks (indices are computed in range).
JIT_OPTIONS: dict[str, Any] = {"nogil": True, "cache": True, "error_model": "numpy", "boundscheck": False}


def cached(module_file: str) -> bool:
    """Whether numba's cache already holds the kernels of the module at `module_file` (its index files, beside
    it or in NUMBA_CACHE_DIR); False means its import is about to compile them."""
    here = Path(module_file)
    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or here.parent / "__pycache__")  # (the one numba uses first)
    return folder.is_dir() and next(folder.rglob(f"{here.stem}.*.nbi"), None) is not None


def announce_compile(module_file: str, log: logging.Logger, what: str) -> None:
    """Log (info) that `what` is being compiled for this install, when its module is not in the cache yet, so
    that a first run's pause does not look hung."""
    if not cached(module_file):
        log.info("compiling %s for this install (once)", what)
