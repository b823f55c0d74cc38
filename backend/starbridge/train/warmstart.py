"""Warm start: a new autoencoder initialised from a bundle's trained one, widened where it is wider.

The autoencoder is the slowest part of the recipe to train from scratch, and the shipped star-tiny's already
reconstructs at about 25.5 dB. Its weights are read from the bundle's ONNX graphs (the exporter keeps the
module names: `ae.encoder.*`, `ae.decoder.*`) and copied into a new autoencoder of the same hidden width. When
the new one has more latent channels (star-world: 8 against star-tiny's 4), the extra encoder outputs keep their
fresh initialisation and the decoder's weights for them start at zero, so the widened autoencoder computes
exactly what the old one did (the same reconstruction) and training teaches it to use the new channels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..model.autoencoder import TinyAutoencoder
from ..runtime.bundle import read_model, resolve_model


def bundle_autoencoder_weights(bundle: Path | str) -> dict[str, np.ndarray]:
    """{module name: array} of the autoencoder in a bundle's encoder and decoder graphs (prefix "ae." removed)."""
    import onnx
    from onnx import numpy_helper

    info = read_model(resolve_model(bundle))
    out: dict[str, np.ndarray] = {}
    for graph in ("encoder", "decoder"):
        model = onnx.load(str(info.graph(graph)))
        for init in model.graph.initializer:
            if init.name.startswith("ae."):
                out[init.name[3:]] = numpy_helper.to_array(init)
    if not out:
        raise ValueError(f"{bundle}: its graphs name no autoencoder weights (ae.*): cannot warm-start from it")
    return out


def widen_into(ae: TinyAutoencoder, weights: dict[str, np.ndarray]) -> list[str]:
    """Copy `weights` into `ae` in place; a tensor of `ae` that is larger along its first two dimensions takes
    the old values in its leading slice and keeps the rest (decoder inputs for new latent channels: zeroed).
    Returns the names widened. ValueError when a name is missing or a shape cannot hold the old one."""
    state = ae.state_dict()
    missing = sorted(set(state) - set(weights))
    if missing:
        raise ValueError(f"the bundle's autoencoder lacks {', '.join(missing[:4])}: a different layout")
    widened = []
    first_decoder = "decoder.layers.0.weight"
    last = len(ae.encoder.layers) - 1
    latent_side = {f"encoder.layers.{last}.weight", f"encoder.layers.{last}.bias", first_decoder}
    with torch.no_grad():
        for name, tensor in state.items():
            old = torch.from_numpy(np.array(weights[name])).to(tensor.dtype)
            if old.shape == tensor.shape:
                tensor.copy_(old)
                continue
            fits = old.dim() == tensor.dim() and all(o <= n for o, n in zip(old.shape, tensor.shape, strict=True))
            if name not in latent_side or not fits:  # only the latent channels may grow (that keeps the function)
                raise ValueError(f"{name}: {tuple(old.shape)} does not fit into {tuple(tensor.shape)}")
            if name == first_decoder:
                tensor.zero_()  # new latent channels contribute nothing until trained
            tensor[tuple(slice(0, s) for s in old.shape)] = old
            widened.append(name)
    ae.load_state_dict(state)
    return widened
