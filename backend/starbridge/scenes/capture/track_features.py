"""Features for camera tracking: SIFT keypoints, matching, two-view verification, keyframe choice (pycolmap).

Everything here works at the tracking resolution (`TrackImages`), in pixels with COLMAP's convention (the
centre of the top-left pixel is (0.5, 0.5)), which is also the repository's (geometry/camera.py).

Two kinds of features per frame: *quick* ones (SIFT from the image's own resolution up, `first_octave` 0)
for every frame, cheap, used to choose keyframes and to register the frames between keyframes; and *dense*
ones (SIFT from the image upsampled twice, `first_octave` -1: about twice as many, more precise) for the
keyframes only, the ones the structure-from-motion map is built from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pycolmap
from PIL import Image

#: Rec. 601 luma weights (grey images for SIFT).
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class TrackImages:
    """Grey frames at the tracking resolution and the factor back to the input's pixels."""

    #: (N, h, w) uint8.
    grey: np.ndarray = field(repr=False)
    #: Input pixels per tracking pixel (>= 1: tracking never upsamples).
    scale: float
    #: Mean brightness of the input, 0..255.
    brightness: float

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in tracking pixels."""
        return int(self.grey.shape[2]), int(self.grey.shape[1])

    @property
    def diagonal(self) -> float:
        w, h = self.size
        return math.hypot(w, h)


def prepare_images(frames: np.ndarray, max_side: int) -> TrackImages:
    """Grey copies of (N, H, W, 3) uint8 frames, downscaled (area filter) so the long side is <= max_side."""
    n, h, w = frames.shape[:3]
    scale = max(1.0, max(w, h) / max_side)
    tw, th = max(16, round(w / scale)), max(16, round(h / scale))
    grey = np.empty((n, th, tw), np.uint8)
    total = 0.0
    for i in range(n):
        g = frames[i].astype(np.float32) @ LUMA
        total += float(g.mean())
        if (tw, th) != (w, h):
            g = np.asarray(Image.fromarray(g).resize((tw, th), Image.Resampling.BOX))  # float32: mode F
        grey[i] = np.clip(np.rint(g), 0, 255).astype(np.uint8)
    return TrackImages(grey, max(w / tw, h / th) if (tw, th) != (w, h) else 1.0, total / max(n, 1))


@dataclass
class Features:
    """SIFT features of one image: keypoints (M, 4) x, y, scale, orientation (float32); descriptors (M, 128)
    float32 of unit length (COLMAP's root-SIFT, as the dot products of matching want them)."""

    keypoints: np.ndarray = field(repr=False)
    descriptors: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.keypoints)

    @cached_property
    def xy(self) -> np.ndarray:
        """(M, 2) float64 pixel positions."""
        return self.keypoints[:, :2].astype(np.float64)


#: Matching, as COLMAP's SIFT matcher: a match is a mutual nearest neighbour whose angle is below
#: MATCH_MAX_ANGLE (radians) and below MATCH_MAX_RATIO times the second nearest's.
MATCH_MAX_ANGLE = 0.7
MATCH_MAX_RATIO = 0.8


class FeatureEngine:
    """SIFT extraction (pycolmap, CPU) and matching (NumPy: several times faster than COLMAP's CPU matcher
    at these feature counts, the same rule), with fixed options and thread count."""

    def __init__(self, *, max_features: int, num_threads: int, seed: int) -> None:
        self.seed = seed
        self.num_threads = num_threads
        self._extractors: dict[int, pycolmap.FeatureExtractor] = {}
        self._max_features = max_features
        verification = pycolmap.TwoViewGeometryOptions()
        verification.ransac.random_seed = seed
        self._verification = verification

    def extract(self, grey: np.ndarray, *, dense: bool) -> Features:
        octave = -1 if dense else 0
        extractor = self._extractors.get(octave)
        if extractor is None:
            options = pycolmap.FeatureExtractionOptions()
            options.num_threads = self.num_threads
            options.sift.first_octave = octave
            options.sift.max_num_features = self._max_features
            extractor = self._extractors[octave] = pycolmap.FeatureExtractor.create(options)
        kp, desc = extractor.extract_from_uint8_array(np.ascontiguousarray(grey))
        d = np.asarray(desc.data, dtype=np.float32).reshape(-1, 128)
        d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        return Features(np.asarray(pycolmap.keypoints_to_matrix(kp), dtype=np.float32).reshape(-1, 4), d)

    def match(self, a: Features, b: Features) -> np.ndarray:
        """(K, 2) uint32 indices of mutual nearest neighbours passing the ratio test (no geometry)."""
        if len(a) < 2 or len(b) < 2:
            return np.zeros((0, 2), np.uint32)
        sim = a.descriptors @ b.descriptors.T
        top2 = np.argpartition(-sim, 1, axis=1)[:, :2]
        s2 = np.take_along_axis(sim, top2, 1)
        swap = s2[:, 1] > s2[:, 0]
        best = np.where(swap, top2[:, 1], top2[:, 0])
        s_best = np.where(swap, s2[:, 1], s2[:, 0])
        s_second = np.where(swap, s2[:, 0], s2[:, 1])
        angle1 = np.arccos(np.clip(s_best, -1.0, 1.0))
        angle2 = np.arccos(np.clip(s_second, -1.0, 1.0))
        ok = (angle1 < MATCH_MAX_ANGLE) & (angle1 < MATCH_MAX_RATIO * angle2)
        ok &= np.argmax(sim, axis=0)[best] == np.arange(len(a))
        return np.column_stack([np.flatnonzero(ok), best[ok]]).astype(np.uint32)

    def verify(
        self, a: Features, b: Features, size: tuple[int, int], min_inliers: int, max_error_px: float | None = None
    ) -> pycolmap.TwoViewGeometry | None:
        """Matches kept by the epipolar geometry (fundamental matrix or homography, no focal length assumed;
        RANSAC inliers within `max_error_px`, else COLMAP's default), or None when fewer than `min_inliers`
        survive."""
        matches = self.match(a, b)
        if len(matches) < min_inliers:
            return None
        camera = uncalibrated_camera(size)
        options = self._verification
        if max_error_px is not None:
            options = pycolmap.TwoViewGeometryOptions(self._verification.todict())
            options.ransac.max_error = max_error_px
        geometry = pycolmap.estimate_two_view_geometry(camera, a.xy, camera, b.xy, matches, options)
        if len(geometry.inlier_matches) < min_inliers:
            return None
        return geometry


def uncalibrated_camera(size: tuple[int, int]) -> pycolmap.Camera:
    """A pinhole camera of this size whose focal length is unknown (verification uses F and H only)."""
    w, h = size
    camera = pycolmap.Camera.create_from_model_name(1, "SIMPLE_PINHOLE", 1.2 * max(w, h), w, h)
    camera.has_prior_focal_length = False
    return camera


def displacement(a: Features, b: Features, matches: np.ndarray) -> float:
    """Median image motion of matched features, pixels."""
    if len(matches) == 0:
        return math.inf
    d = a.xy[matches[:, 0]] - b.xy[matches[:, 1]]
    return float(np.median(np.hypot(d[:, 0], d[:, 1])))


def select_keyframes(
    engine: FeatureEngine,
    quick: Sequence[Features],
    *,
    min_motion_px: float,
    max_gap: int,
    min_matches: int,
    progress: Callable[[int], None] | None = None,
) -> list[int]:
    """Frames to build the map from: a new keyframe once features moved `min_motion_px` (median) since the
    last one, or `max_gap` frames passed, or the overlap is about to be lost (then the last frame that still
    overlapped). The first and last frames are always keyframes."""
    n = len(quick)
    keyframes = [0]
    k, i = 0, 1
    while i < n:
        matches = engine.match(quick[k], quick[i])
        lost = len(matches) < min_matches
        if lost and i - 1 > k:
            new = i - 1
        elif lost or i - k >= max_gap or displacement(quick[k], quick[i], matches) >= min_motion_px:
            new = i
        else:
            if progress:
                progress(i + 1)
            i += 1
            continue
        keyframes.append(new)
        k, i = new, new + 1
        if progress:
            progress(min(i, n))
    if keyframes[-1] != n - 1:
        keyframes.append(n - 1)
    return keyframes


def keyframe_pairs(count: int, window: int, loop_offsets: Sequence[int]) -> list[tuple[int, int]]:
    """Pairs of keyframe indices to match: each with the next `window`, plus each with the ones
    `loop_offsets` further on (cheap loop closure: it ties the ends of the path together)."""
    pairs = set()
    for a in range(count):
        for b in range(a + 1, min(count, a + window + 1)):
            pairs.add((a, b))
        for off in loop_offsets:
            if a + off < count:
                pairs.add((a, a + off))
    return sorted(pairs)
