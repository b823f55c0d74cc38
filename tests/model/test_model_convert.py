"""`starbridge model convert`: a synthetic checkpoint with exactly the published names (reduced sizes),
written with safetensors, becomes a working bundle; wrong files get errors that name every bad key."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from starbridge.cli import main  # noqa: E402
from starbridge.model.convert import CheckpointError, check_state_dict, expected_layout, load_star  # noqa: E402
from starbridge.model.presets import get_preset  # noqa: E402
from starbridge.runtime.bundle import read_model  # noqa: E402

PRESET = get_preset("inspatio-1.3b-test")


def synthetic_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the published names, each with a leading `model.` as the checkpoint has."""
    g = torch.Generator().manual_seed(seed)
    return {f"model.{k}": torch.randn(shape, generator=g) * 0.02 for k, shape in expected_layout(PRESET).items()}


def test_convert_loads_strictly_and_exports(tmp_path: Path, capsys):
    state = synthetic_state()
    ckpt = tmp_path / "inspatio.safetensors"
    safetensors_torch.save_file(state, str(ckpt))
    model = load_star(ckpt, PRESET)
    loaded = model.state_dict()
    for key in ("patch_embedding.weight", "blocks.1.self_attn.norm_k.weight", "head.modulation"):
        assert torch.equal(loaded[key], state["model." + key])
    out = tmp_path / "bundle"
    assert main(["model", "convert", str(ckpt), "--preset", PRESET.name, "--out", str(out)]) == 0
    info = read_model(out)
    assert info.name == PRESET.name and "inspatio.safetensors" in info.weights
    assert main(["model", "info", str(out)]) == 0
    assert "KV cache" in capsys.readouterr().out


def test_errors_name_missing_unexpected_and_misshaped_keys():
    state = {k: v for k, v in synthetic_state().items()}
    del state["model.blocks.0.self_attn.q.weight"]
    state["model.blocks.0.extra.weight"] = torch.zeros(3)
    state["model.head.modulation"] = torch.zeros(1, 3, PRESET.star.dim)
    with pytest.raises(CheckpointError) as info:
        check_state_dict(state, PRESET)
    msg = info.value.message
    assert "1 missing: blocks.0.self_attn.q.weight" in msg
    assert "1 unexpected: blocks.0.extra.weight" in msg
    assert f"head.modulation (1, 3, {PRESET.star.dim}) (want (1, 2, {PRESET.star.dim}))" in msg


def test_wrong_preset_and_bad_file(tmp_path: Path, capsys):
    ckpt = tmp_path / "c.safetensors"
    safetensors_torch.save_file({k: v for k, v in synthetic_state().items()}, str(ckpt))
    with pytest.raises(CheckpointError, match="does not fit preset star-tiny-test"):
        load_star(ckpt, get_preset("star-tiny-test"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.random.default_rng(0).bytes(100))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_star(junk, PRESET)
    assert main(["model", "convert", str(tmp_path / "nope.safetensors"), "--preset", PRESET.name,
                 "--out", str(tmp_path / "o")]) == 1  # fmt: skip
    assert "no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_text_embedding_files_are_shape_checked_and_padded(tmp_path: Path):
    from starbridge.model.convert import load_text_embedding

    s = PRESET.star  # text_len 8, text_dim 64
    rng = np.random.default_rng(0)
    caption = rng.standard_normal((3, s.text_dim)).astype(np.float32)
    np.save(tmp_path / "a.npy", caption)
    got = load_text_embedding(tmp_path / "a.npy", PRESET)
    assert got.shape == (1, s.text_len, s.text_dim) and got.dtype == np.float32
    assert np.array_equal(got[0, :3], caption) and not got[0, 3:].any()
    full = rng.standard_normal((1, s.text_len, s.text_dim)).astype(np.float32)
    safetensors_torch.save_file({"prompt_embeds": torch.from_numpy(full)}, str(tmp_path / "b.safetensors"))
    assert np.array_equal(load_text_embedding(tmp_path / "b.safetensors", PRESET), full)
    bad = {
        "wide.npy": np.zeros((3, s.text_dim + 1), np.float32),
        "long.npy": np.zeros((s.text_len + 1, s.text_dim), np.float32),
        "batch.npy": np.zeros((2, 3, s.text_dim), np.float32),
    }
    for name, array in bad.items():
        np.save(tmp_path / name, array)
        with pytest.raises(CheckpointError, match=rf"has shape {re.escape(str(array.shape))}; preset .* wants"):
            load_text_embedding(tmp_path / name, PRESET)
    safetensors_torch.save_file({"a": torch.zeros(2, s.text_dim), "b": torch.zeros(2, s.text_dim)},
                                str(tmp_path / "two.safetensors"))  # fmt: skip
    with pytest.raises(CheckpointError, match="holds 2 tensors"):
        load_text_embedding(tmp_path / "two.safetensors", PRESET)
    with pytest.raises(CheckpointError, match="no cross-attention"):
        load_text_embedding(tmp_path / "a.npy", get_preset("star-tiny-test"))
    with pytest.raises(CheckpointError, match="no text embedding at"):
        load_text_embedding(tmp_path / "missing.npy", PRESET)


def test_convert_with_a_wrong_text_embedding_fails_before_exporting(tmp_path: Path, capsys):
    ckpt = tmp_path / "c.safetensors"
    safetensors_torch.save_file(synthetic_state(), str(ckpt))
    np.save(tmp_path / "t.npy", np.zeros((4, PRESET.star.text_dim * 2), np.float32))
    assert main(["model", "convert", str(ckpt), "--preset", PRESET.name, "--out", str(tmp_path / "o"),
                 "--text-embedding", str(tmp_path / "t.npy")]) == 1  # fmt: skip
    assert f"wants (n, {PRESET.star.text_dim})" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
