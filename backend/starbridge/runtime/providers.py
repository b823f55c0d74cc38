"""Which ONNX Runtime execution provider runs: CUDA when it really loads, CPU otherwise.

`onnxruntime-gpu` lists CUDAExecutionProvider even on machines without CUDA, and asking for it
there prints a long load error. We check cleanly instead: load the CUDA provider library with
ctypes (which names the missing CUDA/cuDNN library, if any) and count devices through the CUDA
runtime; only then do sessions ask for CUDA. The verdict is computed once and logged once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import importlib.util
import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bundle import ModelInfo

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class ProviderChoice:
    #: Providers to pass to InferenceSession, best first.
    providers: tuple[str, ...]
    #: Why CUDA is or is not used, in one line.
    reason: str
    onnxruntime_version: str
    available: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.providers[0]


def _cuda_device_count() -> tuple[int, str]:
    """(number of CUDA devices, error text) through the CUDA runtime library, if it loads."""
    candidates = ["libcudart.so.13", "libcudart.so.12", ctypes.util.find_library("cudart") or ""]
    for name in filter(None, candidates):
        try:
            cudart = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        status = cudart.cudaGetDeviceCount(ctypes.byref(count))
        if status != 0:
            return 0, f"cudaGetDeviceCount failed with CUDA error {status} (no GPU or no driver)"
        return count.value, ""
    return 0, "the CUDA runtime library (libcudart) is not installed"


@functools.cache
def choose_providers(prefer_cuda: bool = True) -> ProviderChoice:
    """Decide once per process; `STARBRIDGE_PROVIDER=cpu` forces the CPU."""
    import onnxruntime as ort

    available = tuple(ort.get_available_providers())
    version = ort.__version__
    forced_cpu = os.environ.get("STARBRIDGE_PROVIDER", "").lower() == "cpu"
    reason = ""
    if forced_cpu or not prefer_cuda:
        reason = "CPU requested (STARBRIDGE_PROVIDER=cpu)" if forced_cpu else "CPU requested"
    elif CUDA not in available:
        reason = f"this onnxruntime build has no CUDA provider (available: {', '.join(available)})"
    else:
        lib = os.path.join(os.path.dirname(ort.__file__), "capi", "libonnxruntime_providers_cuda.so")
        if os.name == "nt":
            lib = os.path.join(os.path.dirname(ort.__file__), "capi", "onnxruntime_providers_cuda.dll")
        try:
            if hasattr(ort, "preload_dlls") and importlib.util.find_spec("nvidia") is not None:
                # CUDA/cuDNN from pip packages (nvidia-*): load them quietly, the check below tells.
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    ort.preload_dlls(directory="")
            ctypes.CDLL(lib)
        except OSError as exc:
            reason = f"the CUDA provider does not load: {exc}"
        else:
            count, err = _cuda_device_count()
            reason = err if count == 0 else f"CUDA provider loads, {count} GPU(s) visible"
            if count:
                choice = ProviderChoice((CUDA, CPU), reason, version, available)
                log.info("ONNX Runtime %s: using %s (%s)", version, CUDA, reason)
                return choice
    log.info("ONNX Runtime %s: using %s (%s)", version, CPU, reason)
    return ProviderChoice((CPU,), reason, version, available)


def optimised_graph(info: ModelInfo, name: str, provider: str, int8: bool = True) -> Path | None:
    """The bundle's copy of graph `name` optimised for `provider` (model.json "cpu_graphs", made at export
    by model/onnx_optimize.py), or None: only the CPU provider has one, since an optimised graph is specific
    to the provider it was optimised for; CUDA and the rest load the portable graph. With `int8`, the copy
    with int8 weights where the bundle has one."""
    entry = info.doc.get("cpu_graphs") or {}
    file = (entry.get("int8", {}).get(name) if int8 else None) or entry.get("graphs", {}).get(name)
    if provider != CPU or entry.get("provider") != CPU or not file:
        return None
    return info.path / file


def open_graph(info: ModelInfo, name: str, sess_options, providers: Sequence, int8: bool = True) -> Any:
    """An InferenceSession for bundle graph `name`: the copy optimised for the first provider when the
    bundle has one and it loads (else a warning), otherwise the portable graph. A graph that exists only
    as an optimised copy (step_full) gives None where that copy is absent or does not load."""
    import onnxruntime as ort

    first = providers[0] if isinstance(providers[0], str) else providers[0][0]
    portable = info.graph(name) if name in info.doc["graphs"] else None
    optimised = optimised_graph(info, name, first, int8)
    if optimised is not None:
        try:
            return ort.InferenceSession(str(optimised), sess_options=sess_options, providers=list(providers))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types; the portable graph is the answer
            log.warning("%s does not load on this onnxruntime (%s); using %s", optimised,
                        str(exc).splitlines()[0][:200], portable.name if portable else "none")  # fmt: skip
    if portable is None:
        return None
    return ort.InferenceSession(str(portable), sess_options=sess_options, providers=list(providers))
