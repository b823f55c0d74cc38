"""How many source views make each plane's cost under forward motion (depth_sweep._views_kept).

Under a sideways path the views before and after a frame see opposite sides of every occluding edge, so each
plane's cost is the mean of the best half of the views (`best_views` 2 of 4). Under forward motion (a dolly)
they see nearly the same occlusions (edges move radially), and the best three of four average out more noise:
`forward_best_views`, chosen when the baselines run along the viewing direction (mean |cos| to the optical axis
at least `forward_motion_cos`: about 1.0 on the dolly, at most 0.3 on the handheld, orbit and moving clips).

Measured here (true poses, sparse points from the true depth, 24 frames at 256x144 through H.264, 192x108
working), dolly: in-range AbsRel 0.0967 -> 0.0857, delta1 0.894 -> 0.905; over all static pixels AbsRel
0.154 -> 0.146. On bench_capture's 40-frame 320x180 dolly (field of view given, tracked poses): novel-view
gap 3.14 -> 2.65 dB, AbsRel at the path's scale 0.188 -> 0.183, same depth time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_capture_depth import STEREO_RANGE, depth_metrics, film, sparse_points, travel

from starbridge.scenes.capture.depth import DepthConfig, estimate_depth
from starbridge.scenes.procedural.clips import ClipConfig, render_clip

#: The rule against the best half of the views under any motion, both at the shipped configuration (six source
#: views at three parallaxes, the near edge's erosion, the epipolar texture test, the ZNCC's noise term 0.0035).
#: The rule was first measured with four views at two parallaxes, matched at 192x108, before those steps (the
#: docstring's numbers); at that configuration and the noise term 0.0035 its in-range gain is 0.0042, at the
#: shipped one 0.0856 -> 0.0798 (delta1 0.912 -> 0.919; all static pixels 0.1347 -> 0.1325). The best four of six
#: would do better still here (0.0775).
OLD = DepthConfig(forward_best_views=2, workers=1)
NEW = DepthConfig(workers=1)


@pytest.mark.slow
def test_forward_motion_averages_more_views(tmp_path: Path) -> None:
    """First measured (four views): old in-range AbsRel 0.0967 (bound 0.092 not met), new 0.0857; at the shipped
    configuration 0.0856 -> 0.0798."""
    d = film("dolly", tmp_path)
    clip = d.clip
    points = sparse_points(clip)
    static = np.isfinite(clip.depth) & ~clip.moving
    in_range = static & (clip.depth <= STEREO_RANGE * travel(clip.poses))
    metrics = {}
    for name, cfg in (("old", OLD), ("new", NEW)):
        result = estimate_depth(d.frames, clip.intrinsics, clip.poses, sparse_points=points, config=cfg)
        metrics[name] = (
            *depth_metrics(result.depth, clip.depth, in_range),
            *depth_metrics(result.depth, clip.depth, static),
        )
    print(f"\ndolly (in-range AbsRel, delta1, all AbsRel, delta1): {metrics}")
    absrel_r, d1_r, absrel, d1 = metrics["new"]
    assert absrel_r <= 0.092 and d1_r >= 0.90
    assert absrel_r <= metrics["old"][0] - 0.005
    assert absrel <= metrics["old"][2] and d1 >= metrics["old"][3]


def test_sideways_motion_keeps_the_best_half() -> None:
    """A sideways walk through the textured, non-planar city: the forward rule does not fire, so the depth is
    the same bits whatever `forward_best_views` is (tolerance 0)."""
    clip = render_clip(ClipConfig(kind="handheld", frames=8, width=96, height=54))
    results = [
        estimate_depth(clip.frames, clip.intrinsics, clip.poses, config=DepthConfig(max_side=96, workers=1,
                                                                                    forward_best_views=k))
        for k in (2, 4)
    ]  # fmt: skip
    assert np.isfinite(results[0].depth).any()
    np.testing.assert_array_equal(results[0].inverse, results[1].inverse)


def test_forward_best_views_is_checked() -> None:
    from starbridge.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="forward_best_views"):
        DepthConfig(forward_best_views=7)
    with pytest.raises(InvalidArgument, match="forward_motion_cos"):
        DepthConfig(forward_motion_cos=1.5)
