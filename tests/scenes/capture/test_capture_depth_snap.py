"""Depth edges snapped to colour edges (capture/depth_snap.py): on its own, and inside estimate_depth on rendered
scenes against their true depth.

The scenes are ray-cast here (a few planes, a box and a sphere; no lighting): a camera 1.2 m above a
textured ground walks 0.6 m sideways past a plain box in front of a textured wall, or past a textured
sphere. The box is where stereo misplaces depth edges (its edges are its only texture, the wall's texture
fattens over its outline, and the fill takes the wall's depth into its top); the sphere is a textured,
non-planar surface the snap must not spoil.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from test_capture_depth_planes import _grain

from starbridge.errors import InvalidArgument
from starbridge.geometry.camera import Intrinsics
from starbridge.scenes.capture.depth import DepthConfig, estimate_depth
from starbridge.scenes.capture.depth_snap import jump_band, snap_edges

W, H = 320, 180


def _render(obstacle: str, cam_x: float, intr: Intrinsics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb (H, W, 3) uint8, z-depth (H, W), obstacle mask (H, W)) seen from (cam_x, 0, 0) looking down -z
    (y up)."""
    u = (np.arange(W) + 0.5 - intr.cx) / intr.fx
    v = (np.arange(H) + 0.5 - intr.cy) / intr.fy
    dx, dy = np.meshgrid(u, -v)  # ray (dx, dy, -1): t along it is the z-depth
    t = np.full((H, W), np.inf)
    colour = np.zeros((H, W, 3))
    mask = np.zeros((H, W), bool)

    def put(hit: np.ndarray, at: np.ndarray, rgb: np.ndarray, obstacle: bool = False) -> None:
        closer = hit & (at > 0) & (at < t)
        t[closer] = at[closer]
        colour[closer] = rgb[closer]
        mask[closer] = obstacle

    with np.errstate(divide="ignore", invalid="ignore"):
        # Wall at z = -12: a plain pink facade with dark windows, as the procedural city's.
        tw = np.full((H, W), 12.0)
        wx, wy = cam_x + dx * tw, dy * tw
        window = ((wx % 1.5) > 0.5) & ((wx % 1.5) < 1.2) & ((wy % 2.0) > 0.4) & ((wy % 2.0) < 1.4)
        wall = np.where(window[..., None], [0.22, 0.27, 0.35], [0.85, 0.55, 0.6])
        put(np.ones((H, W), bool), tw, wall * (0.95 + 0.1 * _grain(wx, wy, 1, cells=3.0)[..., None]))
        # Ground at y = -1.2: grey, textured.
        tg = -1.2 / dy
        g = _grain(cam_x + dx * tg, tg, 2)[..., None]
        put(dy < 0, tg, (0.3 + 0.4 * g) * np.array([1.0, 1.0, 0.95]))
        if obstacle == "box":
            # Box x in [-0.5, 0.5], y in [-1.2, -0.3], z in [-4.5, -3.5]: green, horizontal bands, faces shaded.
            lo, hi = np.array([-0.5, -1.2, 3.5]), np.array([0.5, -0.3, 4.5])  # in (x, y, depth)
            org = np.array([cam_x, 0.0, 0.0])
            dirs = np.stack([dx, dy, np.ones_like(dx)], axis=-1)
            t0 = (lo - org) / dirs
            t1 = (hi - org) / dirs
            near_t = np.minimum(t0, t1)
            enter = near_t.max(axis=-1)
            leave = np.maximum(t0, t1).min(axis=-1)
            face = near_t.argmax(axis=-1)  # 0: a side, 1: the top, 2: the front
            shade = np.array([0.75, 1.0, 0.88])[face][..., None]
            bands = 0.9 + 0.2 * ((org[1] + dirs[..., 1] * enter) % 0.3 > 0.15)[..., None]  # stripes along the walk
            put(enter < leave, enter, shade * bands * np.array([0.32, 0.55, 0.3]), True)
        else:
            # Sphere of radius 0.8 centred at (0, -0.2, -4): red, textured.
            centre = np.array([0.0, -0.2, 4.0])
            org = np.array([cam_x, 0.0, 0.0]) - centre
            dirs = np.stack([dx, dy, np.ones_like(dx)], axis=-1)
            a = (dirs * dirs).sum(-1)
            b = 2.0 * (dirs * org).sum(-1)
            c = float(org @ org) - 0.8**2
            disc = b * b - 4 * a * c
            ts = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2 * a)
            p = org + dirs * ts[..., None]
            g = _grain(np.arctan2(p[..., 0], p[..., 2]) * 0.8, p[..., 1], 3)[..., None]
            put(disc > 0, ts, (0.35 + 0.45 * g) * np.array([0.9, 0.35, 0.3]), True)
    return (np.clip(colour, 0, 1) * 255).astype(np.uint8), t, mask


def _scene(obstacle: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Intrinsics, np.ndarray]:
    """Seven frames of a 0.6 m sideways walk: (frames, true z-depth, the obstacle's mask in the middle frame,
    wire poses, intrinsics, sparse points)."""
    intr = Intrinsics.from_fov(60.0, W, H)
    frames, depth, poses = [], [], []
    for cam_x in np.linspace(-0.3, 0.3, 7):
        rgb, z, mask = _render(obstacle, float(cam_x), intr)
        frames.append(rgb)
        depth.append(z)
        if len(frames) == 4:
            middle = mask
        pose = np.eye(4)
        pose[0, 3] = cam_x
        poses.append(pose)
    rng = np.random.default_rng(0)
    r, c = rng.integers(0, H, 300), rng.integers(0, W, 300)
    z = depth[3][r, c]
    x = (c + 0.5 - intr.cx) / intr.fx * z + poses[3][0, 3]
    y = -(r + 0.5 - intr.cy) / intr.fy * z
    points = np.stack([x, y, -z], axis=1)
    return np.stack(frames), np.stack(depth), middle, np.stack(poses), intr, points


def _outline(mask: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(inside, outside): the pixels within `width` pixels of the mask's outline, on its side and beyond it."""
    grown = ndimage.binary_dilation(mask, iterations=width)
    shrunk = ndimage.binary_erosion(mask, iterations=width)
    return mask & ~shrunk, grown & ~mask


def _error(pred: np.ndarray, true: np.ndarray, mask: np.ndarray) -> float:
    """Mean relative depth error over `mask`, each pixel's capped at 1."""
    with np.errstate(invalid="ignore"):
        rel = np.minimum(np.abs(pred[mask] / true[mask] - 1.0), 1.0)
    return float(np.where(np.isfinite(rel), rel, 1.0).mean())


def _before_after(obstacle: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(depth without the snap, with it, true depth, obstacle mask) of the middle frame. Without the erosion of
    the near edges before the fill and the epipolar texture test, which came later and move the same outlines
    (with the erosion, box / sphere: the outline 0.232 -> 0.254 / 0.143 -> 0.114, the whole frame 0.080 ->
    0.080 / 0.065 -> 0.065; their own tests, test_capture_depth_fill.py and test_capture_depth_epipolar.py,
    say what they do)."""
    frames, depth, mask, poses, intr, points = _scene(obstacle)
    out = [
        estimate_depth(
            frames,
            intr,
            poses,
            sparse_points=points,
            config=DepthConfig(workers=1, snap=snap, edge_erode_px=0, min_epipolar_texture=0.0),
        ).depth[3]
        for snap in (False, True)
    ]
    return out[0], out[1], depth[3], mask


def test_snap_pulls_a_sphere_outline_off_the_wall() -> None:
    """The textured sphere fattens over the plain wall behind it (the wall's pixels beside it take its depth);
    the snap gives them back to the wall, and a textured non-planar scene loses nothing elsewhere. Measured
    (3 px beyond the outline): error 0.369 -> 0.242; whole frame 0.098 -> 0.098."""
    before, after, true, mask = _before_after("sphere")
    _, outside = _outline(mask, 3)
    every = np.isfinite(true)
    print(
        f"\nbeyond the sphere: {_error(before, true, outside):.3f} -> {_error(after, true, outside):.3f}; "
        f"whole frame {_error(before, true, every):.3f} -> {_error(after, true, every):.3f}"
    )
    assert _error(after, true, outside) < 0.8 * _error(before, true, outside)
    assert _error(after, true, every) < _error(before, true, every) + 0.005


def test_snap_does_not_spoil_a_box_on_the_ground() -> None:
    """A plain box (bands along the walk only) on textured ground before the wall. The snap moves little here:
    the error within 3 px of the box's outline 0.218 -> 0.214 (beyond it 0.075 -> 0.068), whole frame 0.100 ->
    0.102 (a few ground pixels at the foot of the wall, where the ground's ramp meets the wall, are taken
    for an edge). Not fixed: the box's top rows keep the wall's depth (error 0.374 on the box's side of the
    outline, before and after): they are the fill's, over a plain face, wider than the snap's band."""
    before, after, true, mask = _before_after("box")
    inside, outside = _outline(mask, 3)
    outline, every = inside | outside, np.isfinite(true)
    print(
        f"\nbox outline: {_error(before, true, outline):.3f} -> {_error(after, true, outline):.3f}; beyond it "
        f"{_error(before, true, outside):.3f} -> {_error(after, true, outside):.3f}; whole frame "
        f"{_error(before, true, every):.3f} -> {_error(after, true, every):.3f}"
    )
    assert _error(after, true, outline) <= _error(before, true, outline) + 0.002
    assert _error(after, true, outside) < _error(before, true, outside)
    assert _error(after, true, every) < _error(before, true, every) + 0.006


# ---------------------------------------------------------------------------------------------- snap_edges alone


def _two_sided(offset: int) -> tuple[np.ndarray, np.ndarray]:
    """A 40x40 image: colour edge at column 20 (grey textured | green); inverse depth 0.1 | 0.3 with its
    edge at column 20 - `offset` (the green side's depth fattened over `offset` grey columns)."""
    rng = np.random.default_rng(5)
    rgb = np.zeros((40, 40, 3), np.float32)
    rgb[:, :20] = 0.5 + 0.1 * rng.uniform(-1, 1, (40, 20, 1))
    rgb[:, 20:] = np.array([0.2, 0.6, 0.2])
    rho = np.full((40, 40), 0.1, np.float32)
    rho[:, 20 - offset :] = 0.3
    return rho, rgb


@pytest.mark.parametrize(("offset", "left_wrong"), [(-2, 0.0), (2, 0.0), (3, 2.0)])
def test_snap_edges_returns_a_shifted_edge_to_the_colour_edge(offset: int, left_wrong: float) -> None:
    """A depth edge `offset` columns off its colour edge comes back to it, but for `left_wrong` columns per row
    on average (3 columns off: 1.6 left, the window's support on the right side is thin)."""
    rho, rgb = _two_sided(offset)
    out = snap_edges(rho, rgb, DepthConfig())
    wrong = (out != np.where(np.arange(40) < 20, np.float32(0.1), np.float32(0.3))).sum(axis=1)
    assert wrong.mean() <= left_wrong


def test_snap_edges_leaves_ramps_sky_and_thin_structures() -> None:
    cfg = DepthConfig()
    rng = np.random.default_rng(6)
    rgb = (0.4 + 0.2 * rng.uniform(0, 1, (40, 40, 3))).astype(np.float32)
    # Ground towards the horizon: inverse depth falling linearly over rows.
    ramp = np.repeat(np.linspace(0.05, 0.6, 40, dtype=np.float32)[:, None], 40, axis=1)
    np.testing.assert_array_equal(snap_edges(ramp, rgb, cfg), ramp)
    # A pole 2 px wide, its own colour, nearer than the wall: kept.
    pole = np.full((40, 40), 0.1, np.float32)
    pole[:, 19:21] = 0.5
    rgb_pole = rgb.copy()
    rgb_pole[:, 19:21] = [0.9, 0.1, 0.1]
    np.testing.assert_array_equal(snap_edges(pole, rgb_pole, cfg), pole)
    # Sky (0 = infinity) above a roof whose depth reaches 2 px into the sky's colour: left to the sky test.
    sky = np.full((40, 40), 0.2, np.float32)
    sky[:10] = 0.0
    rgb_sky = rgb.copy()
    rgb_sky[:12] = [0.5, 0.7, 0.95]
    assert not jump_band(sky, cfg.snap_jump, cfg.snap_band).any()
    np.testing.assert_array_equal(snap_edges(sky, rgb_sky, cfg), sky)


def test_snap_config_is_checked() -> None:
    for bad in (
        {"snap_jump": 0.0},
        {"snap_radius": 0},
        {"snap_band": 0},
        {"snap_margin": 0.5},
        {"snap_ramp": 0},
        {"snap_contrast": -1},
    ):
        with pytest.raises(InvalidArgument, match="snap_"):
            DepthConfig(**bad)
