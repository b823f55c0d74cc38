"""The fill's first step (depth_fill.erode_near_edges): the near side's outermost confident pixel at each depth
edge is no longer confident, the far side, the interiors and the not-confident pixels' neighbours are kept."""

from __future__ import annotations

import numpy as np
import pytest
from test_capture_depth_snap import _error, _outline, _scene

from starbridge.errors import InvalidArgument
from starbridge.scenes.capture.depth import estimate_depth
from starbridge.scenes.capture.depth_config import DepthConfig
from starbridge.scenes.capture.depth_fill import erode_near_edges


def _edge() -> tuple[np.ndarray, np.ndarray]:
    """12 x 12 inverse depth: a near wall (1.0) on columns 0-5, a far one (0.5) on 6-11, both confident; a
    confident block at infinity (0) in the near wall's rows 0-2, columns 0-2; a not-confident hole in the near
    wall (rows 8-9, columns 1-2) with a stray value under it."""
    rho = np.full((12, 12), 1.0, np.float32)
    rho[:, 6:] = 0.5
    rho[0:3, 0:3] = 0.0
    conf = np.ones((12, 12), bool)
    conf[8:10, 1:3] = False
    rho[8:10, 1:3] = 0.1  # not confident: must not count as a far neighbour
    return rho, conf


def test_near_side_of_an_edge_is_dropped_far_side_kept() -> None:
    rho, conf = _edge()
    out = erode_near_edges(rho, conf, 1, 0.15)
    dropped = conf & ~out
    assert not (out & ~conf).any(), "nothing becomes confident"
    # The near wall's column beside the far wall goes, in every row.
    assert dropped[:, 5].all()
    # The far wall and the near wall's interior stay.
    assert out[:, 6:].all()
    assert out[4:8, 0:5].all() and out[10:, 0:5].all()
    # Beside the block at infinity (the farthest there is), the near pixels go; the block itself stays.
    assert out[0:3, 0:3].all()
    assert dropped[3, 0:4].all() and dropped[0:3, 3].all()
    # A not-confident neighbour (whatever value lies under it) does not make a pixel an edge.
    assert out[7:11, 0:4][conf[7:11, 0:4]].all()
    assert int(dropped.sum()) == 12 + 4 + 3


def test_small_jumps_and_radius_zero_keep_everything() -> None:
    rho, conf = _edge()
    slanted = np.where(conf, np.linspace(1.0, 0.9, 12, dtype=np.float32)[None, :], 0.0)
    slanted[:, 6:] *= 0.9  # a 10% step: below the 15% jump
    slanted[0:3, 0:3] = 0.95
    assert (erode_near_edges(slanted, conf, 1, 0.15) == conf).all()
    assert (erode_near_edges(rho, conf, 0, 0.15) == conf).all()
    assert not erode_near_edges(rho, np.zeros_like(conf), 1, 0.15).any()


def test_radius_two_drops_two_columns() -> None:
    rho, conf = _edge()
    out = erode_near_edges(rho, conf, 2, 0.15)
    assert not out[3:, 4:6].any()
    assert out[5:8, 0:4].all() and out[:, 6:].all()
    assert not out[3:5, 0:5].any()  # two rows beside the block at infinity


@pytest.mark.parametrize(("field", "value"), [("edge_erode_px", -1), ("edge_erode_px", 9), ("edge_erode_jump", 0.0)])
def test_erode_config_is_checked(field: str, value: float) -> None:
    with pytest.raises(InvalidArgument, match="edge_erode"):
        DepthConfig(**{field: value})


def test_erosion_pulls_a_textured_sphere_off_the_wall() -> None:
    """Through the whole depth stage (test_capture_depth_snap's sphere before a plain wall): the textured sphere's
    depth fattens over the wall beside it; without its outermost confident pixel the fill and the snap give
    those wall pixels the wall's depth. Measured (error within 3 px beyond the outline): 0.207 -> 0.174, the
    sphere's side 0.038 -> 0.050, whole frame 0.065 -> 0.065. Where it loses: the plain box with bands along
    the walk (its interior matched at the wall's depth: the aperture problem), whose only correct pixels, its
    sides, are an edge's near side: its side of the outline 0.354 -> 0.499, whole frame 0.077 -> 0.080
    (docs/capture-measurements.md, "The near side's outermost pixel"). Measured without the epipolar texture
    test, which came later (with it the sphere's scene goes 0.215 -> 0.192 beyond the outline). With the ZNCC's
    noise term at 0.0035 (it was 0.01 then) the plain wall's pixels beside the sphere match better on their own:
    beyond the outline 0.130 -> 0.120 with the erosion (0.206 -> 0.160 at 0.01), whole frame 0.0614 both ways.
    Matched at 320 (the shipped `max_side` since; this scene's own size), with the regions' choice after the
    fill: 0.166 -> 0.148 beyond the outline, but the whole frame 0.066 -> 0.106: the erosion's larger holes in
    the pink wall between its windows become regions that the choice moves 1.2x too far (the periodic windows
    match at a wrong depth on the border too). Without the regions' choice, the steps this test is about
    (erosion, fill, snap): 0.181 -> 0.150 beyond the outline, whole frame 0.0749 -> 0.0762; that is what it
    checks (docs/capture-measurements.md, "Matched at 320")."""
    frames, depth, mask, poses, intr, points = _scene("sphere")
    _, outside = _outline(mask, 3)
    every = np.isfinite(depth[3])
    err = {}
    for radius in (0, 1):
        cfg = DepthConfig(workers=1, edge_erode_px=radius, min_epipolar_texture=0.0, regions="off")
        d = estimate_depth(frames, intr, poses, sparse_points=points, config=cfg).depth[3]
        err[radius] = (_error(d, depth[3], outside), _error(d, depth[3], every))
    print(f"\nbeyond the sphere / whole frame, without / with the erosion: {err}")
    assert err[1][0] < 0.9 * err[0][0]
    assert err[1][1] < err[0][1] + 0.003
