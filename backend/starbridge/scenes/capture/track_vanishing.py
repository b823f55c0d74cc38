"""The field of view from the picture itself: orthogonal vanishing points (a cue for when the camera motion
cannot give it: an orbit, a dolly, a fixed camera).

Man-made scenes are full of straight edges along a few directions: building corners, window rows, floor
tiles, kerbs. Edges parallel in the world meet in the image at a vanishing point v (principal point at the
image centre, square pixels); two world directions at right angles give vanishing points with
(v1 - c).(v2 - c) = -f^2 (Caprile & Torre 1990), which fixes the focal length f from one frame. Per keyframe:

1. line segments: a small detector on scipy.ndimage (the line-support regions of Burns et al. 1986, as in
   LSD): edge pixels (strong, coherent structure-tensor orientation, thinned to one pixel by non-maximum
   suppression so parallel edges a few pixels apart stay apart) grouped by orientation (two staggered
   quantisations, so a line never falls on a bin edge in both), connected regions fitted by their principal
   axis, the long thin ones kept. OpenCV's LSD would do it too, but OpenCV is not a serving dependency (a
   40 MB wheel for one function; scipy is one already) and the vanishing points need only a few dozen good
   segments per frame;
2. vanishing points by sequential RANSAC over pairs of segments (a segment supports v when it points at it
   within `inlier_deg`), each refined by least squares over its supporters, the supporters removed;
3. every pair of vanishing points that are both finite and on opposite sides of the centre gives a focal
   length, hence a field of view, when it falls in `fov_range_deg`.

Pairs that are not at right angles in the world (two buildings turned differently) give values that change
as the camera turns; right angles give the same value in every keyframe. So the keyframes vote, each pair's
vote weighted by its weaker vanishing point's support over the frame's best pair's (a pair of weak ones, five
segments each, is often two faces not at right angles, and it repeats in every keyframe of a camera that
barely turns: a tripod turning 1 degree at 45 had 45.6 from every keyframe's strongest pair and 51.6 from weak
pairs in three of five, and counted alike the two were a tie): the field of view most keyframes have a pair
near is the estimate, its spread over them the uncertainty; too few
keyframes agreeing, or a rival value nearly as popular, and the cue says it found nothing
(`VanishingCue.determined` False), never a guess.

Measured (tests/scenes/capture/test_capture_vanishing.py, bench/bench_capture.py; 320x180 renders through
H.264; render version 2, the boxes' patterns averaged over each pixel): street-corner views (turned 20-50
degrees, tilted 10 down) at 45 and 70 degrees give 44.8 and 70.3 +- 1.0; a 24-frame orbit at 70 gives 70.3 +-
1.0 (the motion alone 69.8 +- 2.4). Its limit: at 48 degrees
(a phone's) the benchmark clips' keyframes rarely hold two finite, well-placed vanishing points at once (the
camera level, turning 25 degrees at most: one family's vanishing point lies far off to the side, its edges
short and stair-stepped), so no value gathers the needed agreement and the cue abstains on every clip. A
more permissive detector there (shorter segments, 40 keyframes) finds a consistent *wrong* value (56 on the
orbit, 12 of 33 keyframes): the thresholds below are set to abstain rather than risk that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ...errors import InvalidArgument


@dataclass(frozen=True)
class VanishingConfig:
    #: At most this many frames (evenly spread over those given) are searched.
    max_frames: int = 12
    #: Pixels whose gradient (Sobel, 0..255 grey levels per pixel, the structure tensor's root trace) is
    #: weaker than this are no edge.
    min_gradient: float = 5.0
    #: Blur before the gradients (pixels; renders and small frames are aliased: stair-stepped edges).
    blur_sigma: float = 0.8
    #: The structure tensor's smoothing (pixels) and the least coherence (0..1) of an edge pixel's orientation.
    tensor_sigma: float = 1.5
    min_coherence: float = 0.6
    #: Orientation bins over 180 degrees (each staggered quantisation).
    orientation_bins: int = 16
    #: A segment is at least this long (fraction of the image height) and this many times longer than wide.
    min_length: float = 0.08
    min_elongation: float = 4.0
    #: A segment supports a vanishing point when it points at it within this many degrees.
    inlier_deg: float = 1.0
    #: RANSAC hypotheses per vanishing point; at most this many vanishing points per frame.
    hypotheses: int = 400
    max_points: int = 5
    #: A vanishing point needs at least this many supporting segments.
    min_support: int = 5
    #: Vanishing points further from the centre than this many image heights count as at infinity.
    max_distance: float = 25.0
    #: Fields of view outside this range are no vote (degrees, vertical).
    fov_range_deg: tuple[float, float] = (25.0, 110.0)
    #: A keyframe agrees with a value when one of its pairs gives it within this many degrees.
    agree_deg: float = 2.0
    #: The cue holds when at least this many keyframes agree, this fraction of those that voted and this
    #: fraction of all searched (measured: a dolly filmed at 70 degrees had 3 of its 12 keyframes agree on
    #: 33.6, by pairs of directions that are not at right angles; true right angles, 4-5 of 9-12)...
    min_agreeing: int = 3
    min_agreeing_fraction: float = 0.4
    min_searched_fraction: float = 0.3
    #: ...and no value further than `rival_deg` away has more than `max_rival` times as many agreeing.
    rival_deg: float = 6.0
    max_rival: float = 0.7
    #: The uncertainty: the agreeing keyframes' spread (robust standard deviation) over the square root of
    #: their number, times this (neighbouring keyframes see the same edges: their errors are not
    #: independent), and at least `sigma_floor_deg`.
    sigma_inflation: float = 2.0
    sigma_floor_deg: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.fov_range_deg
        if not (self.max_frames >= 1 and self.min_support >= 2 and 0 < lo < hi < 180 and self.inlier_deg > 0):
            raise InvalidArgument(
                f"vanishing config: max_frames >= 1, min_support >= 2, 0 < fov range < 180, inlier_deg > 0: {self}"
            )


@dataclass(frozen=True)
class Segments:
    """Line segments of one image: centres (K, 2) and unit directions (K, 2), pixels (x right, y down, the
    top-left pixel's centre at (0.5, 0.5)), lengths (K,)."""

    centre: np.ndarray = field(repr=False)
    direction: np.ndarray = field(repr=False)
    length: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.length)

    def endpoints(self) -> np.ndarray:
        """(K, 2, 2): each segment's two ends."""
        half = 0.5 * self.length[:, None] * self.direction
        return np.stack([self.centre - half, self.centre + half], axis=1)


@dataclass(frozen=True)
class VanishingPoint:
    """Homogeneous (x, y, w), unit norm, in pixels relative to the image centre; the segments that support it."""

    point: np.ndarray
    support: np.ndarray = field(repr=False)

    def pixel(self, width: int, height: int) -> tuple[float, float] | None:
        """Its position in image pixels, None at infinity."""
        x, y, w = self.point
        if abs(w) < 1e-12:
            return None
        return float(x / w + width / 2.0), float(y / w + height / 2.0)


@dataclass(frozen=True)
class FrameVotes:
    """One frame: its segments, vanishing points and the fields of view their right-angle pairs give."""

    frame: int
    segments: Segments
    points: tuple[VanishingPoint, ...]
    fovs: tuple[float, ...]
    #: Each vote's weight: its pair's weaker support over the frame's best pair's.
    weights: tuple[float, ...]


@dataclass(frozen=True)
class VanishingCue:
    """The field of view the vanishing points give (nan when they give none) and how sure."""

    determined: bool
    vertical_fov_deg: float
    sigma_deg: float
    #: Frames searched, frames with at least one vote, frames agreeing with the estimate.
    frames: int
    voting: int
    agreeing: int
    #: What was found, in words (for `scene show`).
    note: str
    votes: tuple[FrameVotes, ...] = field(default=(), repr=False)


def detect_segments(grey: np.ndarray, config: VanishingConfig = VanishingConfig()) -> Segments:  # noqa: B008
    """Line segments of an (H, W) grey image (uint8 or float 0..255)."""
    img = ndimage.gaussian_filter(np.asarray(grey, dtype=np.float32), config.blur_sigma)
    gx = ndimage.sobel(img, axis=1) / 8.0
    gy = ndimage.sobel(img, axis=0) / 8.0
    # the structure tensor: a steadier orientation than one pixel's gradient on thin, aliased edges
    jxx = ndimage.gaussian_filter(gx * gx, config.tensor_sigma)
    jyy = ndimage.gaussian_filter(gy * gy, config.tensor_sigma)
    jxy = ndimage.gaussian_filter(gx * gy, config.tensor_sigma)
    trace = jxx + jyy
    coherence = np.hypot(jxx - jyy, 2.0 * jxy) / np.maximum(trace, 1e-9)
    normal = 0.5 * np.arctan2(2.0 * jxy, jxx - jyy)  # the gradient's direction, -pi/2..pi/2
    magnitude = np.hypot(gx, gy)
    strong = (
        (np.sqrt(trace) >= config.min_gradient)
        & (coherence >= config.min_coherence)
        & _ridge(magnitude, normal)  # thinned to one pixel: parallel edges a few pixels apart stay apart
    )
    # the edge runs across the gradient: its orientation, 0..pi
    theta = np.mod(normal + 0.5 * np.pi, np.pi)
    bins = config.orientation_bins
    ys, xs = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]].astype(np.float64) + 0.5
    min_len = config.min_length * grey.shape[0]
    centres, directions, lengths = [], [], []
    for shift in (0.0, 0.5):
        quant = np.floor(theta / np.pi * bins + shift).astype(np.int32) % bins
        for b in range(bins):
            labels, count = ndimage.label(strong & (quant == b), structure=np.ones((3, 3)))
            if count == 0:
                continue
            index = np.arange(1, count + 1)
            n = ndimage.sum_labels(np.ones_like(xs), labels, index)
            big = n >= min_len
            if not big.any():
                continue
            index, n = index[big], n[big]
            mx = ndimage.sum_labels(xs, labels, index) / n
            my = ndimage.sum_labels(ys, labels, index) / n
            cxx = ndimage.sum_labels(xs * xs, labels, index) / n - mx * mx
            cyy = ndimage.sum_labels(ys * ys, labels, index) / n - my * my
            cxy = ndimage.sum_labels(xs * ys, labels, index) / n - mx * my
            half_trace, det = 0.5 * (cxx + cyy), cxx * cyy - cxy * cxy
            root = np.sqrt(np.maximum(half_trace**2 - det, 0.0))
            major, minor = half_trace + root, np.maximum(half_trace - root, 1e-6)
            angle = 0.5 * np.arctan2(2 * cxy, cxx - cyy)  # the principal axis
            length = np.sqrt(12.0 * major)
            width = np.sqrt(12.0 * minor)
            # the region's axis must run along its pixels' edge orientation (within a bin and a half)
            centre_angle = (b + 0.5 - shift) * np.pi / bins
            off = np.abs(np.mod(angle - centre_angle + 0.5 * np.pi, np.pi) - 0.5 * np.pi)
            keep = (length >= min_len) & (length >= config.min_elongation * width) & (off <= 1.5 * np.pi / bins)
            centres.append(np.stack([mx[keep], my[keep]], axis=1))
            directions.append(np.stack([np.cos(angle[keep]), np.sin(angle[keep])], axis=1))
            lengths.append(length[keep])
    if not lengths:
        return Segments(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0))
    return _unique(Segments(np.concatenate(centres), np.concatenate(directions), np.concatenate(lengths)))


def _ridge(magnitude: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Non-maximum suppression (as in Canny's detector): the pixels whose gradient magnitude is at least that
    of both neighbours across the edge (the gradient's direction, to the nearest 45 degrees)."""
    step = np.round(normal / (0.25 * np.pi)).astype(np.int32) % 4  # 0: x, 1: diagonal, 2: y, 3: antidiagonal
    pad = np.pad(magnitude, 1, mode="edge")
    h, w = magnitude.shape
    keep = np.zeros(magnitude.shape, bool)
    for k, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ahead = pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        behind = pad[1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        keep |= (step == k) & (magnitude >= ahead) & (magnitude > behind)
    return keep


def _unique(segs: Segments) -> Segments:
    """Drop segments the other quantisation found too (same line, centres within a pixel): keep the longer."""
    if len(segs) < 2:
        return segs
    order = np.argsort(-segs.length)
    kept: list[int] = []
    for i in order:
        c, d = segs.centre[i], segs.direction[i]
        if kept:
            k = np.array(kept)
            close = np.linalg.norm(segs.centre[k] - c, axis=1) < 0.25 * segs.length[k]
            parallel = np.abs(segs.direction[k] @ d) > math.cos(math.radians(5.0))
            if (close & parallel).any():
                continue
        kept.append(int(i))
    k = np.array(sorted(kept))
    return Segments(segs.centre[k], segs.direction[k], segs.length[k])


def find_vanishing_points(
    segs: Segments,
    size: tuple[int, int],
    config: VanishingConfig = VanishingConfig(),  # noqa: B008
    rng: np.random.Generator | None = None,
) -> list[VanishingPoint]:
    """Vanishing points of an image's segments (`size`: width, height), strongest first."""
    rng = rng if rng is not None else np.random.default_rng(config.seed)
    w, h = size
    scale = float(h)  # coordinates relative to the centre, in image heights: well conditioned
    centre = (segs.centre - np.array([w / 2.0, h / 2.0])) / scale
    direction = segs.direction
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    lines = np.concatenate([normal, -(normal * centre).sum(1, keepdims=True)], axis=1)  # l.(x, y, 1) = 0
    sin_tol = math.sin(math.radians(config.inlier_deg))
    left = np.arange(len(segs))
    found: list[VanishingPoint] = []
    while len(found) < config.max_points and len(left) >= config.min_support:
        weight = segs.length[left] / segs.length[left].sum()
        a = rng.choice(left, config.hypotheses, p=weight)
        b = rng.choice(left, config.hypotheses, p=weight)
        ok = a != b
        hyp = np.cross(lines[a[ok]], lines[b[ok]])
        norm = np.linalg.norm(hyp, axis=1)
        hyp = hyp[norm > 1e-12] / norm[norm > 1e-12, None]
        if not len(hyp):
            break
        inl = _supports(hyp, centre[left], direction[left], sin_tol)  # (H, K)
        score = inl.astype(np.float64) @ segs.length[left]
        best = hyp[int(np.argmax(score))]
        support = left[inl[int(np.argmax(score))]]
        for _ in range(3):  # least squares over the supporters, then the supporters again
            if len(support) < 2:
                break
            sub = lines[support] * np.sqrt(segs.length[support])[:, None]
            best = np.linalg.svd(sub)[2][-1]
            support = left[_supports(best[None], centre[left], direction[left], sin_tol)[0]]
        if len(support) < config.min_support:
            break
        # back to pixels relative to the centre (x, y scaled by the height, w as is)
        px = np.array([best[0] * scale, best[1] * scale, best[2]])
        px /= np.linalg.norm(px)
        if abs(px[2]) * config.max_distance * h < math.hypot(px[0], px[1]):
            px[2] = 0.0  # further than max_distance heights: at infinity
            px /= np.linalg.norm(px)
        found.append(VanishingPoint(px, np.sort(support)))
        left = np.setdiff1d(left, support)
    return found


def _supports(hyp: np.ndarray, centre: np.ndarray, direction: np.ndarray, sin_tol: float) -> np.ndarray:
    """(H, K) bool: segment k points at homogeneous point h within the tolerance."""
    # towards the point, up to sign and scale: (x, y) - w * centre
    tx = hyp[:, None, 0] - hyp[:, None, 2] * centre[None, :, 0]
    ty = hyp[:, None, 1] - hyp[:, None, 2] * centre[None, :, 1]
    tn = np.hypot(tx, ty)
    cross = np.abs(direction[None, :, 0] * ty - direction[None, :, 1] * tx)
    return (cross <= sin_tol * tn) & (tn > 1e-9)


def pair_fovs(
    points: list[VanishingPoint] | tuple[VanishingPoint, ...], height: int, fov_range_deg: tuple[float, float]
) -> list[float]:
    """The vertical fields of view that the pairs of finite vanishing points, taken as right angles, give."""
    return [fov for fov, _ in pair_votes(points, height, fov_range_deg)]


def pair_votes(
    points: list[VanishingPoint] | tuple[VanishingPoint, ...], height: int, fov_range_deg: tuple[float, float]
) -> list[tuple[float, float]]:
    """`pair_fovs` with each pair's strength: its weaker vanishing point's number of supporting segments."""
    lo, hi = fov_range_deg
    out = []
    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            a, b = points[i].point, points[j].point
            if a[2] == 0.0 or b[2] == 0.0:
                continue
            f2 = -(a[0] * b[0] + a[1] * b[1]) / (a[2] * b[2])
            if f2 <= 0:
                continue
            fov = math.degrees(2.0 * math.atan(0.5 * height / math.sqrt(f2)))
            if lo <= fov <= hi:
                out.append((fov, float(min(len(points[i].support), len(points[j].support)))))
    return out


def frame_votes(grey: np.ndarray, frame: int, config: VanishingConfig, rng: np.random.Generator) -> FrameVotes:
    segs = detect_segments(grey, config)
    h, w = grey.shape
    points = tuple(find_vanishing_points(segs, (w, h), config, rng))
    pairs = pair_votes(points, h, config.fov_range_deg)
    best = max((strength for _, strength in pairs), default=1.0)
    return FrameVotes(
        frame, segs, points, tuple(fov for fov, _ in pairs), tuple(strength / best for _, strength in pairs)
    )


def vanishing_fov(
    greys: np.ndarray | list[np.ndarray],
    frames: list[int] | None = None,
    config: VanishingConfig = VanishingConfig(),  # noqa: B008
) -> VanishingCue:
    """The vertical field of view (degrees) from the vanishing points of (N, H, W) grey frames (principal
    point at the centre, square pixels), `frames` their frame numbers (for the words); see the module
    docstring."""
    n = len(greys)
    if n == 0:
        raise InvalidArgument("vanishing_fov needs at least one frame", field="frames")
    frames = list(range(n)) if frames is None else list(frames)
    pick = np.unique(np.linspace(0, n - 1, min(n, config.max_frames)).round().astype(int))
    rng = np.random.default_rng(config.seed)
    votes = tuple(frame_votes(np.asarray(greys[i]), frames[i], config, rng) for i in pick)
    return pool_votes(votes, config)


def pool_votes(votes: tuple[FrameVotes, ...], config: VanishingConfig) -> VanishingCue:
    """The keyframes' votes pooled: each keyframe counts once at each value (see the module docstring)."""
    searched = len(votes)
    voting = [v for v in votes if v.fovs]
    segs = sum(len(v.segments) for v in votes)
    vps = sum(len(v.points) for v in votes)
    found = f"{segs} line segments and {vps} vanishing points in {searched} keyframes"
    if len(voting) < config.min_agreeing:
        return _none(votes, len(voting), f"{found}; {len(voting)} with a right-angle pair: too few to tell")
    lo, hi = config.fov_range_deg
    grid = np.arange(lo, hi + 1e-9, 0.1)
    bw = 0.5 * config.agree_deg
    # per keyframe, its best vote near each value (a keyframe cannot outvote the others by having many pairs)
    density = np.zeros_like(grid)
    for v in voting:
        k = np.exp(-0.5 * ((grid[:, None] - np.array(v.fovs)[None, :]) / bw) ** 2)
        density += (k * np.asarray(v.weights)[None, :]).max(axis=1)
    mode = float(grid[int(np.argmax(density))])
    rival_zone = np.abs(grid - mode) > config.rival_deg
    rival = float(density[rival_zone].max()) if rival_zone.any() else 0.0
    nearest = [min(v.fovs, key=lambda x: abs(x - mode)) for v in voting]
    agree = np.array([x for x in nearest if abs(x - mode) <= config.agree_deg])
    need = max(
        config.min_agreeing,
        math.ceil(config.min_agreeing_fraction * len(voting)),
        math.ceil(config.min_searched_fraction * searched),
    )
    if len(agree) < need:
        words = f"at most {len(agree)} of {len(voting)} keyframes near {mode:.1f}"
        return _none(
            votes, len(voting), f"{found}; too few of their right-angle pairs agree on one field of view ({words})"
        )
    if rival > config.max_rival * float(density.max()):
        alt = float(grid[rival_zone][int(np.argmax(density[rival_zone]))])
        return _none(votes, len(voting), f"{found}; two fields of view are about as likely ({mode:.1f} and "
                                         f"{alt:.1f} degrees)")  # fmt: skip
    fov = float(np.median(agree))
    spread = 1.4826 * float(np.median(np.abs(agree - fov)))
    sigma = max(config.sigma_floor_deg, config.sigma_inflation * spread / math.sqrt(len(agree)))
    note = (
        f"{found}; {len(agree)} of the {len(voting)} with a right-angle pair agree on {fov:.1f} +- {sigma:.1f} degrees"
    )
    return VanishingCue(True, fov, sigma, searched, len(voting), len(agree), note, votes)


def _none(votes: tuple[FrameVotes, ...], voting: int, note: str) -> VanishingCue:
    return VanishingCue(False, math.nan, math.inf, len(votes), voting, 0, note, votes)
