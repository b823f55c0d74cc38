"""The STAR layouts: the published 1.3B module names and shapes (checked on the meta device, nothing
allocated), rotary and timestep embeddings as docs/architecture.md §6 fixes them, and cache masking."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from starbridge.model.convert import expected_layout  # noqa: E402
from starbridge.model.presets import PRESETS, get_preset  # noqa: E402
from starbridge.model.star import (  # noqa: E402
    StarModel,
    apply_rope,
    rope_axis_dims,
    rope_tables,
    sinusoidal_embedding,
)


def test_inspatio_layout_matches_the_published_checkpoint_names_and_shapes():
    layout = expected_layout(get_preset("inspatio-1.3b"))
    d = 1536
    expect = {
        "patch_embedding.weight": (d, 36, 1, 2, 2),
        "patch_embedding.bias": (d,),
        "text_embedding.0.weight": (d, 4096),
        "text_embedding.2.weight": (d, d),
        "time_embedding.0.weight": (d, 256),
        "time_embedding.2.weight": (d, d),
        "time_projection.1.weight": (6 * d, d),
        "head.head.weight": (16 * 4, d),
        "head.modulation": (1, 2, d),
    }
    for n in (0, 29):
        b = f"blocks.{n}."
        expect |= {
            b + "modulation": (1, 6, d),
            b + "norm3.weight": (d,),
            b + "norm3.bias": (d,),
            b + "ffn.0.weight": (8960, d),
            b + "ffn.2.weight": (d, 8960),
        }
        for attn in ("self_attn", "cross_attn"):
            for proj in "qkvo":
                expect[f"{b}{attn}.{proj}.weight"] = (d, d)
                expect[f"{b}{attn}.{proj}.bias"] = (d,)
            expect[f"{b}{attn}.norm_q.weight"] = (d,)
            expect[f"{b}{attn}.norm_k.weight"] = (d,)
    for key, shape in expect.items():
        assert layout.get(key) == shape, key
    assert "blocks.30.modulation" not in layout
    assert not any(k.startswith(("blocks.0.norm1", "blocks.0.norm2", "head.norm")) for k in layout)  # no affine
    params = sum(math.prod(s) for s in layout.values())
    assert 1.3e9 < params < 1.5e9


def test_test_presets_keep_the_module_names():
    full = set(expected_layout(get_preset("inspatio-1.3b")))
    small = set(expected_layout(get_preset("inspatio-1.3b-test")))
    rename = {k.replace("blocks.1.", "blocks.0.") for k in small}
    assert rename <= {k for k in full if not k.startswith("blocks.") or k.startswith("blocks.0.")}
    assert set(PRESETS) >= {"star-tiny", "inspatio-1.3b", "star-tiny-test", "inspatio-1.3b-test"}


def test_rope_split_and_frequencies():
    assert rope_axis_dims(128) == (44, 42, 42)
    cfg = get_preset("inspatio-1.3b").star
    cos, sin = rope_tables(cfg, frames=3, t_offset=6)
    _, gh, gw = cfg.grid
    assert cos.shape == (3 * gh * gw, 64)
    # token (f=1, h=2, w=3): temporal slots use position 7, height slots 2, width slots 3
    tok = 1 * gh * gw + 2 * gw + 3
    angles = torch.atan2(sin[tok], cos[tok])
    t_freq = 10000.0 ** (-torch.arange(0, 44, 2, dtype=torch.float64) / 44)
    h_freq = 10000.0 ** (-torch.arange(0, 42, 2, dtype=torch.float64) / 42)
    expected = torch.cat([7 * t_freq, 2 * h_freq, 3 * h_freq])
    wrapped = torch.remainder(expected + math.pi, 2 * math.pi) - math.pi
    assert torch.allclose(angles.double(), wrapped, atol=1e-5)


def test_rope_is_a_rotation_of_adjacent_pairs():
    x = torch.randn(1, 2, 5, 12)
    cos, sin = torch.cos(torch.ones(5, 6)), torch.sin(torch.ones(5, 6))
    y = apply_rope(x, cos, sin)
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    c, s = math.cos(1.0), math.sin(1.0)
    assert torch.allclose(y[..., 0], x[..., 0] * c - x[..., 1] * s, atol=1e-6)
    assert torch.allclose(y[..., 1], x[..., 0] * s + x[..., 1] * c, atol=1e-6)


def test_timestep_embedding_is_cos_then_sin():
    e = sinusoidal_embedding(torch.tensor([0.0, 500.0]), 256)
    assert e.shape == (2, 256)
    ones, zeros = torch.ones(128, dtype=e.dtype), torch.zeros(128, dtype=e.dtype)
    assert torch.equal(e[0, :128], ones) and torch.equal(e[0, 128:], zeros)
    assert e[1, 0] == pytest.approx(math.cos(500.0), abs=1e-4)
    assert e[1, 128 + 1] == pytest.approx(math.sin(500.0 * 10000 ** (-1 / 128)), abs=1e-4)


def test_timestep_embedding_is_float64_as_the_official_code():
    """At t ~ 1000 the angles are ~1e3 rad: in float32 their rounding (~6e-5) shows, in float64 it does not.
    Python's math is float64 throughout, as Wan's sinusoidal_embedding_1d."""
    t = 937.5
    e = sinusoidal_embedding(torch.tensor([t], dtype=torch.float32), 256)
    assert e.dtype == torch.float64
    angles = [t * 10000 ** (-i / 128) for i in range(128)]
    want = [math.cos(a) for a in angles] + [math.sin(a) for a in angles]
    assert torch.allclose(e[0], torch.tensor(want, dtype=torch.float64), atol=1e-12, rtol=0)
    # what float32 angles would give is measurably off (the error the float64 embedding removes)
    half = torch.arange(128, dtype=torch.float32)
    f32 = torch.cos(torch.tensor(t) * torch.pow(10000.0, -half / 128)).double()
    assert (f32 - e[0, :128]).abs().max() > 1e-6


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    preset = get_preset("star-tiny-test")
    return preset, StarModel(preset.star).eval()


def _inputs(preset, seed=0):
    s = preset.star
    g = torch.Generator().manual_seed(seed)
    shape = (1, s.latent_channels, s.block_frames, s.latent_height, s.latent_width)
    cond = torch.randn(1, s.mask_channels + s.latent_channels, *shape[2:], generator=g)
    return torch.randn(*shape, generator=g), cond


@torch.no_grad()
def test_padding_in_the_cache_is_masked(tiny):
    preset, model = tiny
    s = preset.star
    ref = torch.randn(1, s.latent_channels, s.block_frames, s.latent_height, s.latent_width)
    valid = torch.tensor(s.block_tokens)  # first block: no previous block
    outs = []
    for junk in (torch.zeros_like(ref), 100 * torch.randn_like(ref)):
        k, v = model.forward_context(torch.cat([ref, junk], dim=2), valid)
        noisy, cond = _inputs(preset)
        outs.append(model.forward_step(noisy, cond, torch.tensor([900.0]), k, v, valid))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    # with the previous block counted, it does matter
    k, v = model.forward_context(torch.cat([ref, 100 * torch.randn_like(ref)], dim=2), torch.tensor(s.context_tokens))
    noisy, cond = _inputs(preset)
    counted = model.forward_step(noisy, cond, torch.tensor([900.0]), k, v, torch.tensor(s.context_tokens))
    assert not torch.allclose(outs[0], counted, atol=1e-3)


@torch.no_grad()
def test_step_reads_the_cache_and_the_condition(tiny):
    preset, model = tiny
    s = preset.star
    shape = (1, s.latent_channels, 2 * s.block_frames, s.latent_height, s.latent_width)
    valid = torch.tensor(s.context_tokens)
    k1, v1 = model.forward_context(torch.randn(shape), valid)
    k2, v2 = model.forward_context(torch.randn(shape), valid)
    noisy, cond = _inputs(preset)
    t = torch.tensor([800.0])
    a = model.forward_step(noisy, cond, t, k1, v1, valid)
    assert a.shape == noisy.shape
    assert not torch.allclose(a, model.forward_step(noisy, cond, t, k2, v2, valid), atol=1e-4)
    assert not torch.allclose(a, model.forward_step(noisy, torch.zeros_like(cond), t, k1, v1, valid), atol=1e-4)


def test_bad_shapes_are_named(tiny):
    preset, model = tiny
    with pytest.raises(AssertionError, match="context latents"):
        model.forward_context(torch.zeros(1, 3, 2, 4, 4), torch.tensor(1))
