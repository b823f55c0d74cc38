"""Settings of the dense-depth stage (`depth.estimate_depth`); see depth.py for what each step does."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InvalidArgument

#: Where the plane refinement and the regions' choice run (`DepthConfig.planes`, `DepthConfig.regions`).
PLANE_MODES = ("off", "fill", "static")
#: Which colour segments the regions' choice cuts its regions in (`DepthConfig.region_segments`).
REGION_SEGMENTS = ("plain", "all")


@dataclass(frozen=True)
class DepthConfig:
    """Settings of `estimate_depth`. Pixel quantities are at the working size (long side `max_side`)."""

    #: Long side of the working images, pixels (the frames are downscaled by area averaging). 320 rather than
    #: 256 (session 40; bench_capture_variants' sixteen 40-frame clips, CRF 16, field of view given, the same
    #: tracked poses): mean novel-view gap 1.474 -> 1.325 dB, AbsRel 0.1022 -> 0.0936, within 2 dB 13 -> 14
    #: and AbsRel <= 0.10 10 -> 12 of 16, AbsRel better on all sixteen, the gap on twelve (worse on world 1's
    #: orbit and walk among moving objects, world 0's 512x288 dolly); the depth stage 1.46x its time
    #: (bench_import_time's 10 s walk at 512x288: 92 -> 135 s, the whole import 162 -> 194 s).
    max_side: int = 320
    #: Long side of the inverse depth kept (`DepthResult.inverse`, what a bundle stores and the later stages
    #: work on), pixels: the working one sampled at these pixels' centres (no blending across depth edges),
    #: then upsampled to the frames guided by their colour. At or above `max_side`: the working size itself.
    #: Matching at 256 and keeping 192 rather than matching at 192 (with the fusion across frames): on
    #: bench_capture's sixteen 40-frame clips (field of view given, the same tracked poses) mean novel-view
    #: gap 2.119 -> 2.039 dB, AbsRel at the path's scale 0.132 -> 0.128, within 2 dB 8 -> 9 of 16; the
    #: 512x288 ones (the import's default size) 2.40 -> 2.20. Keeping 256 as well: 1.988 (the 320x180 clips
    #: 1.98 -> 1.91, the 512x288 ones 2.20 -> 2.21) for 1.8x the stored pixels (bundle, later stages).
    #: Matching at 256 costs the depth stage 1.8x its time (bench_import_time's 10 s walk: 72 -> 129 s).
    store_side: int = 192
    #: Source views per frame, and how many of the best of them make each plane's cost (the best few: at an
    #: occluding edge the views that see behind the edge's near side are left out). Occlusion-aware view sets
    #: instead (per plane and pixel the mean over the views before the frame in time or over those after it,
    #: whichever is less: one side of a sideways path each) lost 0.47 dB of novel-view PSNR on bench_capture's
    #: 40-frame 320x180 handheld clip (field of view given; gap 2.94 -> 3.42 dB, AbsRel 0.167 -> 0.172).
    #: Six views at three parallaxes (`parallax_px`: a wide pair at 36 px beside the 6 and 18 of before), best 2
    #: of them per plane: on bench_capture's 40-frame 320x180 clips (field of view given, the same tracked
    #: poses, moving objects stood on the ground) novel-view gap handheld / dolly / orbit / moving 2.20 / 1.84 /
    #: 2.03 / 2.03 -> 1.91 / 1.74 / 2.05 / 1.77 dB, AbsRel at the path's scale +-0.003; depth CPU +20-30%.
    #: Six views at the old two parallaxes (the nearest others added) 1.97 / 1.87 / 2.25 / 1.99; the two
    #: parallaxes with planes half as far apart (their count, not the views) 2.29 / - / 2.04 / -; best 3 of the
    #: six 2.29 / 1.81 (handheld / dolly); 48 px instead of 36 picks the same frames on these clips.
    source_views: int = 6
    best_views: int = 2
    #: Under forward motion (the baselines along the viewing direction: mean |cos| to the optical axis at least
    #: `forward_motion_cos`) the views before and after see nearly the same occlusions, so more of them make
    #: the cost: `forward_best_views`. On bench_capture's 40-frame 320x180 dolly (field of view given, the same
    #: tracked poses) novel-view gap 3.14 -> 2.65 dB, AbsRel at the path's scale 0.188 -> 0.183, same time
    #: (the sideways clips' cosines are at most 0.3, the dolly's about 1.0). 3 of 4 for every clip instead:
    #: handheld / orbit / moving -0.09 / +0.01 / -0.30 dB (occlusions differ between the sides there).
    forward_best_views: int = 3
    forward_motion_cos: float = 0.7
    #: Also tried on those clips (handheld / dolly unless named, dB of novel-view PSNR, same poses), none kept:
    #: `min_consistent_views` 2 -0.68 / +0.31; `consistency_px` 0.5 -0.08 / -0.01; SGM P1 / P2 0.05 / 0.3
    #: -0.50 (handheld); the sub-plane parabola on the unaggregated cost -0.16 / -0.03; `fill_ridge` 1e-3 -0.10
    #: (handheld); `snap_band` 3 +0.02 / -0.02; `parallax_px` (5, 14) -0.07 / moving +0.11; 6 views at (6, 18,
    #: 36) parallax, best 3, before the moving objects were stood on the ground: +0.05 (handheld) for +40%
    #: time; a third view wherever its cost is within 0.1 of the second's -0.10 / moving +0.01; the sky as
    #: fill support at inverse depth 0 -0.03 / -0.02 (AbsRel -0.001); fill weights favouring the farther
    #: support (x median / rho) -0.07 / -0.12, AbsRel 0.156 -> 0.150 / 0.188 -> 0.197 (the hazy towers get
    #: farther, the dolly's near box too).
    #: Target parallaxes of the source views at the frame's typical depth, working pixels.
    parallax_px: tuple[float, ...] = (6.0, 18.0, 36.0)
    #: A source view needs at least this parallax (below it, the frame has no stereo: +inf).
    min_parallax_px: float = 1.0
    #: Largest angle between the viewing directions of a frame and a source view, degrees.
    max_view_angle_deg: float = 40.0
    #: ZNCC window side, pixels (odd).
    window: int = 5
    #: Plane spacing, pixels of disparity in the widest source view, and the most planes.
    plane_step_px: float = 1.0
    max_planes: int = 96
    min_planes: int = 24
    #: Shiftable windows: each pixel's cost is the least over the windows within `cost_shift` pixels that
    #: contain it (a minimum filter over the window costs), where that beats the centred window's cost by more
    #: than `cost_shift_penalty`; so a pixel beside a depth edge is matched by a window on its own side of the
    #: edge (less fattening of the more textured surface over the other), while flat areas, where every cost
    #: is noise, keep their centred window. 0: off. On bench_capture's 40-frame 320x180 clips (field of view
    #: given) 1 / 0.05, with `fill_sigma_r` 0.16, gained 0.17 / 0.33 / 0.25 dB of novel-view PSNR on handheld
    #: / dolly / moving (-0.03 on orbit) for +0.002 / +0.010 / +0.001 AbsRel at the path's scale.
    cost_shift: int = 1
    cost_shift_penalty: float = 0.05
    #: Semi-global matching penalties (cost units: 1 - ZNCC, in [0, 2]) and the grey step that halves P2.
    sgm_p1: float = 0.3
    sgm_p2: float = 2.0
    sgm_edge: float = 0.05
    sgm_paths: int = 4
    #: Grey std (in [0, 1]) added to both windows' variance in the ZNCC, so that flat windows (noise only)
    #: score near 0 instead of matching compression noise. At 0.01 a faint texture (a hazy tower's stripes, grey
    #: std about 0.011) scored at most ~0.55, at the `min_zncc` line. 0.01 -> 0.0035 on bench_capture_variants.py's
    #: sixteen clips (docs/capture-measurements.md, "The ZNCC's noise term"): CRF 16 mean gap 1.511 -> 1.453 dB,
    #: better on 12, worse on 3 (world 2's orbit 2.00 -> 2.15), AbsRel 0.1047 -> 0.1020; CRF 15 / 17 1.518 / 1.487
    #: -> 1.441 / 1.484, AbsRel better on all three encodes; 0.005 / 0.007: 1.476 / 1.488 dB. The steps measured
    #: at 0.01 keep their sign (the near edge's erosion, forward motion's extra views: their tests).
    zncc_noise: float = 0.0035
    #: Confident needs a ZNCC of at least `min_zncc` at the winning plane, a local grey std of at least
    #: `min_texture` (grey in [0, 1]), and geometric consistency with `min_consistent_views` source views:
    #: reprojected within `consistency_px` pixels and `consistency_depth` relative depth.
    min_zncc: float = 0.5
    min_texture: float = 0.008
    #: ...and at least this share of the local grey gradient's energy along the epipolar line through the pixel
    #: (depth_sweep.epipolar_texture; 0: off): stripes that run along the camera's motion (a box's bands, tile
    #: edges along a walk) look the same at every plane, and SGM gives them whatever its neighbours say. On
    #: bench_capture's sixteen 40-frame clips (field of view given, the same tracked poses, with the near-edge
    #: erosion below): mean novel-view gap 1.805 -> 1.784 / 1.762 / 1.782 dB at 0.1 / 0.2 / 0.3, within 2 dB
    #: 10 -> 10 / 11 / 11 of 16, AbsRel at the path's scale 0.1211 -> 0.1207 / 0.1218 / 0.1237; at 0.2 world 0's
    #: 512x288 dolly 2.20 -> 1.93 (its plain box), orbit 1.71 -> 1.58, dolly 1.81 -> 1.63; worse on four (world 2's
    #: dolly 2.60 -> 2.68, walk 1.77 -> 1.84).
    min_epipolar_texture: float = 0.2
    min_consistent_views: int = 1
    consistency_px: float = 1.0
    consistency_depth: float = 0.05
    #: Average each confident inverse depth with those of the consistent source views (less noise).
    fuse: bool = True
    #: Fusion across frames (depth_fuse.py): the confident depths of the frames within `fuse_frames` of a
    #: frame (0: off) projected into it, kept where its colour there is within `fuse_colour` (largest channel
    #: difference, colour in [0, 1]) of theirs; a confident pixel is averaged with those within
    #: `consistency_depth` (its own with weight `fuse_own_weight`), one that is not becomes confident where
    #: `fuse_votes` of them agree. On bench_capture's sixteen 40-frame clips (field of view given, the same
    #: tracked poses) mean novel-view gap 2.288 -> 2.119 dB, AbsRel at the path's scale 0.141 -> 0.132,
    #: within 2 dB 6 -> 8 of 16. On world 0's four 320x180 clips (mean gap 1.77 dB without): averaging only
    #: (no new confident pixels) 1.75; 8 frames 1.59, 16 1.55, all 40 1.55; 2 votes 1.60; colour 0.05
    #: 1.57, 0.15 1.65 (occluded points let in); agreement 0.03 instead of 0.05 1.55.
    fuse_frames: int = 16
    fuse_votes: int = 3
    fuse_colour: float = 0.08
    fuse_own_weight: float = 2.0
    #: Before the fill (depth_fill.erode_near_edges): a confident pixel with a confident neighbour within
    #: `edge_erode_px` (0: off) farther by more than `edge_erode_jump` in relative inverse depth is not
    #: confident: the near side's outermost pixel at each depth edge, where the sweep's windows straddling the
    #: edge give the far side the near side's depth (fattening); the fill and the edge snapping then choose its
    #: side by colour. Measured from the truth first: the wrong confident matches within 25 m (5-6% of them,
    #: most within a pixel of a true depth edge, too near) dropped by an oracle took world 0's walk from 1.19 to
    #: 0.82 dB of novel-view gap. With this test, on bench_capture's sixteen 40-frame clips (field of view
    #: given, the same tracked poses): mean gap 1.885 -> 1.805 dB, within 2 dB 9 -> 10 of 16, AbsRel at the
    #: path's scale 0.122 -> 0.121; better on twelve (world 2's dolly 2.84 -> 2.60, orbit 2.44 -> 2.24), worse
    #: on three (world 0's 512x288 dolly 2.04 -> 2.20: a plain box whose only correct matches are its sides,
    #: beside wrong far ones inside); it drops 5.5% of the confident pixels. Not kept: a jump of 0.3 (1.847 dB);
    #: dropping only where the pixel's colour is nearer the farther neighbours' (1.871); keeping a pixel with
    #: farther ones within 3 px on both sides, a thin near structure (1.837).
    edge_erode_px: int = 1
    edge_erode_jump: float = 0.15
    #: Confident inverse depths below this many plane steps are at infinity.
    far_planes: float = 0.35
    #: Sky: regions of flat colour (local std of every channel below `sky_texture`) touching the top border,
    #: grown into neighbours within `sky_grow_colour`, whose confident surroundings are far: the
    #: `sky_ring_percentile` of their inverse depths at most `sky_far_ratio` times the frame's median.
    sky_texture: float = 0.012
    sky_grow_colour: float = 0.03
    sky_ring_percentile: float = 25.0
    sky_far_ratio: float = 0.9
    #: ...unless the region is a wall: it encloses confident finite depth over at least `sky_wall_inner` of its
    #: area (windows in a plain facade) whose median inverse depth is at most `sky_wall_agree` times the
    #: ring's (as far as the region's own outline; a near object floating in the sky is not). Without this
    #: test a plain facade at mid range touching the top border, farther than the frame's median, was sky: on
    #: bench_capture's 40-frame 320x180 clips (field of view given) 45% of the 5-10 m pixels of the `moving`
    #: clip and of handheld frames 4-12 were at infinity; with it the novel-view gap fell by 0.59 dB (moving).
    sky_wall_inner: float = 0.01
    sky_wall_agree: float = 1.5
    #: Edge-aware fill: spatial sigma as a fraction of the working long side; range sigma in colour [0, 1];
    #: a plane per pixel (`fill_linear`, slopes pulled to zero by `fill_ridge` in squared image units where
    #: the support is thin) or a weighted mean. Range sigma 0.16 rather than 0.08: +0.14 / +0.08 / +0.11 dB on
    #: handheld / dolly / moving (orbit -0.01); 0.04 and 0.02 lost 0.2-0.5 dB (holes cut off from support).
    #: Not kept: a hole whose plane value falls between clusters of its support (under a quarter of the
    #: support's weight within a bin of it; the edge-aware weights spread over 16 / 24 log bins of inverse
    #: depth) takes the heaviest cluster's mean instead of the blend. On bench_capture's sixteen 40-frame
    #: clips (field of view given, the same tracked poses) AbsRel at the path's scale 0.122 -> 0.118 / 0.115
    #: (14 of 16 better, none worse by more than 0.002) but the novel-view gap 1.885 -> 1.885 / 1.921 dB, and
    #: the novel views of world 0's 512x288 dolly tore (the yellow box showing inside the teal box's face), also
    #: with half the range / spatial sigma, a 60% majority or a colour-guided choice of the cluster: that face's
    #: only confident pixels, on its outline, are wrong, and the blend had hidden it (docs/capture-measurements.md
    #: "Where the gap is now").
    #: Not kept either: the fill (its plane per pixel) in log inverse depth rather than inverse depth, so that a
    #: hole whose support mixes far and near surfaces is not pulled to the near ones as a mean of inverse depths
    #: pulls it (world 2's orbit: the hazy towers' unmatched pixels filled at a median 0.47 of their depth). On
    #: bench_capture_variants.py's sixteen clips (CRF 16): mean gap 1.726 -> 1.714 dB, within 2 dB 12 -> 11,
    #: AbsRel 0.1069 -> 0.1065, better on 10 and worse on 6 (world 0's dolly 1.46 -> 1.64, its 512x288 one 1.95 ->
    #: 2.07; world 2's orbit 2.30 -> 2.12 and dolly 2.59 -> 2.37): the towers' fill comes from the houses around
    #: them however it is averaged (docs/capture-measurements.md, "The towers' unmatched pixels").
    fill_sigma_s: float = 0.15
    fill_sigma_r: float = 0.16
    fill_linear: bool = True
    fill_ridge: float = 1e-4
    #: Piecewise-planar refinement of the filled pixels (depth_planes.py): superpixels cut at colour edges
    #: (seeds: flat-colour regions where the gradient is below `plane_flat_step`, else one per
    #: `plane_segment_px` cell), in each a RANSAC plane (`plane_iterations` samples) in inverse depth through its
    #: confident pixels (at least `plane_min_support`; inliers within `plane_tolerance`, relative, at least
    #: `plane_min_inliers` of them) replaces the fill of the plain regions' segments where it is within
    #: `plane_max_change` (relative; 0: anywhere) of the fill: it mends a surface's inside, not where its
    #: edge is. `planes`: "static" (the default) runs it on the kept depth after the moving objects are
    #: placed (pipeline.py), on the static pixels; "fill" inside the fill, before them; "off". On
    #: bench_capture's sixteen 40-frame clips (field of view given, the same tracked poses; harness): "static"
    #: at 0.25 against "off", mean novel-view gap 1.754 -> 1.744 dB, within 2 dB 11 -> 12 of 16 (world 0's
    #: 512x288 orbit 2.02 -> 1.92), AbsRel at the path's scale 0.1217 -> 0.1188 (better on 15 of 16), AbsRel
    #: <= 0.10 3 -> 4 clips; the moving objects' depth unchanged. "fill" at 0.25: gap 1.766, AbsRel 0.1186:
    #: there the changed static depth moved the moving objects' placement (world 2's orbit +0.13 dB, its
    #: dolly +0.10, their objects' AbsRel 0.230 -> 0.169, 0.179 -> 0.257), and with no limit on the change
    #: 512x288 walk +0.32 dB. "static" with no limit / 0.5 on eight of the clips: AbsRel lower still (world 0's
    #: 512x288 walk 0.101 -> 0.098) but world 0's walk 1.10 -> 1.22 / 1.18 dB (a plane moving a depth edge).
    #: Before the limit (the fill's pass, no limit, one clip) it was off: AbsRel 0.167 -> 0.160 and +0.00 dB;
    #: the plain faces' only support is their lines and outline, where the textured background fattens over
    #: them, so few box faces get a plane. About 24 ms a frame at the kept size (bench_import_time's 300-frame
    #: 512x288 walk: 7.2 s of 230 s of stages).
    planes: str = "static"
    plane_segment_px: int = 8
    plane_flat_step: float = 0.02
    plane_min_support: int = 12
    plane_tolerance: float = 0.03
    plane_iterations: int = 48
    plane_min_inliers: float = 0.8
    plane_max_change: float = 0.25
    #: Depth edges snapped to colour edges after the fill (depth_snap.py says how): the band (`snap_band` pixels
    #: about jumps of more than 1 + `snap_jump` in inverse depth), the window (`snap_radius`), colour likeness
    #: (`snap_sigma_colour`, L1 over RGB in [0, 1]), the band's own weight, the support ratio a move needs
    #: (`snap_margin`), the ramp test (`snap_ramp`) and the colour step the two sides need (`snap_contrast`).
    #: On bench_capture's 40-frame 320x180 clips (field of view given, the same tracked poses for both) the
    #: novel-view gap 2.94 / 2.52 / 3.54 / 2.82 -> 2.90 / 2.51 / 3.52 / 2.80 dB on handheld / orbit / dolly /
    #: moving, AbsRel at the path's scale 0.167 / 0.127 / 0.215 / 0.167 -> 0.166 / 0.126 / 0.213 / 0.165; it
    #: moves 0.6% of the pixels (the fattened outline of textured things over plain ones: a box on a facade,
    #: the sphere). Tried: jump 0.15 (more ground ramps taken for edges), radius 5 (half the gain), two passes
    #: (-0.02 dB against one), no ramp test (handheld -0.20 dB), snapping the sky's outline too (-0.06 dB), a
    #: colour-weighted plane fit instead of the median (more pixels made worse than better), snapping the
    #: confident matches before the fill as well (handheld / dolly AbsRel 0.164 / 0.212 but -0.11 / -0.05 dB).
    snap: bool = True
    snap_jump: float = 0.3
    snap_band: int = 2
    snap_radius: int = 7
    snap_sigma_colour: float = 0.05
    snap_band_weight: float = 0.1
    snap_margin: float = 2.0
    snap_ramp: float = 0.2
    snap_contrast: float = 0.1
    #: Each hole region's depth chosen by the source views (depth_regions.py): the holes cut into regions
    #: (connected within a colour segment, at least `region_min_pixels`), candidates the fill and the
    #: `region_percentiles` of the confident inverse depths within `region_ring_px` of the region, each scored by
    #: the mean L1 colour difference of the region warped at it into the source views (every hypothesis on the
    #: same views, each its `region_best_views` best); a candidate replaces the fill where it scores below
    #: `region_margin` times it (and by more than `region_min_gain`). `regions`: "fill" (the default) runs it in
    #: the depth stage after the fill and the snapping; "static" after the moving objects are placed, on the
    #: kept depth's static pixels (moving pixels left out of the regions and the warped samples); "off". On
    #: bench_capture's sixteen 40-frame clips (field of view given, the same tracked poses; harness), against
    #: "off": "fill" mean novel-view gap 1.754 -> 1.737 dB (within 2 dB 12 of 16 either way), AbsRel (median
    #: scale) 0.1152 -> 0.1095, AbsRel <= 0.10 on 4 -> 7 clips; better on nine (world 0's walk 1.108 -> 0.997,
    #: its 512x288 walk among moving objects 2.47 -> 2.29), worse on seven (world 1's walk 1.36 -> 1.60: its
    #: plain white box moving before the camera took a depth under which its motion looks static, and the
    #: moving masks missed it, IoU 0.67 -> 0.58; the masks of eleven clips got better, world 0's 512x288 orbit
    #: 0.64 -> 0.68). "static": 1.756 dB, 0.1114, 6 clips (the masks as "off"; the improved depth does not reach
    #: them). Each hypothesis on its own best views among all (not one pool per region): world 2's orbit 2.38
    #: (2.22 with the pool: a region at the frame's border judged on other views than its fill); margin 0.9
    #: against 0.8 / 1.0 on frame 20 of world 0's walk (AbsRel of the frame's static pixels -0.029 / -0.024 /
    #: -0.025); `region_min_gain` 0.005 on six clips: the same to 0.01 dB but the gains halved. About 0.2 s a
    #: frame at the working size (6 source views). `region_segments`: "plain" (the default) cuts regions in the
    #: plain segments only (as the planes do: a textured cell's holes sit at depth edges, where a constant depth
    #: moves the edge), "all" in every segment; the numbers above are "all"'s; "plain" on the same clips: mean
    #: gap 1.716 dB, AbsRel 0.1094, within 2 dB 12, AbsRel <= 0.10 on 7; better than "all" on nine (world 1's
    #: walk 1.60 -> 1.42: its white box's masks back), worse on six (world 0's walk 1.00 -> 1.05). Then
    #: (bench_capture_variants.py, the same sixteen clips, "plain") margin 0.9 -> 0.95 / 1.0: mean gap 1.726 ->
    #: 1.726 / 1.744 dB, AbsRel 0.1093 -> 0.1069 / 0.1049, AbsRel <= 0.10 on 7 -> 8 / 9 clips, within 2 dB 12
    #: either way (0.95: world 0's dolly 1.54 -> 1.46 and AbsRel 0.149 -> 0.134; world 1's dolly 1.52 -> 1.61);
    #: five levels (5, 25, 50, 75, 95) instead of three 1.728 dB, AbsRel as it was; both with 0.95 1.747.
    #: Not kept (docs/capture-measurements.md, "A far tower sharing a region with a near roof"): a plain segment
    #: can hold two surfaces (the watershed floods a thin near roof line into the far tower and sky beside it, so
    #: one depth fits neither and the fill stays); cutting the regions at the flat-colour regions instead
    #: (the segments' seeds, no lines) made world 0's AbsRel worse on all four clips (0.099 / 0.098 / 0.134 /
    #: 0.115 -> 0.102 / 0.100 / 0.137 / 0.119; the lines' pixels carry the outline's evidence); a second pass
    #: over each region's flat parts after the region's own choice, on the twelve 320x180 clips (CRF 16): mean
    #: gap 1.650 -> 1.644 dB, AbsRel 0.1104 -> 0.1095 (better on nine, worse on one), no clip across a target.
    regions: str = "fill"
    region_segments: str = "plain"
    region_margin: float = 0.95
    region_min_gain: float = 0.0
    region_percentiles: tuple[float, ...] = (5.0, 50.0, 95.0)
    region_ring_px: int = 2
    region_min_pixels: int = 8
    region_best_views: int = 2
    #: Scored with each region (its candidate depth, and under the fill's hypothesis the fill of the region's
    #: nearest pixel): the farther half of the confident pixels of its own colour segment within this many
    #: pixels of it, its outline (0: the region alone). A plain face's telling pixels are its outline (a far
    #: tower's side against the sky), confident and so not in the region; the nearer half may be a nearer
    #: neighbour's edge fattened over it. On bench_capture_variants.py's sixteen clips (CRF 16, field of view
    #: given, the same tracked poses) at 1 / 2 px: mean gap 1.726 -> 1.711 / 1.703 dB, AbsRel 0.1069 -> 0.1065 /
    #: 0.1066, within 2 dB 12 and AbsRel <= 0.10 8 of 16 either way, gap better on 9 / 10 clips, worse on 3 / 3
    #: (at 2: world 1's walk among moving objects 1.79 -> 1.62, world 0's 512x288 dolly 1.95 -> 1.89; world 2's
    #: walk 1.83 -> 1.94, world 0's orbit 1.49 -> 1.53). The whole outline instead of its farther half: 1.714 /
    #: 1.708 dB but AbsRel 0.1075 / 0.1082 (far faces pulled nearer). bench/results/capture-variants-vm-outline.json.
    region_outline_px: int = 2
    #: Upsampling: four neighbours within this relative inverse-depth spread are blended bilinearly (else the
    #: nearest in colour is taken). Until the bundle redid this step at load the spread was, by mistake, the
    #: blended inverse depth itself (scale-dependent: ~140% in the tracking units of the clips measured). On
    #: 40-frame 320x180 handheld / dolly clips (bench_capture's novel views) 0.1 cost 0.08 / 0.06 dB against
    #: that, 0.3 0.00 / 0.03 dB, 1.0 +0.02 / -0.02: 0.3 keeps edges of more than 30% sharp at no cost.
    upsample_blend: float = 0.3
    #: Depth range from sparse points: near = this percentile of their depths / `near_margin`. The dolly's
    #: last frames come 1.2 m from a plain box that holds one or two of the ~140 points each frame sees, so
    #: near is 1.9 m there; the 3rd-nearest point instead (when nearer) reached it, but on bench_capture's
    #: dolly clip (field of view given) AbsRel 0.215 -> 0.207 for -0.18 dB of novel-view PSNR (3.54 -> 3.72 dB
    #: gap): the box has no texture to match, its depth is the fill's either way, and the nearer planes add
    #: wrong near matches elsewhere.
    near_percentile: float = 2.0
    near_margin: float = 1.5
    #: Without sparse points: near and typical depth as multiples of the clip's camera extent.
    fallback_near_extent: float = 0.5
    fallback_typical_extent: float = 4.0
    #: Threads over frames (0: min(4, CPU count)).
    workers: int = 0

    def __post_init__(self) -> None:
        checks = [
            (16 <= self.max_side <= 4096, "max_side must be in [16, 4096]"),
            (self.store_side >= 16, "store_side must be >= 16"),
            (1 <= self.best_views <= self.source_views <= 8, "need 1 <= best_views <= source_views <= 8"),
            (1 <= self.forward_best_views <= self.source_views, "need 1 <= forward_best_views <= source_views"),
            (0 <= self.forward_motion_cos <= 1, "forward_motion_cos must be in [0, 1]"),
            (self.window >= 3 and self.window % 2 == 1, "window must be odd and >= 3"),
            (2 <= self.min_planes <= self.max_planes <= 512, "need 2 <= min_planes <= max_planes <= 512"),
            (self.plane_step_px > 0 and self.min_parallax_px > 0, "plane_step_px and min_parallax_px must be > 0"),
            (len(self.parallax_px) > 0 and min(self.parallax_px) > 0, "parallax_px must be positive"),
            (self.near_margin >= 1.0 and 0 <= self.near_percentile < 50, "near_margin >= 1, near_percentile < 50"),
            (self.workers >= 0, "workers must be >= 0"),
            (
                self.fuse_frames >= 0 and self.fuse_votes >= 1 and self.fuse_colour > 0 and self.fuse_own_weight >= 0,
                "need fuse_frames >= 0, fuse_votes >= 1, fuse_colour > 0 and fuse_own_weight >= 0",
            ),
            (0 <= self.min_epipolar_texture < 1, "min_epipolar_texture must be in [0, 1)"),
            (self.plane_max_change >= 0, "plane_max_change must be >= 0 (0: no limit)"),
            (self.planes in PLANE_MODES, f"planes must be one of {', '.join(PLANE_MODES)}"),
            (self.regions in PLANE_MODES, f"regions must be one of {', '.join(PLANE_MODES)}"),
            (self.region_segments in REGION_SEGMENTS, f"region_segments must be one of {', '.join(REGION_SEGMENTS)}"),
            (
                0 < self.region_margin <= 1
                and self.region_min_gain >= 0
                and len(self.region_percentiles) > 0
                and all(0 <= q <= 100 for q in self.region_percentiles)
                and self.region_ring_px >= 1
                and 0 <= self.region_outline_px <= 8
                and self.region_min_pixels >= 1
                and 1 <= self.region_best_views <= self.source_views,
                "need region_margin in (0, 1], region_min_gain >= 0, region_percentiles in [0, 100], "
                "region_ring_px >= 1, region_outline_px in [0, 8], region_min_pixels >= 1 and "
                "1 <= region_best_views <= source_views",
            ),
            (
                0 <= self.edge_erode_px <= 8 and 0 < self.edge_erode_jump < 1,
                "need edge_erode_px in [0, 8] and edge_erode_jump in (0, 1)",
            ),
            (self.cost_shift >= 0 and self.cost_shift_penalty >= 0, "cost_shift and cost_shift_penalty must be >= 0"),
            (
                self.snap_jump > 0 and self.snap_band >= 1 and 1 <= self.snap_radius <= 16,
                "need snap_jump > 0, snap_band >= 1 and 1 <= snap_radius <= 16",
            ),
            (
                self.snap_sigma_colour > 0
                and 0 <= self.snap_band_weight <= 1
                and self.snap_margin >= 1
                and 0 < self.snap_ramp <= 1
                and self.snap_contrast >= 0,
                "need snap_sigma_colour > 0, snap_band_weight in [0, 1], snap_margin >= 1, snap_ramp in (0, 1], "
                "snap_contrast >= 0",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidArgument(f"DepthConfig: {message}", field="depth_config")
