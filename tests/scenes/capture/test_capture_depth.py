"""Dense depth by multi-view stereo (capture/depth.py) against ground-truth clips, and align_depth.

The clips are filmed by the procedural renderer along known paths, encoded to H.264 and decoded again (the
depth sees compression noise); the TRUE poses and intrinsics are the input, with sparse points sampled from
the true depth as the tracker would give them. Metrics are over the static pixels (no moving object) with a
finite true depth:

* AbsRel = mean |d - d*| / d* (each pixel's error capped at 1, a +inf prediction counts 1), and
  delta1 = fraction with max(d / d*, d* / d) < 1.25;
* "in range": true depth within STEREO_RANGE times the camera's travel over the clip. The procedural city
  has hazy skyscrapers 50-90 m away whose only texture is horizontal stripes (the aperture problem under a
  sideways walk): no stereo resolves them at 192 px and 2 m of baseline, they get the depth of the nearer
  surfaces around them. They are 10-14 % of the pixels; the bounds over all pixels are looser for them.

Measured at 24 frames, 256x144, defaults (matched at 256x144, kept at 192x108), on a 2-core VM, and the bounds
asserted:

=========  ==========================  ==========================  ===========
clip       in range AbsRel / delta1     all AbsRel / delta1          sky -> +inf
=========  ==========================  ==========================  ===========
handheld   0.049 / 0.942 (0.10 / 0.90)  0.117 / 0.842 (0.17 / 0.79)  0.92 (0.85)
orbit      0.061 / 0.917 (0.10 / 0.89)  0.104 / 0.855 (0.15 / 0.81)  0.93 (0.85)
dolly      0.075 / 0.920 (0.12 / 0.86)  0.132 / 0.836 (0.19 / 0.77)  0.94 (0.85)
=========  ==========================  ==========================  ===========

Matched at 192x108 (as measured in an earlier round): 0.068 / 0.924, 0.135 / 0.826; 0.074 / 0.908, 0.119 /
0.841; 0.086 / 0.905, 0.146 / 0.815 (the dolly's with `forward_best_views` 3; it was 0.100 / 0.888 and 0.157 /
0.803 with the best two views of four: test_capture_depth_forward.py). The dolly is the hard case for stereo
(forward motion: little parallax near the image centre, and a box filling a third of the last frames 1.2 m away
with no texture but its edges).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.geometry.camera import Intrinsics
from starbridge.geometry.conventions import GL_TO_CV
from starbridge.scenes.capture.depth import DepthConfig, estimate_depth
from starbridge.scenes.capture.depth_align import AlignConfig, FrameObservations, align_depth, observations_from_points
from starbridge.scenes.capture.depth_ops import resize_rgb
from starbridge.scenes.capture.depth_upsample import upsample
from starbridge.scenes.procedural.clips import ClipConfig, GroundTruthClip, render_clip

#: "In range": true depth within this many times the camera's travel over the clip.
STEREO_RANGE = 10.0

BOUNDS = {  # kind: (in-range AbsRel, in-range delta1, all AbsRel, all delta1)
    "handheld": (0.10, 0.90, 0.17, 0.79),
    "orbit": (0.10, 0.89, 0.15, 0.81),
    "dolly": (0.12, 0.86, 0.19, 0.77),
}


@dataclass
class Decoded:
    clip: GroundTruthClip
    frames: np.ndarray  # (N, H, W, 3) uint8 after H.264


def decode_mp4(path: Path) -> np.ndarray:
    """Every frame of an MP4 as (N, H, W, 3) uint8 RGB (PyAV, as scenes/importer.py decodes)."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def film(
    kind: str, folder: Path, *, frames: int = 24, width: int = 256, height: int = 144, fps: float = 30.0
) -> Decoded:
    clip = render_clip(ClipConfig(kind=kind, frames=frames, width=width, height=height, fps=fps))
    decoded = decode_mp4(clip.write_mp4(folder / f"{kind}.mp4"))
    assert decoded.shape == clip.frames.shape
    return Decoded(clip, decoded)


def sparse_points(clip: GroundTruthClip, *, every: int = 3, per_frame: int = 150, seed: int = 0) -> np.ndarray:
    """(M, 3) world points as a tracker gives them: static, finite-depth pixels of every `every`-th frame."""
    rng = np.random.default_rng(seed)
    intr = clip.intrinsics
    out = []
    for i in range(0, len(clip.frames), every):
        r = rng.integers(0, intr.height, per_frame)
        c = rng.integers(0, intr.width, per_frame)
        d = clip.depth[i, r, c].astype(np.float64)
        ok = np.isfinite(d) & ~clip.moving[i, r, c]
        rays = np.stack([(c + 0.5 - intr.cx) / intr.fx, (r + 0.5 - intr.cy) / intr.fy, np.ones(len(r))]) * d
        c2w = clip.poses[i] @ GL_TO_CV
        out.append((c2w[:3, :3] @ rays[:, ok] + c2w[:3, 3:4]).T)
    return np.concatenate(out)


def depth_metrics(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(AbsRel with each pixel's error capped at 1, delta1) over `mask`."""
    p, t = pred[mask].astype(np.float64), truth[mask].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(np.isfinite(p), np.minimum(np.abs(p - t) / t, 1.0), 1.0)
        ratio = np.maximum(p / t, t / p)
    return float(rel.mean()), float(np.mean(ratio < 1.25))


def travel(poses: np.ndarray) -> float:
    centres = poses[:, :3, 3]
    return float(np.max(np.linalg.norm(centres[:, None] - centres[None], axis=2)))


class Films(dict):
    """Clips filmed on first use, kept for the module."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def __missing__(self, kind: str) -> Decoded:
        self[kind] = film(kind, self.folder)
        return self[kind]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Films:
    return Films(tmp_path_factory.mktemp("depth_clips"))


# ---------------------------------------------------------------------------------------------- estimate_depth


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["handheld", "orbit", "dolly"])
def test_depth_of_static_clips_through_mp4(clips: Films, kind: str) -> None:
    d = clips[kind]
    clip = d.clip
    n = len(clip.frames)
    start = time.perf_counter()
    cpu = time.process_time()
    result = estimate_depth(d.frames, clip.intrinsics, clip.poses, sparse_points=sparse_points(clip))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    depth = result.depth
    assert depth.shape == clip.depth.shape and depth.dtype == np.float32
    assert not np.isnan(depth).any() and np.all(depth > 0)

    static = np.isfinite(clip.depth) & ~clip.moving
    in_range = static & (clip.depth <= STEREO_RANGE * travel(clip.poses))
    absrel_r, d1_r = depth_metrics(depth, clip.depth, in_range)
    absrel, d1 = depth_metrics(depth, clip.depth, static)
    sky = np.isinf(clip.depth)
    sky_inf = float(np.isinf(depth[sky]).mean())
    finite_as_inf = float(np.isinf(depth[static]).mean())
    print(
        f"\n{kind}: in range (<= {STEREO_RANGE * travel(clip.poses):.0f} m, {in_range.sum() / static.sum():.0%} of px)"
        f" AbsRel {absrel_r:.3f} d1 {d1_r:.3f} | all AbsRel {absrel:.3f} d1 {d1:.3f} | sky->inf {sky_inf:.3f}"
        f" finite->inf {finite_as_inf:.4f} | coverage {result.coverage.mean():.2f} (min {result.coverage.min():.2f})"
        f" | {wall / n:.2f} s/frame wall, {cpu / n:.2f} s/frame CPU, kept at {result.working_size[1]}x"
        f"{result.working_size[0]}"
    )
    max_absrel_r, min_d1_r, max_absrel, min_d1 = BOUNDS[kind]
    assert absrel_r <= max_absrel_r and d1_r >= min_d1_r
    assert absrel <= max_absrel and d1 >= min_d1
    assert sky_inf >= 0.85 and finite_as_inf <= 0.02
    assert result.coverage.shape == (n,) and 0.1 <= result.coverage.mean() <= 0.9
    assert result.confident.shape == depth.shape
    assert np.all(result.sources[:, 0] >= 0) and not result.rotation_only and result.notes == ()


def test_pan_is_all_infinite_at_once(clips: Films) -> None:
    d = clips["pan"]
    start = time.perf_counter()
    result = estimate_depth(d.frames, d.clip.intrinsics, d.clip.poses)
    assert time.perf_counter() - start < 1.0
    assert np.all(np.isinf(result.depth)) and result.depth.shape == d.clip.depth.shape
    assert result.rotation_only and "rotation-only" in result.notes[0]
    assert np.all(result.coverage == 0) and np.all(result.infinite == 1)


def test_pan_with_tracking_noise_is_all_infinite(clips: Films) -> None:
    """A tracker's pan has tiny non-zero translations: below a pixel of parallax at the points' depth."""
    d = clips["pan"]
    poses = d.clip.poses.copy()
    poses[:, :3, 3] += np.random.default_rng(1).normal(0.0, 1e-4, (len(poses), 3))
    points = np.random.default_rng(2).normal(0.0, 1.0, (500, 3)) * (5.0, 1.0, 5.0) + (0.0, 0.0, -8.0)
    result = estimate_depth(d.frames, d.clip.intrinsics, poses, sparse_points=points)
    assert np.all(np.isinf(result.depth)) and result.rotation_only


def test_depth_follows_the_pose_scale() -> None:
    """The tracking's scale is arbitrary: poses and points scaled by s give depth scaled by s."""
    clip = render_clip(ClipConfig(kind="handheld", frames=8, width=96, height=54))
    pts = sparse_points(clip, every=1)
    cfg = DepthConfig(max_side=96, workers=1)
    base = estimate_depth(clip.frames, clip.intrinsics, clip.poses, sparse_points=pts, config=cfg)
    s = 3.7
    poses = clip.poses.copy()
    poses[:, :3, 3] *= s
    scaled = estimate_depth(clip.frames, clip.intrinsics, poses, sparse_points=pts * s, config=cfg)
    assert np.array_equal(np.isinf(base.depth), np.isinf(scaled.depth))
    fin = np.isfinite(base.depth)
    assert fin.mean() > 0.5
    close = np.isclose(scaled.depth[fin], s * base.depth[fin], rtol=1e-3)
    assert close.mean() > 0.99  # float32 rounding may flip a winner here and there
    np.testing.assert_array_equal(base.sources, scaled.sources)


def _grain(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """A smooth random texture in [0, 1] of world coordinates (bilinear in a random grid of 1/12 m cells)."""
    grid = np.random.default_rng(seed).uniform(0.0, 1.0, (64, 64))
    u, v = (x * 12.0) % 64.0, (y * 12.0) % 64.0
    u0, v0 = np.floor(u).astype(np.intp), np.floor(v).astype(np.intp)
    fu, fv = u - u0, v - v0
    u1, v1 = (u0 + 1) % 64, (v0 + 1) % 64
    top = grid[v0, u0] * (1 - fu) + grid[v0, u1] * fu
    return top * (1 - fv) + (grid[v1, u0] * (1 - fu) + grid[v1, u1] * fu) * fv


def _two_planes(near: float = 3.0, far: float = 9.0, contrast: float = 0.3) -> tuple:
    """Five frames of a sideways dolly (0.3 m) past a wall at `near` m covering world x < 0, of `contrast`
    times the texture contrast of a wall at `far` m behind it; (frames, true depth, wire poses, intrinsics,
    sparse points of the middle frame)."""
    w, h = 192, 108
    intr = Intrinsics.from_fov(60.0, w, h)
    uu, vv = np.meshgrid((np.arange(w) + 0.5 - intr.cx) / intr.fx, (np.arange(h) + 0.5 - intr.cy) / intr.fy)
    frames, depth, poses = [], [], []
    for cx in np.linspace(-0.15, 0.15, 5):
        z = np.where(cx + uu * near < 0.0, near, far)
        x, y = cx + uu * z, vv * z
        grey = np.where(z == near, 0.5 + contrast * (_grain(x, y, 1) - 0.5), _grain(x, y, 2))
        frames.append(np.repeat((grey * 200 + 20).astype(np.uint8)[..., None], 3, axis=2))
        depth.append(z)
        pose = np.eye(4)
        pose[0, 3] = cx  # wire camera-to-world: looking down -Z, so the walls are at z = -near, -far
        poses.append(pose)
    rng = np.random.default_rng(0)
    r, c = rng.integers(0, h, 200), rng.integers(0, w, 200)
    z = depth[2][r, c]
    points = np.stack([poses[2][0, 3] + uu[r, c] * z, -vv[r, c] * z, -z], axis=1)
    return np.stack(frames), np.stack(depth), np.stack(poses), intr, points


def test_shiftable_windows_keep_depth_edges_in_place() -> None:
    """At an occluding edge, the windows straddling it match the edge's own contrast, which moves with the
    near wall: they give the far wall's pixels beside it the near depth (fattening). The shiftable windows
    take a window beside the edge instead. Measured (wrong-side pixels per row, middle frame): 0.57 without,
    0.33 with (the regions' choice after the fill on, in the plain segments only, its default: the same; in
    every segment, `region_segments` "all", 0.78 and 0.56: a textured cell's holes at the edge given one level of
    their border, depth_regions.py)."""
    frames, depth, poses, intr, points = _two_planes()
    wrong = {}
    for shift in (0, 1):
        cfg = DepthConfig(workers=1, cost_shift=shift)
        result = estimate_depth(frames, intr, poses, sparse_points=points, config=cfg)
        d, t = result.depth[2], depth[2]
        mid = np.sqrt(3.0 * 9.0)
        wrong[shift] = float(np.sum((t > mid) != (d > mid))) / t.shape[0]
        assert np.mean(np.abs(d / t - 1.0) < 0.1) > 0.98
    print(f"\nwrong-side pixels per row at the edge: {wrong}")
    assert wrong[1] < 0.45
    assert wrong[1] < 0.75 * wrong[0]


def test_depth_without_sparse_points_uses_the_baseline() -> None:
    clip = render_clip(ClipConfig(kind="handheld", frames=8, width=96, height=54))
    result = estimate_depth(clip.frames, clip.intrinsics, clip.poses, config=DepthConfig(max_side=96, workers=1))
    static = np.isfinite(clip.depth) & ~clip.moving
    in_range = static & (clip.depth <= STEREO_RANGE * travel(clip.poses))
    absrel, d1 = depth_metrics(result.depth, clip.depth, in_range)
    print(f"\nno sparse points, 8 frames at 96x54: in-range AbsRel {absrel:.3f} d1 {d1:.3f}")
    assert absrel <= 0.2 and d1 >= 0.7
    assert np.all(np.isfinite(result.near))


def test_inverse_depth_is_kept_at_store_side() -> None:
    """Matched at `max_side`, kept at `store_side`: the kept inverse depth is the matched one sampled at the kept
    pixels' centres (no value blended across an edge), and the full-size depth its colour-guided upsampling
    (what a bundle redoes at load)."""
    clip = render_clip(ClipConfig(kind="handheld", frames=8, width=128, height=72))
    pts = sparse_points(clip, every=1)
    matched = estimate_depth(
        clip.frames, clip.intrinsics, clip.poses, sparse_points=pts, config=DepthConfig(max_side=128, store_side=128)
    )
    kept = estimate_depth(
        clip.frames, clip.intrinsics, clip.poses, sparse_points=pts, config=DepthConfig(max_side=128, store_side=64)
    )
    assert matched.working_size == (72, 128) and matched.inverse.shape == (8, 72, 128)
    assert kept.working_size == (36, 64) and kept.inverse.shape == (8, 36, 64)
    # every kept pixel is the matched pixel under its centre: (2r + 1, 2c + 1) of the 2x finer grid
    assert np.array_equal(kept.inverse, matched.inverse[:, 1::2, 1::2])
    for k in (0, 5):
        small = resize_rgb(clip.frames[k], kept.working_size)
        assert np.array_equal(kept.depth[k], upsample(kept.inverse[k], small, clip.frames[k], kept.upsample_blend))
    # what was matched, and how confident, does not depend on the kept size
    assert np.array_equal(kept.confident, matched.confident) and np.array_equal(kept.coverage, matched.coverage)
    # a kept size above the matching size keeps the matching size (nothing is upsampled before the colour guide)
    wide = estimate_depth(clip.frames, clip.intrinsics, clip.poses, config=DepthConfig(max_side=64, store_side=96))
    assert wide.working_size == (36, 64)
    with pytest.raises(InvalidArgument, match="store_side"):
        DepthConfig(store_side=8)


def test_keyframes_limit_the_source_views() -> None:
    clip = render_clip(ClipConfig(kind="orbit", frames=8, width=64, height=36))
    keys = [0, 3, 7]
    result = estimate_depth(clip.frames, clip.intrinsics, clip.poses, keyframes=keys, config=DepthConfig(workers=1))
    used = set(result.sources[result.sources >= 0].tolist())
    assert used <= set(keys)
    assert result.depth.shape == clip.depth.shape


def test_progress_reports_every_frame() -> None:
    clip = render_clip(ClipConfig(kind="orbit", frames=5, width=64, height=36))
    seen: list[tuple[str, int, int]] = []
    estimate_depth(clip.frames, clip.intrinsics, clip.poses, progress=lambda *a: seen.append(a))
    assert [s for s in seen if s[0] == "depth"][-1] == ("depth", 5, 5)
    assert [s for s in seen if s[0] == "depth-fill"][-1] == ("depth-fill", 5, 5)


@pytest.mark.parametrize(
    "change",
    ["frames_dtype", "frames_shape", "poses_shape", "poses_nan", "intrinsics_size", "keyframes"],
)
def test_estimate_depth_refuses_bad_input(change: str) -> None:
    n, h, w = 3, 36, 64
    frames = np.zeros((n, h, w, 3), np.uint8)
    poses = np.repeat(np.eye(4)[None], n, axis=0)
    poses[:, 0, 3] = np.arange(n)
    intr = Intrinsics.from_fov(60.0, w, h)
    kwargs: dict = {}
    if change == "frames_dtype":
        frames = frames.astype(np.float32)
    elif change == "frames_shape":
        frames = frames[..., 0]
    elif change == "poses_shape":
        poses = poses[:2]
    elif change == "poses_nan":
        poses[1, 0, 3] = np.nan
    elif change == "intrinsics_size":
        intr = Intrinsics.from_fov(60.0, w * 2, h * 2)
    else:
        kwargs["keyframes"] = [0, 5]
    with pytest.raises(InvalidArgument):
        estimate_depth(frames, intr, poses, **kwargs)


def test_depth_config_is_checked() -> None:
    with pytest.raises(InvalidArgument):
        DepthConfig(window=4)
    with pytest.raises(InvalidArgument):
        DepthConfig(cost_shift=-1)
    with pytest.raises(InvalidArgument):
        DepthConfig(best_views=5, source_views=4)
    with pytest.raises(InvalidArgument):
        DepthConfig(max_planes=8, min_planes=24)


# ---------------------------------------------------------------------------------------------- align_depth


def _mono_fixture(inverse: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[FrameObservations], np.ndarray]:
    """True depth (N, H, W), a monocular map with a known per-frame affine relation to it, and noisy
    observations with 20 % outliers."""
    rng = np.random.default_rng(seed)
    n, h, w = 5, 40, 60
    yy, xx = np.mgrid[0:h, 0:w]
    truth = np.stack([2.0 + 0.1 * xx + 0.05 * yy + k for k in range(n)]).astype(np.float64)
    scale = np.array([0.5, 2.0, 1.3, 0.8, 3.0])
    # Shifts in the target's unit: depth (2-20 m here) or inverse depth (0.05-0.5).
    shift = np.array([0.02, -0.01, 0.01, 0.05, 0.0]) if inverse else np.array([1.0, -0.8, 0.5, 2.0, 0.0])
    target = 1.0 / truth if inverse else truth
    mono = (target - shift[:, None, None]) / scale[:, None, None]  # so that target = scale * mono + shift
    obs = []
    for i in range(n):
        k = 80
        xy = rng.uniform([0, 0], [w, h], (k, 2))
        z = truth[i][xy[:, 1].astype(int), xy[:, 0].astype(int)] * rng.normal(1.0, 0.01, k)
        bad = rng.random(k) < 0.2
        z[bad] *= rng.uniform(0.3, 3.0, bad.sum())
        # Pixel centres: sample the truth where the mono map is sampled (bilinear at xy - 0.5).
        xy = np.floor(xy) + 0.5
        obs.append(FrameObservations(xy, z))
    return truth, mono.astype(np.float32), obs, scale


@pytest.mark.parametrize("inverse", [False, True])
def test_align_depth_recovers_scale_and_shift(inverse: bool) -> None:
    truth, mono, obs, scale = _mono_fixture(inverse)
    aligned = align_depth(mono, obs, inverse=inverse)
    np.testing.assert_allclose(aligned.scale, scale, rtol=0.03)
    rel = np.abs(aligned.depth - truth) / truth
    print(
        f"\nalign_depth ({'inverse' if inverse else 'depth'}):"
        f" median rel error {np.median(rel):.4f}, max {rel.max():.3f}"
    )
    assert np.median(rel) < 0.01 and rel.max() < 0.05
    assert np.all(aligned.inliers >= 50)  # of 80, 20 % outliers
    # The old way (per-frame median ratio) is biased by the shift and the outliers:
    if not inverse:
        med = np.array([np.median(o.depth) / np.median(mono[i]) for i, o in enumerate(obs)])
        assert np.max(np.abs(med / scale - 1)) > 0.03


def test_align_depth_borrows_neighbour_fits() -> None:
    truth, mono, obs, scale = _mono_fixture(False)
    obs[2] = FrameObservations(obs[2].xy[:3], obs[2].depth[:3])  # too few to fit
    aligned = align_depth(mono, obs)
    assert aligned.inliers[2] == 0
    assert aligned.scale[2] == pytest.approx(0.5 * (scale[1] + scale[3]), rel=0.03)


def test_align_depth_refuses_what_it_cannot_fit() -> None:
    _, mono, obs, _ = _mono_fixture(False)
    with pytest.raises(InvalidArgument):
        align_depth(mono, obs[:3])  # one entry per frame
    with pytest.raises(InvalidArgument):
        align_depth(mono, [FrameObservations(np.zeros((0, 2)), np.zeros(0))] * len(mono))
    with pytest.raises(InvalidArgument):
        align_depth(mono[0], obs)
    with pytest.raises(InvalidArgument):
        align_depth(mono, [(o.xy, o.depth[:-1]) for o in obs])


def test_align_depth_negative_inverse_is_infinite() -> None:
    """Disparity at or below zero after the fit is beyond infinity: +inf, never negative depth."""
    truth, mono, obs, _ = _mono_fixture(True)
    mono = mono.copy()
    mono[:, 0, 0] = -1e3
    aligned = align_depth(mono, obs, inverse=True, config=AlignConfig(seed=3))
    assert np.all(np.isinf(aligned.depth[:, 0, 0])) and np.all(aligned.depth > 0)


def test_observations_from_points_projects_and_follows_tracks() -> None:
    clip = render_clip(ClipConfig(kind="orbit", frames=4, width=64, height=36))
    pts = sparse_points(clip, every=1, per_frame=40)
    obs = observations_from_points(pts, clip.poses, clip.intrinsics)
    assert len(obs) == 4
    # Points sampled from frame 0's own pixels project back onto pixel centres with their true depth.
    xy, z = obs[0]
    cols, rows = (xy[:, 0] - 0.5).round().astype(int), (xy[:, 1] - 0.5).round().astype(int)
    near_truth = np.isclose(clip.depth[0, rows, cols], z, rtol=1e-3)
    assert near_truth.mean() > 0.3  # the points of frame 0 (the others may be occluded there)
    # Tracks: frame, point index, position; positions scaled to another map size.
    tracks = (np.array([0, 1, 1]), np.array([0, 1, 2]), np.array([[10.0, 5.0], [20.0, 6.0], [30.0, 7.0]]))
    obs2 = observations_from_points(pts, clip.poses, clip.intrinsics, tracks=tracks, size=(72, 128))
    assert len(obs2[0].depth) == 1 and len(obs2[1].depth) == 2 and len(obs2[2].depth) == 0
    np.testing.assert_allclose(obs2[1].xy, [[40.0, 12.0], [60.0, 14.0]])
