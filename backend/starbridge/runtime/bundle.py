"""Model bundles: a folder with `model.json` and four ONNX graphs (docs/architecture.md §6).

    <bundle>/
      model.json     format_version, preset (transformer + autoencoder layout, resolution, schedule), dtype,
                     latent layout, cache shape, graph file names, where the weights came from
      encoder.onnx   frames  uint8 (fpb, H, W, 3) RGB sRGB, rows top to bottom -> latents float (1, C, F, h, w)
      decoder.onnx   latents float (1, C, F, h, w) -> frames uint8 (fpb, H, W, 4) RGBA, alpha 255
      context.onnx   latents (1, C, 2F, h, w) [reference block | previous block], valid int64 ()
                     [, text (1, Lt, Dt)] -> cache_k, cache_v (layers, 1, heads, 2N, head_dim)
      step.onnx      noisy (1, C, F, h, w), cond (1, M + C, F, h, w) [mask | render latent], timestep (1,),
                     cache_k, cache_v, valid () [, text] -> velocity (1, C, F, h, w)
      text.npy       the fixed text embedding, for layouts with cross-attention

model.json "conventions" (absent: star-tiny's): how the condition is made and how the autoencoder streams.
  mask             "pool" (star-tiny) or "wan" (the published pipeline): runtime/condition.py
  autoencoder      "tiny" (each block on its own) or "taehv" (causal: the encoder and decoder graphs take
                   `memory_<i>` inputs and return `memory_<i>_next`, carried from block to block per stream)
  startup_frames   decoded frames at the start of a stream that are not real frames (TAEHV: 3)

fpb = frames per block = F latent frames x the autoencoder's temporal stride; N = tokens per block;
M = mask channels (= temporal stride: one mask per video frame a latent frame covers). `valid` is N for
the first block (no previous block in the context) and 2N after. Shapes are fixed, so the cache can
stay on the GPU between calls and the graphs can be captured as CUDA graphs.

Reading a bundle needs no PyTorch; writing one is model/export.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument
from .condition import MASK_CONVENTIONS, MASK_POOL

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
GRAPHS = ("encoder", "decoder", "context", "step")
#: A CPU-only variant of the step graph for calls whose whole cache is valid (model.json "cpu_graphs" only).
FULL_STEP = "step_full"
#: Where a bundle has it (CPU): step_full's timestep branch as a graph of its own, run once per distinct timestep;
#: step_full then takes the branch's outputs as inputs instead of the timestep (model/onnx_cpu_variants.py).
STEP_TIME = "step_time"


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime needs from model.json."""

    path: Path
    name: str
    width: int
    height: int
    frames_per_block: int
    latent_channels: int
    latent_frames: int
    latent_height: int
    latent_width: int
    mask_channels: int
    temporal_stride: int
    block_tokens: int
    cache_shape: tuple[int, ...]
    sigmas: tuple[float, ...]
    steps: tuple[int, ...]
    shift: float
    dtype: str
    has_text: bool
    weights: str
    doc: dict[str, Any]
    #: model.json "conventions" (defaults: star-tiny's, for bundles written before they existed).
    mask_convention: str = MASK_POOL
    autoencoder: str = "tiny"
    startup_frames: int = 0

    def graph(self, name: str) -> Path:
        return self.path / self.doc["graphs"][name]


def read_model(path: Path | str) -> ModelInfo:
    """Read and check a bundle's model.json; InvalidArgument naming the problem if it is not one."""
    path = Path(path)
    meta = path / MODEL_JSON
    if not meta.is_file():
        raise InvalidArgument(
            f"{path} is not a model bundle: no {MODEL_JSON} (make one with `starbridge model export`)", field="model"
        )
    try:
        doc = json.loads(meta.read_text())
        if doc.get("format_version") != FORMAT_VERSION:
            raise InvalidArgument(
                f"{meta}: format_version {doc.get('format_version')}, this backend reads {FORMAT_VERSION}; "
                "re-export the bundle with this version",
                field="model",
            )
        preset, lat = doc["preset"], doc["latent"]
        info = ModelInfo(
            path=path,
            name=preset["name"],
            width=int(preset["width"]),
            height=int(preset["height"]),
            frames_per_block=int(doc["frames_per_block"]),
            latent_channels=int(lat["channels"]),
            latent_frames=int(lat["block_frames"]),
            latent_height=int(lat["height"]),
            latent_width=int(lat["width"]),
            mask_channels=int(lat["mask_channels"]),
            temporal_stride=int(lat["temporal_stride"]),
            block_tokens=int(lat["block_tokens"]),
            cache_shape=tuple(int(v) for v in doc["cache"]["shape"]),
            sigmas=tuple(float(s) for s in doc["schedule"]["sigmas"]),
            steps=tuple(int(s) for s in doc["schedule"]["steps"]),
            shift=float(doc["schedule"]["shift"]),
            dtype=str(doc["dtype"]),
            has_text=bool(doc.get("text")),
            weights=str(doc.get("weights", "")),
            doc=doc,
            mask_convention=str(doc.get("conventions", {}).get("mask", MASK_POOL)),
            autoencoder=str(doc.get("conventions", {}).get("autoencoder", "tiny")),
            startup_frames=int(doc.get("conventions", {}).get("startup_frames", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgument(f"{meta} is not a valid model.json: {type(exc).__name__}: {exc}", field="model") from exc
    if info.mask_convention not in MASK_CONVENTIONS:
        raise InvalidArgument(f"{meta}: unknown mask convention {info.mask_convention!r} "
                              f"(this backend knows {', '.join(MASK_CONVENTIONS)})", field="model")  # fmt: skip
    if not 0 <= info.startup_frames < info.frames_per_block:
        raise InvalidArgument(f"{meta}: startup_frames {info.startup_frames} must be in [0, frames_per_block)",
                              field="model")  # fmt: skip
    missing = [info.graph(g).name for g in GRAPHS if not info.graph(g).is_file()]
    if missing:
        raise InvalidArgument(f"model bundle {path} lacks {', '.join(missing)}", field="model")
    return info


#: Model bundles shipped inside the package (starbridge/models/<name>/).
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "models"


def packaged_models() -> dict[str, Path]:
    """{name: path} of the bundles that ship with the package."""
    if not PACKAGED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(PACKAGED_DIR.iterdir()) if (p / MODEL_JSON).is_file()}


def resolve_model(name_or_path: Path | str) -> Path:
    """A bundle path from a path, or from the name of a packaged bundle (e.g. "star-tiny")."""
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = packaged_models()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    names = ", ".join(shipped) or "none"
    raise InvalidArgument(
        f"no model bundle at {path} and no packaged model of that name (packaged: {names})", field="model"
    )
