"""Checkpoint conversion: load a published-layout STAR checkpoint (safetensors) strictly, then export a bundle.

    starbridge model convert inspatio.safetensors --preset inspatio-1.3b --out bundles/inspatio-1.3b

Keys may carry a leading ``model.`` (as in the published checkpoint); it is stripped. Every key of
the preset's layout must be present with its exact shape, and nothing else may be: the error lists
missing, unexpected and mis-shaped keys so a wrong file or a wrong preset is plain at once.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InvalidArgument
from .autoencoder import TinyAutoencoder
from .export import export_bundle
from .presets import Preset
from .star import StarModel

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


def check_state_dict(state: dict[str, torch.Tensor], preset: Preset, source: str = "checkpoint") -> dict:
    """Strip the prefix and compare with the layout; CheckpointError naming every mismatch."""
    state = {k[len(STRIP_PREFIX) :] if k.startswith(STRIP_PREFIX) else k: v for k, v in state.items()}
    expected = expected_layout(preset)
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
            f"{source} does not fit preset {preset.name}: " + "; ".join(parts) + ". Is it the right file and preset?",
            field="checkpoint",
        )
    return state


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


def load_autoencoder(path: Path | None, preset: Preset) -> tuple[TinyAutoencoder, str]:
    """Our tiny autoencoder from a safetensors file of its own layout, or freshly initialised."""
    ae = TinyAutoencoder(preset.autoencoder)
    if path is None:
        return ae, "random"
    from safetensors.torch import load_file

    state = load_file(str(path))
    want = {k: tuple(v.shape) for k, v in ae.state_dict().items()}
    bad = sorted(set(want) ^ set(state)) + sorted(k for k in set(want) & set(state) if tuple(state[k].shape) != want[k])
    if bad:
        raise CheckpointError(f"{path} does not fit the {preset.name} autoencoder: {', '.join(bad[:LIST_LIMIT])}",
                              field="autoencoder")  # fmt: skip
    ae.load_state_dict(state, strict=True)
    return ae, f"checkpoint:{Path(path).name}"


def convert(
    checkpoint: Path,
    preset: Preset,
    out_dir: Path,
    *,
    autoencoder: Path | None = None,
    dtype: str = "float32",
    overwrite: bool = False,
    progress=None,
) -> Path:
    model = load_star(checkpoint, preset)
    ae, ae_source = load_autoencoder(autoencoder, preset)
    weights = f"checkpoint:{Path(checkpoint).name}; autoencoder {ae_source}"
    return export_bundle(preset, model, ae, out_dir, dtype=dtype, weights=weights, overwrite=overwrite,
                         progress=progress)  # fmt: skip
