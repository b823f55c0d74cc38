"""What a benchmark ran on, for its JSON: `machine_info() -> dict`, and where it writes: `out_dir(...)`
(shared by every bench script)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
from pathlib import Path
from typing import Any

import numpy as np

#: Where results go unless `--out` says otherwise: a folder in the current directory, never the committed
#: `bench/results/` (replace those on purpose, with `--out bench/results`).
DEFAULT_OUT = "bench-results"


def machine_info() -> dict[str, Any]:
    """Host, OS, CPU model and counts, memory, and the versions that decide the speed of our code.

    Keys: hostname, platform, machine, processor, cpu_count, cpu_affinity (CPUs this process may use),
    memory_gib, python, numpy, onnxruntime and onnxruntime_providers (None when not importable).
    Never raises on an unusual system: unknown values are None.
    """
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": None,
        "onnxruntime_providers": None,
    }
    try:
        import onnxruntime as ort
    except ImportError:
        return info
    info["onnxruntime"] = ort.__version__
    info["onnxruntime_providers"] = list(ort.get_available_providers())
    return info


def _cpu_model() -> str | None:
    """'model name' from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gib() -> float | None:
    """Total memory from /proc/meminfo (Linux), else from sysconf, in GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) * 1024 / 2**30, 2)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 2)
    except (AttributeError, ValueError, OSError):
        return None


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """`--out DIR`, defaulting to ./bench-results (see DEFAULT_OUT)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"folder for the results (default: ./{DEFAULT_OUT}; the committed ones are in bench/results: "
        "pass --out bench/results to replace them)",
    )


def host_tag() -> str:
    """This machine's name as result files carry it (model-<host>.json): characters other than letters, digits,
    '.', '_' and '-' replaced."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", socket.gethostname()) or "host"


def _plain(value: Any) -> Any:
    """JSON for what `json` does not know: NumPy scalars (bool, int, float) as the Python value they hold."""
    if isinstance(value, np.generic):
        return value.item()
    return float(value)


def write_json(path: Path, report: dict[str, Any]) -> Path:
    """Write a benchmark's report whole or not at all (a temporary file, then rename); returns `path`. NumPy
    scalars are written as what they hold (a NumPy bool as true / false, not 0.0). The folder is made if it is
    not there (a `--out` folder named new must not cost a long run its results at the end)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=_plain) + "\n")
    os.replace(tmp, path)
    return path


def out_dir(out: Path | None) -> Path:
    """The folder a benchmark writes to: `out`, or ./bench-results; said on stdout before the run starts."""
    path = Path(out) if out is not None else Path.cwd() / DEFAULT_OUT
    print(f"results will be written to {path}{'' if out is not None else ' (choose with --out DIR)'}", flush=True)
    return path


if __name__ == "__main__":
    print(json.dumps(machine_info(), indent=2))
