"""Device handling: everything the model makes in a pass lives on the device of its weights and inputs.

No GPU here: the meta device stands in for one (a tensor made on the CPU and mixed with meta tensors raises
"Tensor on device cpu is not on the expected device meta", exactly where a CUDA run would fail)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from starbridge.model.export import example_inputs  # noqa: E402
from starbridge.model.pipeline import TorchEngine  # noqa: E402
from starbridge.model.presets import get_preset  # noqa: E402
from starbridge.model.star import StarModel  # noqa: E402
from starbridge.model.taehv import Taehv, build_autoencoder  # noqa: E402


@pytest.mark.parametrize("name", ["star-tiny-test", "inspatio-1.3b-test"])
def test_passes_stay_on_the_model_device(name):
    preset = get_preset(name)
    s = preset.star
    with torch.device("meta"):
        model = StarModel(s).eval()
    inputs = example_inputs(preset, device="meta")
    assert all(t.device.type == "meta" for ts in inputs.values() for t in ts)
    with torch.no_grad():
        cache_k, cache_v = model.forward_context(*inputs["context"])
        assert cache_k.device.type == "meta" and cache_k.shape == (s.num_layers, 1, s.num_heads, s.context_tokens,
                                                                    s.head_dim)  # fmt: skip
        step = inputs["step"]
        # `valid` made on the CPU (as a caller may) still works against a model elsewhere
        v = model.forward_step(step[0], step[1], step[2], cache_k, cache_v, torch.tensor(s.context_tokens), *step[6:])
    assert v.device.type == "meta" and v.shape == step[0].shape
    assert model.key_bias(torch.tensor(3), 5).device.type == "meta"


def test_torch_engine_puts_everything_on_its_device():
    preset = get_preset("inspatio-1.3b-test")
    s = preset.star
    model = StarModel(s)
    engine = TorchEngine(model, build_autoencoder(preset.autoencoder), device="meta")
    assert engine._text is not None and engine._text.device.type == "meta"
    latents = np.zeros((1, s.latent_channels, 2 * s.block_frames, s.latent_height, s.latent_width), np.float32)
    engine.context(latents, s.block_tokens)  # context() was where the CPU-made zero condition met CUDA weights
    assert engine._cache is not None and engine._cache[0].device.type == "meta"


def test_torch_engine_feeds_a_half_precision_model_its_own_precision():
    """A float16 / bfloat16 model (as on a GPU; bfloat16 runs on the CPU) gets every floating input in its own
    precision, the autoencoder in its own (here float32), and the engine returns float32 (an H200 run fed float32
    latents to a float16 model: "Input type (float) and bias type (c10::Half) should be the same")."""
    preset = get_preset("inspatio-1.3b-test")
    s = preset.star
    torch.manual_seed(0)
    engine = TorchEngine(StarModel(s).to(torch.bfloat16), build_autoencoder(preset.autoencoder))
    assert engine._text is not None and engine._text.dtype == torch.bfloat16
    latents = np.zeros((1, s.latent_channels, 2 * s.block_frames, s.latent_height, s.latent_width), np.float32)
    engine.context(latents, s.block_tokens)
    assert engine._cache is not None and engine._cache[0].dtype == torch.bfloat16
    step = example_inputs(preset, device="cpu")["step"]  # the step's (noisy latents, condition) shapes
    x = np.random.default_rng(0).standard_normal(tuple(step[0].shape)).astype(np.float32)
    v = engine.step(x, np.zeros(tuple(step[1].shape), np.float32), 0.5, s.block_tokens)
    assert v.dtype == np.float32 and v.shape == x.shape and np.isfinite(v).all()
    frames = engine.decode(x)
    assert frames.dtype == np.float32


def test_taehv_memory_follows_its_input():
    from starbridge.model.config import AutoencoderConfig

    with torch.device("meta"):
        ae = Taehv(AutoencoderConfig(latent_channels=16, width=8, temporal_stride=4, kind="taehv"))
        frames = torch.zeros(4, 3, 16, 16)
    latents, memory = ae.encode_stream(frames)
    assert latents.device.type == "meta" and all(m.device.type == "meta" for m in memory)
    out, memory = ae.decode_stream(latents, memory=None)
    assert out.shape == (4, 3, 16, 16) and all(m.device.type == "meta" for m in memory)
    zero = ae.zero_memory("decoder", 16, 16, like=latents)
    assert [m.shape for m in zero] == [m.shape for m in memory] and zero[0].device.type == "meta"
