"""Condition conventions per model.json: the published pipeline's validity mask ("wan": binary in [-1, 1],
bilinear to the latent grid, first frame repeated to fill the temporal stride) against PyTorch's own resize
and a whole-stream restatement of the official `convert_mask_video`; star-tiny keeps its pooled mask."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from starbridge.errors import InvalidArgument  # noqa: E402
from starbridge.runtime.bundle import packaged_models, read_model  # noqa: E402
from starbridge.runtime.condition import (  # noqa: E402
    MASK_POOL,
    MASK_WAN,
    PoolMasks,
    WanMaskStream,
    mask_encoder,
    pool_masks,
    wan_mask_frames,
)


def random_masks(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, h // 4, w // 4)) > 0.4  # blobs, not salt and pepper
    return np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)


def official_mask_latents(masks: np.ndarray, lh: int, lw: int, stride: int = 4) -> np.ndarray:
    """The official convert_mask_video restated on a whole stream: (T, H, W) bool -> (1, stride, T / stride, h, w)."""
    video = torch.from_numpy(masks.astype(np.float32) * 2 - 1)[:, None]  # (T, 1, H, W) in [-1, 1]
    small = F.interpolate(video, size=(lh, lw), mode="bilinear", align_corners=False)[:, 0]
    small = torch.cat([small[:1].repeat_interleave(stride, dim=0), small[1:]])
    small = small[: small.shape[0] - small.shape[0] % stride]
    return small.reshape(-1, stride, lh, lw).permute(1, 0, 2, 3)[None].numpy()


@pytest.mark.parametrize(("h", "w", "lh", "lw"), [(480, 832, 60, 104), (64, 96, 8, 12), (36, 20, 7, 3)])
def test_wan_mask_resize_is_pytorch_bilinear(h, w, lh, lw):
    masks = random_masks(3, h, w) if h % 4 == 0 and w % 4 == 0 else np.random.default_rng(1).random((3, h, w)) > 0.5
    ours = wan_mask_frames(masks, lh, lw)
    theirs = F.interpolate(torch.from_numpy(masks.astype(np.float32) * 2 - 1)[:, None], size=(lh, lw),
                           mode="bilinear", align_corners=False)[:, 0].numpy()  # fmt: skip
    assert ours.dtype == np.float32 and ours.shape == (3, lh, lw)
    assert np.abs(ours - theirs).max() < 1e-5  # PyTorch computes the source coordinates in float32
    assert ours.min() >= -1 and ours.max() <= 1


def test_wan_mask_stream_equals_the_official_whole_stream():
    """Blocks of 12 frames through WanMaskStream give the official latents of the whole stream, block by block
    (latent frame j >= 1 covers video frames 4j-3..4j, so 3 frames of each block wait for the next)."""
    masks = random_masks(36, 64, 96)
    want = official_mask_latents(masks, 8, 12)  # 36 frames + 3 repeats -> 9 latent frames (3 frames left over)
    stream = mask_encoder(MASK_WAN, 8, 12, 4)
    blocks = [stream(masks[i : i + 12]) for i in range(0, 36, 12)]
    assert all(b.shape == (1, 4, 3, 8, 12) and b.dtype == np.float32 for b in blocks)
    assert np.abs(np.concatenate(blocks, axis=2) - want).max() < 1e-6
    # the first latent frame is frame 0 alone, repeated over the 4 mask channels
    assert all(np.array_equal(blocks[0][0, c, 0], blocks[0][0, 0, 0]) for c in range(4))
    stream.reset()  # a new stream starts with its own frame 0 again
    assert np.array_equal(stream(masks[12:24]), official_mask_latents(masks[12:24], 8, 12)[:, :, :3])
    with pytest.raises(ValueError, match="whole latent frames"):
        stream(masks[:6])


def test_star_tiny_keeps_the_pooled_mask():
    masks = random_masks(2, 144, 256)
    enc = mask_encoder(MASK_POOL, 18, 32, 1)
    assert isinstance(enc, PoolMasks)
    assert np.array_equal(enc(masks), pool_masks(masks, 18, 32, 1))
    assert 0 <= enc(masks).min() and enc(masks).max() <= 1  # fractions, not [-1, 1]
    assert isinstance(mask_encoder(MASK_WAN, 18, 32, 1), WanMaskStream)
    with pytest.raises(ValueError, match="unknown mask convention"):
        mask_encoder("nearest", 18, 32, 1)


def test_model_json_conventions_default_to_star_tiny_and_are_checked(tmp_path: Path):
    shipped = packaged_models()["star-tiny"]
    doc = json.loads((shipped / "model.json").read_text())
    assert "conventions" not in doc or doc["conventions"]["mask"] == MASK_POOL  # shipped bundle unchanged
    info = read_model(shipped)
    assert (info.mask_convention, info.autoencoder, info.startup_frames) == (MASK_POOL, "tiny", 0)
    copy = tmp_path / "copy"
    shutil.copytree(shipped, copy)
    doc["conventions"] = {"mask": "nearest", "autoencoder": "tiny", "startup_frames": 0}
    (copy / "model.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidArgument, match="unknown mask convention 'nearest'"):
        read_model(copy)
    doc["conventions"] = {"mask": MASK_WAN, "autoencoder": "tiny", "startup_frames": 2}  # star-tiny: 2 per block
    (copy / "model.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidArgument, match="startup_frames 2 must be in"):
        read_model(copy)
    doc["conventions"]["startup_frames"] = 1
    (copy / "model.json").write_text(json.dumps(doc))
    assert (read_model(copy).mask_convention, read_model(copy).startup_frames) == (MASK_WAN, 1)
