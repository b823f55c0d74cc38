"""The colour-guided depth upsampling (capture/depth_upsample.py): the compiled kernel against a NumPy reference
(same bits), the relative agreement threshold (scale does not change the choice), and the frame loop."""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.scenes.capture.depth_ops import resize_rgb
from starbridge.scenes.capture.depth_upsample import upsample, upsample_frames


def reference(rho: np.ndarray, rgb_small: np.ndarray, frame: np.ndarray, blend: float) -> np.ndarray:
    """The upsampling in plain NumPy, float32 in the kernel's order (module docstring)."""
    h, w = rho.shape
    height, width = frame.shape[:2]
    x = (np.arange(width) + 0.5) * w / width - 0.5
    y = (np.arange(height) + 0.5) * h / height - 0.5
    x0 = np.clip(np.floor(x).astype(np.intp), 0, w - 1)
    y0 = np.clip(np.floor(y).astype(np.intp), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx = np.clip(x - x0, 0.0, 1.0).astype(np.float32)[None, :]
    fy = np.clip(y - y0, 0.0, 1.0).astype(np.float32)[:, None]
    corners = [(y0[:, None], x0[None, :]), (y0[:, None], x1[None, :]), (y1[:, None], x0[None, :]),
               (y1[:, None], x1[None, :])]  # fmt: skip
    vals = np.stack([rho[r, c] for r, c in corners])
    wts = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    lo, hi = vals.min(axis=0), vals.max(axis=0)
    mix = (wts * vals).sum(axis=0)
    agree = ((lo > 0) & (hi <= lo * (np.float32(1.0) + np.float32(blend)))) | (hi <= 0)
    colour = frame.astype(np.float32) * np.float32(1.0 / 255.0)
    dist = np.stack([np.abs(rgb_small[r, c] - colour).sum(axis=2) for r, c in corners])
    dist += np.float32(0.02) * (1.0 - wts)
    pick = np.take_along_axis(vals, np.argmin(dist, axis=0)[None], axis=0)[0]
    out = np.where(agree, mix, pick)
    with np.errstate(divide="ignore"):
        return np.where(out > 0, 1.0 / out, np.inf).astype(np.float32)


def scene(h: int, w: int, height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Working-size inverse depth (a slanted floor, a near box with sharp edges, sky) and a full-size frame whose
    colours follow the same regions, with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    rho = (0.1 + 0.3 * yy / h).astype(np.float32)
    box = (yy > h // 3) & (yy < 2 * h // 3) & (xx > w // 4) & (xx < w // 2)
    rho[box] = 0.8
    rho[: h // 5] = 0.0
    rows = (np.arange(height) + 0.5) * h / height
    cols = (np.arange(width) + 0.5) * w / width
    fy, fx = np.meshgrid(rows, cols, indexing="ij")
    frame = np.empty((height, width, 3), np.float32)
    frame[:] = (90, 140, 60)
    frame[fy < h / 5] = (150, 190, 240)
    in_box = (fy > h // 3 + 1) & (fy < 2 * h // 3) & (fx > w // 4 + 1) & (fx < w // 2)
    frame[in_box] = (200, 40, 30)
    frame += rng.normal(0, 3, frame.shape)
    return rho, np.clip(frame, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [(24, 32, 72, 128), (27, 48, 100, 170), (10, 10, 10, 31)])
def test_kernel_matches_numpy_bit_for_bit(size):
    h, w, height, width = size
    rho, frame = scene(h, w, height, width)
    small = resize_rgb(frame, (h, w))
    got = upsample(rho, small, frame, 0.1)
    np.testing.assert_array_equal(got, reference(rho, small, frame, 0.1))
    # random inverse depths, a fifth at infinity: every pixel takes the colour path or the blend
    rng = np.random.default_rng(3)
    noisy = (rng.random((h, w)) + 0.05).astype(np.float32)
    noisy[rng.random((h, w)) < 0.2] = 0.0
    np.testing.assert_array_equal(upsample(noisy, small, frame, 0.1), reference(noisy, small, frame, 0.1))


def test_edges_stay_sharp_and_smooth_parts_blend():
    rho, frame = scene(24, 32, 96, 128)
    depth = upsample(rho, resize_rgb(frame, (24, 32)), frame, 0.1)
    assert np.isinf(depth[:10]).all()  # sky rows (the top fifth, 4.8 working rows) stay at infinity
    box = np.all(frame == frame[48, 48], axis=2) | (np.abs(frame.astype(int) - (200, 40, 30)).max(axis=2) < 15)
    inside = box[30:60, 36:60]
    # inside the red box every depth is the box's (1 / 0.8); no value between box and floor (no flying pixels)
    np.testing.assert_allclose(depth[30:60, 36:60][inside], 1 / 0.8, rtol=1e-6)
    finite = depth[np.isfinite(depth)]
    between = (finite > 1 / 0.8 * 1.001) & (finite < 1 / 0.4 * 0.999)  # nearest floor is rho 0.1 + 0.3 * 1/3
    floor_band = (finite > 1 / 0.41) | (finite < 1 / 0.79)
    assert not (between & ~floor_band).any()
    # the floor is a smooth ramp: neighbouring rows differ by less than the blend's 10 %
    col = depth[70:96, 100]
    assert (np.abs(np.diff(1 / col)) / (1 / col[1:]) < 0.1).all()


def test_agreement_threshold_is_relative():
    """Multiplying the inverse depth by a factor divides the depth by it: the blend-or-pick choice is the same
    at every scale (the bundle upsamples in scene units what capture upsampled in tracking units)."""
    rho, frame = scene(24, 32, 72, 128)
    small = resize_rgb(frame, (24, 32))
    base = upsample(rho, small, frame, 0.1)
    for factor in (0.01, 7.5, 300.0):
        scaled = upsample(rho * np.float32(factor), small, frame, 0.1)
        finite = np.isfinite(base)
        assert (np.isfinite(scaled) == finite).all()
        np.testing.assert_allclose(scaled[finite] * factor, base[finite], rtol=2e-6)


def test_frames_loop_same_size_and_errors():
    rho, frame = scene(24, 32, 72, 128)
    rhos = np.stack([rho, rho * 2, np.zeros_like(rho)])
    frames = np.stack([frame, frame[::-1].copy(), frame])
    one = upsample_frames(rhos, frames, 0.1, workers=1)
    np.testing.assert_array_equal(one, upsample_frames(rhos, frames, 0.1, workers=3))
    for i in range(3):
        np.testing.assert_array_equal(one[i], upsample(rhos[i], resize_rgb(frames[i], (24, 32)), frames[i], 0.1))
    assert np.isinf(one[2]).all()
    same = upsample(np.full((4, 5), 0.5, np.float32), np.zeros((4, 5, 3), np.float32), frame[:4, :5], 0.1)
    np.testing.assert_array_equal(same, np.full((4, 5), 2.0, np.float32))
    with pytest.raises(InvalidArgument, match="upsample needs colour"):
        upsample(rho, np.zeros((5, 5, 3), np.float32), frame, 0.1)
    with pytest.raises(InvalidArgument, match="3 depth maps but 2 frames"):
        upsample_frames(rhos, frames[:2], 0.1)
