"""Checkpoint conversion: load a published-layout STAR checkpoint (safetensors) strictly, then export a bundle.

    starbridge model convert inspatio.safetensors --preset inspatio-1.3b --out bundles/inspatio-1.3b \
        --autoencoder taew2_1.safetensors --text-embedding caption.npy

Keys may carry a leading ``model.`` (as in the published checkpoint); it is stripped. Every key of
the preset's layout must be present with its exact shape, and nothing else may be: the error lists
missing, unexpected and mis-shaped keys so a wrong file or a wrong preset is plain at once. The
autoencoder file is checked the same way against its layout (ours, or TAEHV's `taew2_1`: taehv.py).

A converted bundle follows the published pipeline's conditioning conventions (model.json
"conventions": the Wan validity mask, runtime/condition.py) since its transformer was trained with them;
with `--text-embedding` its text.npy is the caption's umt5 embedding instead of zeros.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..errors import InvalidArgument
from ..runtime.condition import MASK_WAN
from .autoencoder import TinyAutoencoder
from .config import TAEW2_1, AutoencoderConfig
from .export import export_bundle
from .presets import Preset
from .star import StarModel
from .taehv import Taehv, build_autoencoder

#: Prefix the published checkpoint puts before every module name.
STRIP_PREFIX = "model."
#: How many keys of each kind an error message lists before "and N more".
LIST_LIMIT = 12


class CheckpointError(InvalidArgument):
    """A checkpoint does not match the preset's layout."""


def expected_layout(preset: Preset) -> dict[str, tuple[int, ...]]:
    """{key: shape} of the preset's transformer, computed on the meta device (nothing allocated)."""
    with torch.device("meta"):
        model = StarModel(preset.star)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _listing(kind: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:LIST_LIMIT])
    more = f" and {len(keys) - LIST_LIMIT} more" if len(keys) > LIST_LIMIT else ""
    return f"{len(keys)} {kind}: {shown}{more}"


def check_layout(state: dict, expected: dict[str, tuple[int, ...]], what: str, source: str, field: str) -> None:
    """CheckpointError naming every missing, unexpected and mis-shaped key of `state` against `expected`."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = sorted(
        f"{k} {tuple(state[k].shape)} (want {expected[k]})"
        for k in set(state) & set(expected)
        if tuple(state[k].shape) != expected[k]
    )
    if missing or unexpected or misshaped:
        parts = [_listing(kind, keys) for kind, keys in
                 (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]  # fmt: skip
        raise CheckpointError(
            f"{source} does not fit {what}: " + "; ".join(parts) + ". Is it the right file and preset?", field=field
        )


def check_state_dict(state: dict[str, torch.Tensor], preset: Preset, source: str = "checkpoint") -> dict:
    """Strip the prefix and compare with the layout; CheckpointError naming every mismatch."""
    state = {k[len(STRIP_PREFIX) :] if k.startswith(STRIP_PREFIX) else k: v for k, v in state.items()}
    check_layout(state, expected_layout(preset), f"preset {preset.name}", source, "checkpoint")
    return state


def read_tensors(path: Path, field: str) -> dict[str, torch.Tensor]:
    """{name: tensor} of a .safetensors file, or of a PyTorch state-dict file (.pth/.pt, read with
    weights_only: tensors only, no code runs), as the published TAEHV weights come in both."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no {field} file at {path}", field=field)
    try:
        if path.suffix in (".pth", ".pt", ".bin"):
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
                raise ValueError("not a flat state dict of tensors")
            return state
        from safetensors.torch import load_file

        return load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable safetensors or state-dict file: {exc}", field=field) from exc


def load_star(path: Path, preset: Preset) -> StarModel:
    """A StarModel with the checkpoint's weights, loaded strictly."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}", field="checkpoint")
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}", field="checkpoint") from exc
    state = check_state_dict(state, preset, str(path))
    model = StarModel(preset.star)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model


def autoencoder_layout(config: AutoencoderConfig) -> dict[str, tuple[int, ...]]:
    """{key: shape} of an autoencoder config's module, on the meta device."""
    with torch.device("meta"):
        ae = build_autoencoder(config)
    return {k: tuple(v.shape) for k, v in ae.state_dict().items()}


def autoencoder_kind(state: dict) -> str:
    """ "tiny" for our autoencoder's files (modules under encoder.layers / decoder.layers), else "taehv"."""
    return "tiny" if any(k.startswith(("encoder.layers.", "decoder.layers.")) for k in state) else "taehv"


def load_autoencoder(path: Path | None, preset: Preset) -> tuple[TinyAutoencoder | Taehv, str]:
    """The autoencoder a bundle uses: freshly initialised (no file), ours from a file of its layout, or the
    TAEHV layout (the published `taew2_1`, .safetensors or .pth) loaded strictly. The file's layout decides."""
    if path is None:
        return build_autoencoder(preset.autoencoder), "random"
    state = read_tensors(path, "autoencoder")
    config = preset.autoencoder
    if autoencoder_kind(state) == "taehv":
        config = TAEW2_1
        if preset.star.latent_channels != TAEW2_1.latent_channels or preset.autoencoder.temporal_stride != 4:
            raise CheckpointError(f"{path} has the TAEHV layout (Wan2.1 latents: 16 channels, 4 frames each); preset "
                                  f"{preset.name} has {preset.star.latent_channels} latent channels and a temporal "
                                  f"stride of {preset.autoencoder.temporal_stride}", field="autoencoder")  # fmt: skip
    what = "the TAEHV (taew2_1) layout" if config.kind == "taehv" else f"the {preset.name} autoencoder"
    check_layout(state, autoencoder_layout(config), what, str(path), "autoencoder")
    ae = build_autoencoder(config)
    ae.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return ae, f"{config.kind}:{Path(path).name}"


def load_text_embedding(path: Path, preset: Preset) -> np.ndarray:
    """(1, text_len, text_dim) float32 from a .npy or a one-tensor .safetensors file holding (n, dim) or
    (1, n, dim) with n <= text_len; shorter ones are zero-padded to text_len, as Wan pads its umt5 output."""
    s = preset.star
    if not s.text_dim:
        raise CheckpointError(f"preset {preset.name} has no cross-attention: it takes no text embedding",
                              field="text_embedding")  # fmt: skip
    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise CheckpointError(f"no text embedding at {path}", field="text_embedding")
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise CheckpointError(f"{path} is not a readable .npy file: {exc}", field="text_embedding") from exc
    else:
        tensors = read_tensors(path, "text_embedding")
        if len(tensors) != 1:
            raise CheckpointError(f"{path} holds {len(tensors)} tensors ({', '.join(sorted(tensors)[:4])}); "
                                  "want exactly one text embedding", field="text_embedding")  # fmt: skip
        array = next(iter(tensors.values())).float().numpy()
    shape = tuple(array.shape)
    if array.ndim == 3 and shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or array.shape[1] != s.text_dim or not 0 < array.shape[0] <= s.text_len:
        raise CheckpointError(
            f"text embedding {path} has shape {shape}; preset {preset.name} wants (n, {s.text_dim}) "
            f"or (1, n, {s.text_dim}) with 1 <= n <= {s.text_len}",
            field="text_embedding",
        )
    if not np.isfinite(array).all():
        raise CheckpointError(f"text embedding {path} has non-finite values", field="text_embedding")
    out = np.zeros((1, s.text_len, s.text_dim), np.float32)
    out[0, : array.shape[0]] = array
    return out


def convert(
    checkpoint: Path,
    preset: Preset,
    out_dir: Path,
    *,
    autoencoder: Path | None = None,
    text_embedding: Path | None = None,
    dtype: str = "float32",
    overwrite: bool = False,
    progress=None,
) -> Path:
    """Checkpoint (+ autoencoder file, + text embedding file) -> bundle at `out_dir`, every file checked
    before anything is exported."""
    model = load_star(checkpoint, preset)
    ae, ae_source = load_autoencoder(autoencoder, preset)
    text = load_text_embedding(text_embedding, preset) if text_embedding is not None else None
    if ae.config != preset.autoencoder:  # e.g. TAEHV in place of the preset's own autoencoder
        preset = replace(preset, autoencoder=ae.config)
    text_source = f"; text {Path(text_embedding).name}" if text_embedding is not None else ""
    weights = f"checkpoint:{Path(checkpoint).name}; autoencoder {ae_source}{text_source}"
    return export_bundle(preset, model, ae, out_dir, dtype=dtype, weights=weights, overwrite=overwrite,
                         progress=progress, text_embedding=text, mask_convention=MASK_WAN)  # fmt: skip
