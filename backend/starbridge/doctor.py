"""`starbridge doctor`: what this machine runs StarBridge with, in one screen."""

from __future__ import annotations

import platform
import shutil
import subprocess
from importlib import metadata

from . import __version__
from .transport.version import PROTOCOL_TEXT

PACKAGES = ("numpy", "onnxruntime-gpu", "onnxruntime", "grpcio", "protobuf", "pyzmq", "av", "pillow", "torch", "onnx")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def _gpu() -> str:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "no nvidia-smi (no NVIDIA driver visible)"
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi failed: {exc}"
    return out.stdout.strip() or out.stderr.strip() or "nvidia-smi printed nothing"


def report() -> str:
    from .runtime.providers import choose_providers
    from .scenes.store import default_store_root
    from .transport.ring import ring_dir

    choice = choose_providers()
    lines = [
        f"starbridge       {__version__} (protocol {PROTOCOL_TEXT})",
        f"python           {platform.python_version()} on {platform.platform()}",
        f"cpu cores        {__import__('os').cpu_count()}",
    ]
    lines += [f"{name:16} {_version(name)}" for name in PACKAGES]
    lines += [
        f"ORT providers    {', '.join(choice.available)} (built in)",
        f"ORT runs on      {choice.name}",
        f"  why            {choice.reason}",
        f"GPU              {_gpu()}",
        f"scene store      {default_store_root()}",
        f"frame rings      {ring_dir()}",
    ]
    return "\n".join(lines)
