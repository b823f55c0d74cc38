"""How the explicit generator fills and remembers its wide holes (runtime/explicit.py, runtime/holes.py): what a
remembered fill may continue (not what moves, not the cracks), where a later layer may show through (not through a
surface seen closer than the reference saw it), and the fill that keeps the horizon."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from starbridge.geometry import kernels
from starbridge.geometry.fill import push_pull_fill_holes
from starbridge.geometry.splat import frame_points
from starbridge.runtime import holes as holes_module
from starbridge.runtime.explicit import MOVING_DEPTH_TOL, MOVING_RING, ExplicitGenerator
from starbridge.runtime.generator import FrameRequest
from starbridge.runtime.holes import hole_fill, in_front, near, surroundings, wide_holes
from starbridge.scenes.bundle import SceneMeta, write_bundle
from starbridge.scenes.procedural.clips import ClipConfig, render_clip


def _splat(h: int = 32, w: int = 48):
    colour = np.zeros((h, w, 3), np.uint8)
    depth = np.full((h, w), np.inf, np.float32)
    mask = np.zeros((h, w), bool)
    return colour, depth, mask


def test_the_fill_takes_nothing_from_pixels_that_are_not_sources():
    colour, depth, mask = _splat()
    colour[:, :16], depth[:, :16], mask[:, :16] = (40, 160, 40), 5.0, True  # static surface
    colour[:, 16:20], depth[:, 16:20], mask[:, 16:20] = (250, 0, 0), 1.0, True  # a moving object beside the hole
    holes = ~mask
    at, rgb, far = hole_fill(colour, depth, holes, mask & (np.arange(48) < 16)[None, :])
    assert at.size == holes.sum() and rgb.shape == (at.size, 3)
    assert rgb[:, 0].max() <= 41 and rgb[:, 1].min() >= 159  # no red from the moving object
    np.testing.assert_allclose(far, 5.0, rtol=1e-5)  # its depth neither
    at, rgb, far = hole_fill(colour, depth, holes, mask)  # the check can fail: with it as a source
    assert rgb[:, 0].max() > 100 and far.min() < 4.0


def test_cracks_do_not_pull_the_remembered_depth_to_infinity():
    colour, depth, mask = _splat()
    mask[:, :24], depth[:, :24], colour[:, :24] = True, 2.0, 90
    mask[::3, :24] = False  # cracks in the surface (no depth: +inf)
    depth[~mask] = np.inf
    holes = np.zeros_like(mask)
    holes[:, 24:] = True
    at, _, far = hole_fill(colour, depth, holes, mask)
    assert at.size == holes.sum()
    np.testing.assert_allclose(far, 2.0, rtol=1e-5)  # the surface's depth, not a blend with "sky"


def test_the_fill_keeps_the_horizon_of_a_turned_view():
    colour, depth, mask = _splat()
    mask[:, :8] = True
    colour[:16, :8], depth[:16, :8] = (120, 160, 230), np.inf  # sky above
    colour[16:, :8], depth[16:, :8] = (110, 100, 90), 3.0  # ground below
    at, rgb, far = hole_fill(colour, depth, ~mask, mask)
    rows = at // 48
    top, bottom = rgb[rows < 8].astype(int), rgb[rows >= 24].astype(int)
    assert (top[:, 2] - top[:, 0] > 60).all()  # still sky blue far from the edge, 40 pixels out
    assert (np.abs(bottom[:, 2] - bottom[:, 0]) < 25).all()  # still ground
    cols = at % 48
    assert far[(rows < 8) & (cols == 8)].min() > 20 and far[(rows >= 24) & (cols == 8)].max() < 3.5  # depth
    edge = (rows == 4) & (cols == 8)  # next to the sources: push-pull, the colour right there
    np.testing.assert_allclose(rgb[edge][0], (120, 160, 230), atol=12)


def test_a_hole_closed_in_by_a_near_surface_lets_nothing_farther_through():
    colour, depth, mask = _splat()
    moving = np.zeros_like(mask)
    mask[:, :] = True
    depth[:, :] = 2.0
    depth[:, 30:] = 8.0  # a far wall right of x = 30
    mask[10:14, 10:14] = False  # a crack inside the near surface (a magnified surface)
    mask[4:28, 27:33] = False  # a disocclusion on the edge between near and far (and one only 4 rows tall)
    mask[10:14, 36:40] = False
    depth[10:14, 36:40] = 2.0  # (a splat's uncovered pixels have no depth: the "far wall" here is nearer)
    mask[:, 44:] = False  # past the frame edge: open
    at = np.flatnonzero(~mask)
    limit, dynamic = surroundings(mask, depth, moving, at)
    assert not dynamic.any()
    ys, xs = np.divmod(at, 48)
    crack, edge, open_ = (xs < 20), (xs >= 27) & (xs < 33), xs >= 44
    far = np.full(at.size, 8.0, np.float32)
    assert not in_front(far, limit)[crack].any()  # the far wall does not show through the crack
    assert in_front(far, limit)[edge].all()  # it does fill the disocclusion beside the edge
    short = (xs >= 36) & (xs < 40)  # closed in up and down by the far wall's depth 8: nothing farther than that
    assert in_front(far, limit)[short].all() and not in_front(far * 2, limit)[short].any()
    inner = open_ & (xs >= 44 + 5)  # farther than the rays reach from the frame
    assert (limit[inner] < 0).all() and in_front(np.full(inner.sum(), 1e6, np.float32), limit[inner]).all()
    moving[:, :] = True  # a crack inside what moves: filled, never remembered
    _, dynamic = surroundings(mask, depth, moving, at)
    assert dynamic[crack].all()


def _moving_bundle(tmp_path: Path):
    clip = render_clip(ClipConfig(kind="moving", frames=6, width=96, height=54))
    meta = SceneMeta(
        scene_id="moving", title="moving", fps=clip.config.fps, frame_count=clip.config.frames,
        intrinsics=clip.intrinsics, source="engine", depth_source="exact",
    )  # fmt: skip
    bundle = write_bundle(
        tmp_path / "moving", meta, clip.frames, clip.depth, clip.poses,
        moving=clip.moving, in_scene_units=True, lossless=True,
    )  # fmt: skip
    return clip, bundle


@pytest.mark.parametrize("k", [0, 3])
def test_the_session_finds_the_pixels_that_move(tmp_path: Path, k: int):
    clip, bundle = _moving_bundle(tmp_path)
    assert clip.moving[k].sum() > 20
    session = ExplicitGenerator().open(bundle, 96, 54)
    request = FrameRequest(bundle.poses[k], clip.intrinsics, k / clip.config.fps)
    result = session.splat(request)
    found = session._moving(request, result, np.ones((54, 96), bool))  # looked for near holes everywhere
    truth = clip.moving[k]
    assert (found & truth).sum() >= 0.9 * truth.sum()
    assert (found & ~truth).sum() <= 0.1 * truth.sum()
    session.close()


def test_moving_pixels_are_looked_for_only_near_the_holes(tmp_path: Path):
    clip, bundle = _moving_bundle(tmp_path)
    session = ExplicitGenerator().open(bundle, 96, 54)
    request = FrameRequest(bundle.poses[0], clip.intrinsics, 0.0)
    result = session.splat(request)
    everywhere = session._moving(request, result, np.ones((54, 96), bool))
    first = int(np.flatnonzero(everywhere.any(axis=0))[0])  # the leftmost column showing a moving object
    holes = np.zeros((54, 96), bool)
    holes[:, : first - 2] = True  # holes just left of it
    found = session._moving(request, result, holes)
    assert found.any() and not found[:, first - 2 + MOVING_RING :].any()
    np.testing.assert_array_equal(found[:, : first - 2 + MOVING_RING], everywhere[:, : first - 2 + MOVING_RING])
    session.close()


def test_held_out_sample_bundles_carry_their_moving_masks(tmp_path: Path):
    """The roam benchmark's worlds come with exact moving-object masks, as the demo scene does (without them
    the fused world would keep every position of the ball as a ghost)."""
    from starbridge.scenes.procedural.samples import SampleConfig, iter_samples, moving_masks, sample_to_bundle

    sample = next(iter_samples("heldout", 1, config=SampleConfig(width=96, height=54)))
    masks = moving_masks(sample)
    assert masks.shape == sample.ref_depth.shape and masks.any(axis=(1, 2)).all()
    assert masks.mean() < 0.2
    bundle = sample_to_bundle(sample, tmp_path / "s", moving=masks)
    np.testing.assert_array_equal(bundle.moving, masks)
    assert sample_to_bundle(sample, tmp_path / "t").moving is None


@pytest.mark.parametrize("k", [0, 3, 5])
def test_moving_pixels_looked_for_in_their_reach_are_those_of_the_whole_ring(tmp_path: Path, k: int):
    """`_moving` looks only inside the rectangle the moving points can reach: the same pixels as splatting them
    at every covered pixel near the holes, from several poses (some turned so that the objects are at the edge)."""
    clip, bundle = _moving_bundle(tmp_path)
    session = ExplicitGenerator().open(bundle, 96, 54)
    rng = np.random.default_rng(k)
    for turn in (0.0, 0.3, -0.6):
        c2w = bundle.poses[k].copy()
        c, s = np.cos(turn), np.sin(turn)
        c2w[:3, :3] = c2w[:3, :3] @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # a yaw
        request = FrameRequest(c2w, clip.intrinsics, k / clip.config.fps)
        result = session.splat(request)
        holes = rng.random((54, 96)) < 0.05
        holes[:, :10] = True
        found = session._moving(request, result, holes)
        points = frame_points(bundle.depth[k], bundle.meta.intrinsics, bundle.poses[k], where=bundle.moving[k])
        ring = np.flatnonzero(near(holes, MOVING_RING) & result.mask)  # the whole ring, as before the reach
        drawn = session._splatter(clip.intrinsics).sample([(points, np.zeros((len(points), 3), np.uint8))], c2w, ring)
        front = drawn.depth <= result.depth.reshape(-1)[ring] * np.float32(1.0 + MOVING_DEPTH_TOL)
        want = np.zeros((54, 96), bool)
        want.reshape(-1)[ring[drawn.mask & front]] = True
        np.testing.assert_array_equal(found, want)
        assert turn != 0.0 or found.any()
    session.close()


@pytest.mark.parametrize("seed", range(6))
def test_wide_holes_within_a_superset_of_them_are_the_wide_holes(seed: int, monkeypatch: pytest.MonkeyPatch):
    """The fill's wide holes, looked for only in the rectangle of the wide holes of the mask before the later
    layers (a superset: layers only take holes away), are those of the whole image: rectangles at the image edges
    and inside, cracks just outside them."""
    rng = np.random.default_rng(seed)
    h, w = 40, 64
    first = rng.random((h, w)) < 0.25  # cracks
    y, x = rng.integers(0, h - 6), rng.integers(0, w - 8)
    first[y : y + int(rng.integers(3, 12)), x : x + int(rng.integers(3, 20))] = True  # a wide hole
    first[:, : int(rng.integers(0, 4))] = True  # one on the edge, sometimes
    wide_first = wide_holes(first)
    final = first & ~(rng.random((h, w)) < 0.3)  # some of the holes covered by a later layer
    within = np.flatnonzero(wide_first & final)
    want = wide_holes(final)
    monkeypatch.setattr(holes_module, "WIDE_HOLE_SPARSE", 1)  # at those pixels only, however many
    np.testing.assert_array_equal(wide_holes(final, within=within), want)
    assert want.any() or seed


@pytest.mark.parametrize("sparse", [1, 10**9])
def test_wide_holes_within_do_not_take_cracks_beside_them_for_a_core(sparse: int, monkeypatch: pytest.MonkeyPatch):
    """Cracks beside the pixels `within` (and their rectangle) that would look like a core if what lies beyond
    counted as a hole (as beyond the image's edge) must not make the cracks among them wide."""
    monkeypatch.setattr(holes_module, "WIDE_HOLE_SPARSE", sparse)  # at those pixels only / the whole image
    holes = np.zeros((40, 64), bool)
    holes[5:11, 5:13] = holes[30:37, 45:59] = True  # two wide holes: the rectangle is rows 5-36, columns 5-58
    holes[3, 29:32] = holes[4, 30] = holes[5, 30] = True  # a crack reaching into it from above
    holes[19:22, 60] = holes[20, 58:60] = True  # and one from the right
    want = wide_holes(holes)
    assert not want[5, 30] and not want[20, 58]
    np.testing.assert_array_equal(wide_holes(holes, within=np.flatnonzero(want)), want)


def _disocclusion():
    """A near surface (pink, depth 1) left of a wide hole 12 pixels across, a far wall (grey, depth 8) right of
    it: what a camera that moved sees between them once the near edge has moved across the far wall."""
    colour, depth, mask = _splat(32, 128)
    colour[:, :40], depth[:, :40], mask[:, :40] = (240, 150, 150), 1.0, True
    colour[:, 52:], depth[:, 52:], mask[:, 52:] = (90, 90, 110), 8.0, True
    return colour, depth, mask


def test_a_disocclusion_is_filled_from_the_far_side_of_the_depth_edge():
    colour, depth, mask = _disocclusion()
    at, rgb, far = hole_fill(colour, depth, ~mask, mask, behind=~mask)
    plain_at, plain, plain_far = hole_fill(colour, depth, ~mask, mask)  # the check can fail: the plain fill
    np.testing.assert_array_equal(at, plain_at)
    grey = np.array([90, 90, 110])
    cols = at % 128
    for x in range(40, 52):  # across the hole, the fill is nearer the far wall than the plain fill, and farther
        column = cols == x
        off, plain_off = (np.abs(c[column].astype(int) - grey).max(axis=1) for c in (rgb, plain))
        assert (off < plain_off).all() and (far[column] > plain_far[column]).all()
    middle = (cols >= 44) & (cols < 48)  # as far from either side
    assert (np.abs(plain[middle].astype(int) - grey).max(axis=1) > 40).all()  # plain: half pink
    assert (np.abs(rgb[middle].astype(int) - grey).max(axis=1) < 20).all()  # far-weighted: the wall, nearly
    assert far[middle].min() > 6.0 and plain_far[middle].max() < 4.0  # remembered on the far wall, not between
    some = ~mask & (np.arange(128) < 46)[None, :]  # `behind` chooses per pixel
    at2, rgb2, _ = hole_fill(colour, depth, ~mask, mask, behind=some)
    chosen = some.reshape(-1)[at2]
    np.testing.assert_array_equal(rgb2[chosen], rgb[chosen])
    np.testing.assert_array_equal(rgb2[~chosen], plain[~chosen])


def test_between_sources_at_one_depth_the_far_weighted_fill_is_the_plain_one():
    rng = np.random.default_rng(3)
    colour = rng.integers(0, 256, (32, 48, 3), np.uint8)
    sources = rng.random((32, 48)) < 0.4
    sources[8:20, 10:30] = False
    for d in (2.5, np.inf):  # one distance, or all sky
        depth = np.full((32, 48), d, np.float32)
        at, plain, far, values = holes_module.push_pull_sources(colour, depth, sources)
        want_at, want = push_pull_fill_holes(np.ascontiguousarray(values[..., :4]), sources)
        np.testing.assert_array_equal(at, want_at)
        np.testing.assert_array_equal(plain, want)  # each channel on its own: the plain fill as it was
        np.testing.assert_allclose(far, plain, rtol=1e-5, atol=1e-3)
    at, plain, far, _ = holes_module.push_pull_sources(colour, depth, np.zeros_like(sources))  # no source at all
    assert at.size == sources.size and not plain.any() and not far.any()


@pytest.mark.parametrize(("h", "w"), [(288, 512), (37, 23), (1, 9)])
def test_plain_and_far_source_values_match_the_numpy_reference(h: int, w: int):
    rng = np.random.default_rng(h + w)
    colour = rng.integers(0, 256, (h, w, 3), np.uint8)
    depth = rng.uniform(0.2, 80.0, (h, w)).astype(np.float32)
    depth[rng.random((h, w)) < 0.2] = np.inf  # sky
    sources = rng.random((h, w)) < 0.6
    cap = np.float32(holes_module.FAR_WEIGHT_CAP)
    got = np.full((h, w, 9), np.nan, np.float32)
    kernels.plain_and_far_sources(colour, depth, sources, cap, got)
    plain = np.empty((h, w, 4), np.float32)
    kernels.colour_inverse_depth(colour, depth, sources, plain)
    np.testing.assert_array_equal(got[..., :4], plain)  # the first four: colour_inverse_depth's
    near = np.minimum(depth, cap)
    weight = np.where(sources, near * near, np.float32(0.0)).astype(np.float32)
    want = weight[..., None] * plain
    np.testing.assert_array_equal(got[..., 4:8], want)
    np.testing.assert_array_equal(got[..., 8], weight)
    assert (depth[sources] > cap).any() or h * w < 100


def test_the_far_weighted_fill_is_used_where_the_reference_looked_not_past_its_edge(tmp_path: Path):
    """`_behind`: a hole pixel whose fill lies inside the same-time reference image is a disocclusion (the
    reference saw something nearer there); one past the edge of a turned view is not."""
    clip, bundle = _moving_bundle(tmp_path)
    session = ExplicitGenerator().open(bundle, 96, 54)
    pose = bundle.poses[0]
    at = np.arange(96 * 54)
    inverse_depth = np.full(at.size, 1.0 / 3.0, np.float32)
    here = FrameRequest(pose, clip.intrinsics, 0.0)
    assert session._behind(here, at, inverse_depth).all()  # the reference camera itself: all inside
    assert session._behind(here, at, np.zeros(at.size, np.float32)).all()  # directions too
    c2w = pose.copy()
    c, s = np.cos(np.pi / 2), np.sin(np.pi / 2)
    c2w[:3, :3] = c2w[:3, :3] @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # turned 90 degrees
    turned = session._behind(FrameRequest(c2w, clip.intrinsics, 0.0), at, inverse_depth)
    assert not turned.all() and turned.mean() < 0.3  # most of a turned view lies past the reference's edge
    back = pose.copy()
    back[:3, 3] += 2.0 * pose[:3, 2]  # stepped back 2 units (wire: +z is behind the camera)
    stepped = session._behind(FrameRequest(back, clip.intrinsics, 0.0), at, inverse_depth).reshape(54, 96)
    assert stepped[27, 48] and not stepped[:, 0].any()  # the middle is in the reference view, the rim is not
    session.close()


@pytest.mark.parametrize("seed", range(3))
def test_in_other_view_matches_the_numpy_reference(seed: int):
    """The compiled `_behind` test against the same projection in NumPy (float64, the same operations)."""
    rng = np.random.default_rng(seed)
    h, w, oh, ow = 54, 96, 40, 70
    at = np.sort(rng.choice(h * w, 2000, replace=False)).astype(np.int64)
    inverse_depth = rng.uniform(0.0, 2.0, at.size).astype(np.float32)
    inverse_depth[::7] = 0.0  # directions
    a = (np.arange(w) + 0.5 - 48.0) / 50.0
    b = (np.arange(h) + 0.5 - 27.0) / 50.0
    k = np.array([[60.0, 0.0, 35.0], [0.0, 60.0, 20.0], [0.0, 0.0, 1.0]])  # the other camera, near this one
    pose = np.concatenate([np.eye(3) + rng.normal(0.0, 0.3, (3, 3)), rng.normal(0.0, 0.5, (3, 1))], 1)
    proj = k @ pose
    got = np.empty(at.size, bool)
    kernels.in_other_view(at, inverse_depth, w, a, b, proj, ow, oh, got)
    y, x = np.divmod(at, w)
    pw = inverse_depth.astype(np.float64)
    hx, hy, hz = (proj[r, 0] * a[x] + proj[r, 1] * b[y] + proj[r, 2] + proj[r, 3] * pw for r in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = hx / hz, hy / hz
    want = (hz > 1e-6 * pw) & (u >= 0) & (u < ow) & (v >= 0) & (v < oh)
    np.testing.assert_array_equal(got, want)
    assert want.any() and not want.all()


def plain_see_through(mask: np.ndarray, depth: np.ndarray, camera: holes_module.SourceCamera) -> np.ndarray:
    """(H, W) bool: the covered pixels with a covered pixel more than SEE_THROUGH_RATIO times nearer within
    SEE_THROUGH_RADIUS on both sides (left and right, or up and down), that surface (the farther of the two sides'
    nearest) magnified at least SEE_THROUGH_MAGNIFICATION times from `camera`. Pixel by pixel (runtime/holes.py
    drop_see_through's reference)."""
    radius, ratio = holes_module.SEE_THROUGH_RADIUS, holes_module.SEE_THROUGH_RATIO
    h, w = mask.shape
    out = np.zeros((h, w), bool)
    for y, x in zip(*np.nonzero(mask), strict=True):
        limit = np.float32(depth[y, x]) / np.float32(ratio)
        near = np.inf
        for dy, dx in ((0, 1), (1, 0)):
            found = []
            for sign in (-1, 1):
                ahead = [
                    depth[y + sign * r * dy, x + sign * r * dx]
                    for r in range(1, radius + 1)
                    if 0 <= y + sign * r * dy < h
                    and 0 <= x + sign * r * dx < w
                    and mask[y + sign * r * dy, x + sign * r * dx]
                ]
                if ahead and min(ahead) < limit:
                    found.append(min(ahead))
            if len(found) == 2:
                near = min(near, max(found))
        if np.isfinite(near):
            point = near * np.array([camera.a[x], camera.b[y], 1.0, 1.0 / near])
            out[y, x] = (
                camera.focal_ratio * float(camera.proj[2] @ point) >= holes_module.SEE_THROUGH_MAGNIFICATION * near
            )
    return out


def _camera(h: int, w: int, magnification: float) -> holes_module.SourceCamera:
    """A source camera that saw every point `magnification` times farther than the target does (same focal)."""
    proj = np.zeros((3, 4))
    proj[2, 2] = magnification
    return holes_module.SourceCamera(np.linspace(-0.5, 0.5, w), np.linspace(-0.3, 0.3, h), proj, 1.0)


def test_what_shows_through_a_magnified_surface_is_dropped_edges_and_slopes_stay():
    h, w = 40, 60
    depth = np.full((h, w), 10.0, np.float32)  # a wall far behind
    depth[5:25, 5:25] = 1.0  # a near surface...
    depth[5:25, 8:24:4] = 10.0  # ...seen through cracks 1 px wide (columns)
    depth[12:14, 5:25] = np.inf  # ...and a 2-px crack (rows) showing the sky
    depth[:, 40:] = np.linspace(2.0, 8.0, h, dtype=np.float32)[:, None]  # a slope: no valley anywhere
    mask = np.ones((h, w), bool)
    mask[30:, :5] = False  # an empty corner (a hole already)
    m, d = mask.copy(), depth.copy()
    dropped = holes_module.drop_see_through(m, d, _camera(h, w, 3.0))
    want = np.zeros((h, w), bool)  # every crack pixel is a hole now, and nothing else (the surface stays)
    want[5:25, 8:24:4] = True
    want[12:14, 5:25] = True
    assert np.array_equal(~m & mask, want)
    assert np.isinf(d[~m & mask]).all()  # the dropped pixels: no surface there now
    assert dropped == int(want.sum())
    # the same picture from a camera that is not magnified (a turn on the spot): real gaps, nothing dropped
    m, d = mask.copy(), depth.copy()
    assert holes_module.drop_see_through(m, d, _camera(h, w, 1.0)) == 0 and np.array_equal(m, mask)


def test_see_through_kernel_equals_the_plain_reference():
    rng = np.random.default_rng(3)
    for magnification in (1.4, 1.6, 3.0):
        depth = rng.choice(np.array([1.0, 1.1, 2.0, 5.0, np.inf], np.float32), size=(30, 45))
        mask = rng.random((30, 45)) < 0.8
        camera = _camera(30, 45, magnification)
        camera = holes_module.SourceCamera(
            camera.a, camera.b, camera.proj + rng.normal(0, 0.2, (3, 4)) * [[0], [0], [1]], 1.0
        )
        m, d = mask.copy(), depth.copy()
        holes_module.drop_see_through(m, d, camera)
        want = plain_see_through(mask, depth, camera)
        assert np.array_equal(~m & mask, want)
        assert want.any() == (magnification > 1.5)
