"""The last tracking step (stage ``refinement`` in `TrackResult.stage_seconds`): every observation moved onto
its point's own image patch, then one bundle adjustment of every posed frame and every sparse point at once.

Why: the depth stage's stereo pairs (a frame and keyframes 5-10 frames away) need their relative rotation
right to a fraction of a pixel. An error about the axis across the baseline shifts every disparity by the same
amount, which adds a constant to inverse depth: far surfaces come out too near (or too far). The keyframes'
map from COLMAP's mapper and the frames registered against it one by one had such errors, consistently signed
along the clip (the rotation scaled by a few per cent: a yaw of 20.4 degrees tracked as 19.6). Measured on the
capture benchmark's clips (40 frames, 320x180 through H.264, the true field of view given):

* the bias is in the rotations, not the translations: stereo depth with the true rotations and the tracked
  camera centres is as good as with the true poses (handheld AbsRel 0.133 vs 0.130), with the true centres
  and the tracked rotations as bad as with the tracked poses (0.165 vs 0.167);
* it is not the optimiser's: a bundle adjustment of every frame started from the *true* poses slides to
  the same biased solution at a lower cost. It is in the SIFT positions: a blob's centre drifts with the view
  (perspective, scale), consistently along a track; the renderer's one sample per pixel adds ~0.3 px of
  noise on top, but supersampling the clip 3x3 (noise down to 0.17 px) left the rotation error as it was;
* aligning each observation to its point's middle observation by Lucas-Kanade on the image patches
  (`align_patches`: translation, gain and offset; a 15x15 window: 9x9 (6 steps) did less, 11x11 less on three clips
  of four, 19x19 better on the handheld walk but worse on the dolly and twice the cost) follows one
  physical point instead; then `adjust_all` (one COLMAP bundle adjustment of all posed frames and points,
  intrinsics fixed, Cauchy loss, a second pass without observations off by more than `OUTLIER_PX`) lets
  every frame's observations pull on the map. Rotation error median (max), degrees, before -> after:
  handheld 0.47 (0.82) -> 0.37 (0.67), orbit 0.22 (0.51) -> 0.13 (0.29), dolly 0.20 (0.44) -> 0.11 (0.23),
  moving 0.26 (0.47) -> 0.21 (0.35); the bundle adjustment alone: 0.40, 0.23, 0.19, 0.35.
* since, the alignment's warp is affine (`PatchConfig.warp`, which gives the measurements): a slanted
  surface's patch is foreshortened differently in each view, and a translation-only fit centres on its
  texture, not the point; pulled towards the identity (`PatchConfig.affine_prior`), the mean rotation
  error over sixteen clips went 0.164 -> 0.120 degree.

Cost: 2.3-3.6 s per 40-frame clip at 320x180 on two busy cores (the alignment about two thirds of it):
tracking 23-46% slower (9.1 -> 13.0, 9.0 -> 13.2, 8.7 -> 10.7, 7.7 -> 10.2 s, runs alternated). The patch
sampling (`_sample`) is compiled since, with the same samples to the bit: on 150 frames of a 512x288 walk the
refinement took 11.8 s instead of 16.2 (tracking 32.8 s instead of 37.6, the same poses).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pycolmap
from numba import njit
from numba import types as nt

from ...errors import InvalidArgument
from ...jit import JIT_OPTIONS, announce_compile
from .track_mapping import adjust
from .track_types import PATCH_WARPS

announce_compile(__file__, logging.getLogger(__name__), "the tracking's patch sampling")

#: Observations aligned at once by the affine or projective warp (its Jacobian: this many x window pixels x 6
#: or 8 float64).
AFFINE_CHUNK = 2048
#: Observations reprojecting further than this (tracking pixels) after the first adjustment are dropped.
OUTLIER_PX = 3.0


@dataclass(frozen=True)
class RefineConfig:
    #: "cauchy" (robust: moving objects and mismatches weigh less; residuals beyond `loss_scale_px` tracking
    #: pixels) or "squared" (measured on the benchmark: worse on three clips of four, 0.27-0.31 degrees).
    loss: str = "cauchy"
    #: The refined observations fit to a third of a pixel (reprojection 0.3-0.4 px), so a 1-pixel scale let
    #: mismatched ones of 1-3 px pull almost fully. Tracked again at 1.0 / 0.5 / 0.3 (bench_capture's sixteen
    #: clips, field of view given, the whole import): mean novel-view gap 1.946 / 1.885 / 1.918 dB, within 2 dB
    #: 8 / 9 / 8 of 16; at 0.5 twelve clips better, three worse (the dollies of worlds 0 and 2, 0.07 and 0.16
    #: dB; world 1's orbit 0.03), the walks among moving objects most (world 2's 2.82 -> 2.51, its rotation
    #: error 0.29 -> 0.25 degrees median; world 0's 512x288 2.79 -> 2.48). The tracking passes its own,
    #: `TrackingConfig.refine_loss_px` (0.1 since the patch alignment made the observations precise).
    loss_scale_px: float = 0.5
    #: Observations further than this after the first pass are dropped before the second (0: one pass).
    outlier_px: float = OUTLIER_PX
    max_iterations: int = 50
    #: The adjustment stops once an iteration lowers the cost by less than this fraction of it (Ceres's
    #: function tolerance; its own default, which COLMAP sets to 0 so that only `max_iterations` stops it).
    #: 0: no such stop. On a 300-frame walk every adjustment of all the frames ran its 50 iterations, about
    #: 0.2 s each (the reduced camera system of 300 frames whose points are seen 70 times), 52 of the
    #: tracking's 88 s; stopped here they take 29 s, the poses within 0.004 degree of the capped ones (session
    #: 51, bench/bench_import_time.py: tracking 86.9 -> 54.1 s, the import 317 -> 283 s, the field of view
    #: 47.12 -> 47.11; bench_capture_variants.py's sixteen clips, field of view given: mean gap 1.398 -> 1.388
    #: dB, AbsRel 0.0912 either way, 6 better and 9 worse by more than 0.01 dB: the benchmark's noise).
    function_tolerance: float = 1e-6
    num_threads: int = 1
    #: Let the focal length move too (principal point fixed at the centre); `Refined.focal` is where it went.
    #: Tracking keeps it fixed: on the benchmark's clips the motion leaves it in a flat valley (track_fov.py,
    #: bench/bench_fov_valley.py).
    refine_focal: bool = False
    #: A point nearer to a camera that sees it than this fraction of the median depth of all observations is
    #: left out of the adjustment with its observations: no surface of the scene, but mismatched observations
    #: that happen to triangulate (rays nearly meeting by the camera path; they fit to a fraction of a pixel
    #: and pull the poses about the yaw that a sideways path barely measures). On bench_capture's world 2 walk
    #: among moving objects one point at 0.004 of the median took the rotation error from 0.29 to 0.39 degrees
    #: (median; 0.54 to 0.84 at the end). The other clips' nearest points are at 0.09-0.3 of the median (a
    #: dolly's box at 1.2 m: 0.095). Tracked again with it (the sixteen clips, field of view given): four clips
    #: had such a point; world 2's walk among moving objects 3.87 -> 2.82 dB of novel-view gap (0.39 -> 0.29
    #: degrees), but world 0's 512x288 one 2.52 -> 2.79 (0.13 -> 0.15 median, 0.36 -> 0.30 max), world 1's
    #: 1.96 -> 2.02 and its orbit 0.89 -> 0.93: the yaw of a sideways path sits in a flat valley of the cost,
    #: and taking out any pull moves it (README "Limits"). Mean 1.988 -> 1.946 dB. 0: off.
    min_point_depth: float = 0.05

    def __post_init__(self) -> None:
        if (
            self.loss not in ("cauchy", "squared")
            or self.loss_scale_px <= 0
            or self.max_iterations < 1
            or not 0 <= self.min_point_depth < 1
            or not 0 <= self.function_tolerance < 1
        ):
            raise InvalidArgument(
                "refine config: loss 'cauchy' or 'squared', loss_scale_px > 0, max_iterations >= 1, "
                f"0 <= min_point_depth < 1, 0 <= function_tolerance < 1: {self}"
            )


@dataclass
class Refined:
    """Adjusted OpenCV world-to-camera 3x4 poses per frame, the points (same rows as given) and their mean
    reprojection errors (tracking pixels; nan for those not adjusted), per frame the mask of observations
    kept, and the mean reprojection error before and after."""

    w2c: dict[int, np.ndarray]
    points: np.ndarray
    errors: np.ndarray
    kept: dict[int, np.ndarray]
    initial_error_px: float
    final_error_px: float
    #: The focal length after the adjustment (tracking pixels; the given one unless `refine_focal`).
    focal: float


def adjust_all(
    w2c: dict[int, np.ndarray],
    points: np.ndarray,
    observations: list[tuple[int, np.ndarray, np.ndarray]],
    focal: float,
    size: tuple[int, int],
    config: RefineConfig = RefineConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> Refined:
    """Bundle adjustment of the frames `w2c` (frame -> 3x4 OpenCV world-to-camera) and `points` (M, 3) from
    `observations` (frame, (K, 2) tracking-pixel positions, (K,) point rows) at the fixed `focal` (tracking
    pixels, principal point at the centre of `size` (width, height)). Points seen by fewer than two frames and
    frames without observations stay as they are."""
    w, h = size
    rec = pycolmap.Reconstruction()
    camera = pycolmap.Camera.create_from_model_name(1, "SIMPLE_PINHOLE", focal, w, h)
    camera.params = [focal, w / 2.0, h / 2.0]
    rec.add_camera(camera)
    rig = pycolmap.Rig()
    rig.rig_id = 1
    rig.add_ref_sensor(camera.sensor_id)
    rec.add_rig(rig)
    seen = np.zeros(len(points), np.int64)
    for frame, _, rows in observations:
        if frame in w2c:
            np.add.at(seen, np.asarray(rows, dtype=np.int64), 1)
    # a point seen once is not constrained: left out (and as it is); so is one implausibly near a camera
    seen[_implausibly_near(w2c, points, observations, config.min_point_depth)] = 0
    point_id: dict[int, int] = {
        int(row): rec.add_point3D(points[row], pycolmap.Track(), np.zeros(3, np.uint8))
        for row in np.flatnonzero(seen >= 2)
    }
    image_of: dict[int, int] = {}
    for frame, xy, rows in observations:
        if frame not in w2c or frame in image_of or len(rows) == 0:
            continue
        image_id = len(image_of) + 1
        image_of[frame] = image_id
        pose = np.asarray(w2c[frame], dtype=np.float64)
        fr = pycolmap.Frame()
        fr.frame_id = image_id
        fr.rig_id = 1
        image = pycolmap.Image(name=f"f{frame:05d}", camera_id=1, image_id=image_id)
        fr.add_data_id(image.data_id)
        fr.rig_from_world = pycolmap.Rigid3d(pycolmap.Rotation3d(pose[:, :3]), pose[:, 3])
        rec.add_frame(fr)
        image.frame_id = image_id
        image.points2D = pycolmap.Point2DList([pycolmap.Point2D(p) for p in np.asarray(xy, dtype=np.float64)])
        rec.add_image(image)
        rec.register_frame(image_id)
        for n, row in enumerate(rows):
            if int(row) in point_id:
                rec.add_observation(point_id[int(row)], pycolmap.TrackElement(image_id, n))
    initial = _mean_error(rec)
    passes = 2 if config.outlier_px > 0 else 1
    for p in range(passes):
        if p == 1:
            _drop_far(rec, config.outlier_px)
        _solve(rec, config)
    # a point the adjustment lost (behind a camera, or far off: rays nearly parallel) is dropped with its
    # observations; such a point keeps its position from before
    pycolmap.ObservationManager(rec).filter_observations_with_negative_depth()
    _drop_far(rec, max(config.outlier_px, OUTLIER_PX))
    final = _mean_error(rec)
    out_focal = float(rec.cameras[1].focal_length)
    out_w2c = dict(w2c)
    kept: dict[int, np.ndarray] = {}
    for frame, image_id in image_of.items():
        image = rec.images[image_id]
        out_w2c[frame] = np.asarray(image.cam_from_world().matrix(), dtype=np.float64)
        kept[frame] = np.array([p2d.has_point3D() for p2d in image.points2D], dtype=bool)
    out_points = np.array(points, dtype=np.float64, copy=True)
    errors = np.full(len(points), np.nan)
    for row, pid in point_id.items():
        if rec.exists_point3D(pid):
            out_points[row] = rec.points3D[pid].xyz
            errors[row] = rec.points3D[pid].error
    return Refined(out_w2c, out_points, errors, kept, initial, final, out_focal)


def _implausibly_near(
    w2c: dict[int, np.ndarray],
    points: np.ndarray,
    observations: list[tuple[int, np.ndarray, np.ndarray]],
    fraction: float,
) -> np.ndarray:
    """(M,) bool: the points that some camera sees nearer than `fraction` times the median depth of every
    observation (behind a camera counts as near)."""
    near = np.zeros(len(points), bool)
    if fraction <= 0 or not len(points):
        return near
    depths, rows = [], []
    for frame, _, idx in observations:
        if frame in w2c and len(idx):
            idx = np.asarray(idx, dtype=np.int64)
            pose = np.asarray(w2c[frame], dtype=np.float64)
            depths.append(points[idx] @ pose[2, :3] + pose[2, 3])
            rows.append(idx)
    if not depths:
        return near
    z, r = np.concatenate(depths), np.concatenate(rows)
    front = z > 0
    if not front.any():
        return near
    near[r[z < fraction * float(np.median(z[front]))]] = True
    return near


def _solve(rec: pycolmap.Reconstruction, config: RefineConfig) -> None:
    options = pycolmap.BundleAdjustmentOptions()
    options.refine_focal_length = config.refine_focal
    options.refine_principal_point = False
    options.refine_extra_params = False
    options.print_summary = False
    if config.loss == "cauchy":
        options.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
        options.ceres.loss_function_scale = config.loss_scale_px
    else:
        options.ceres.loss_function_type = pycolmap.LossFunctionType.TRIVIAL
    options.ceres.solver_options.num_threads = config.num_threads
    options.ceres.solver_options.max_num_iterations = config.max_iterations
    options.ceres.solver_options.function_tolerance = config.function_tolerance
    adjust(rec, options)


def _drop_far(rec: pycolmap.Reconstruction, max_px: float) -> None:
    """Delete the observations reprojecting further than `max_px` (points left with one observation go)."""
    pycolmap.ObservationManager(rec).filter_all_points3D(max_px, 0.0)


def _mean_error(rec: pycolmap.Reconstruction) -> float:
    rec.update_point_3d_errors()
    return float(rec.compute_mean_reprojection_error()) if rec.num_points3D() else float("nan")


# ------------------------------------------------------------------------------- sub-pixel positions


@dataclass(frozen=True)
class PatchConfig:
    #: Patch half-size, pixels (a (2r+1)^2 window). 9 with the affine warp (six unknowns want more samples:
    #: without the prior, world 0's eight clips below had a mean rotation error of 0.132 degree at 7, 0.122 at
    #: 9); with the translation-only warp 9 was worse than 7 on world 0's orbit (0.27 against 0.11 degree).
    radius: int = 9
    #: Gauss-Newton steps.
    iterations: int = 10
    #: Only observations within this many frames of their point's reference observation are aligned.
    max_frames: int = 40
    #: A refined position is kept when the patches then correlate this well (ZNCC) and it moved at most
    #: `max_shift_px` from the detector's position.
    min_zncc: float = 0.85
    max_shift_px: float = 1.5
    #: A position stops moving once a step is smaller than this, pixels.
    converged_px: float = 0.005
    #: Pre-smoothing of the images (Gaussian sigma, pixels).
    smooth_px: float = 0.8
    #: The patch's warp: "homography" (the affine one and a projective part: p + M o / (1 + g.o)), "affine"
    #: (translation plus a 2x2 linear map about the patch's centre) or "translation". A slanted surface's patch
    #: is foreshortened differently in each view; a translation-only fit centres on its texture rather than on
    #: the physical point (test_capture_refine: a view stretched by 6% and sheared, median error 0.25 px
    #: translation-only, 0.03 affine, 0.07 with the prior below). Where the depth changes fast across the
    #: window (ground towards the horizon, a facade seen edge-on) its scale changes across it too, which only
    #: the projective part follows (test_capture_refine: 9% from its top row to its bottom one, median error
    #: 0.45 px affine, 0.30 homography). Homography rather than affine (session 50; bench_capture_variants.py's
    #: sixteen 40-frame clips, CRF 16, the same clips tracked both ways): field of view estimated, the twelve
    #: clips not travelling straight ahead (where it is measured) mean |FOV error| 0.517 -> 0.402 degree (9
    #: better, the three 320x180 walks worse), mean novel-view gap 6.04 -> 5.45 dB, AbsRel 0.104 -> 0.099;
    #: field of view given 1.367 -> 1.386 dB (9 better, 7 worse), AbsRel 0.0905 -> 0.0912; the same time.
    warp: str = "homography"
    #: Pull of the affine warp's linear part towards the identity (a Gauss-Newton prior on it), relative to
    #: the translation's own curvature (0: none): where a patch's texture hardly fixes the linear map, the
    #: free fit wanders and moves the centre with it. Rotation error median, degrees, on bench_capture's clips
    #: (40 frames, field of view given; world 0 handheld / orbit / dolly / moving at 320x180, the same in
    #: worlds 1 and 2, world 0 at 512x288), translation (radius 7) -> affine, prior 0 -> prior 3:
    #: world 0 0.204 / 0.110 / 0.142 / 0.192 -> 0.115 / 0.106 / 0.132 / 0.136 -> 0.101 / 0.062 / 0.136 / 0.099;
    #: world 1 0.108 / 0.085 / 0.208 / 0.130 -> 0.079 / 0.185 / 0.206 / 0.085 -> 0.081 / 0.106 / 0.169 / 0.072;
    #: world 2 0.133 / 0.205 / 0.184 / 0.225 -> 0.140 / 0.122 / 0.186 / 0.314 -> 0.155 / 0.067 / 0.173 / 0.337;
    #: 512x288 0.229 / 0.086 / 0.174 / 0.202 -> 0.143 / 0.104 / 0.132 / 0.111 -> 0.061 / 0.050 / 0.134 / 0.121;
    #: means 0.164 -> 0.144 -> 0.120 (prior 10: 0.136 over the 320x180 twelve, against 0.130 at 3). What it
    #: did to the depth and the novel views: docs/capture-measurements.md. The alignment costs about 1.6x.
    affine_prior: float = 3.0
    #: With the "homography" warp, the pull of its projective part towards none, on the same scale at the
    #: window's rim (g moves the rim by about |g| radius^2 pixels).
    projective_prior: float = 3.0

    def __post_init__(self) -> None:
        if self.warp not in PATCH_WARPS:
            raise InvalidArgument(f"PatchConfig.warp must be one of {', '.join(PATCH_WARPS)}, got {self.warp!r}")
        if not (self.affine_prior >= 0 and self.projective_prior >= 0 and self.radius >= 2 and self.iterations >= 1):
            raise InvalidArgument(
                f"PatchConfig: need affine_prior >= 0, projective_prior >= 0, radius >= 2, iterations >= 1: {self}"
            )


@njit(
    nt.void(
        nt.Array(nt.float32, 3, "C", readonly=True),
        nt.Array(nt.int64, 1, "C", readonly=True),
        nt.Array(nt.float32, 2, "C", readonly=True),
        nt.Array(nt.float32, 2, "C", readonly=True),
        nt.Array(nt.float64, 2, "C"),
    ),  # fmt: skip
    **JIT_OPTIONS,
)
def _sample_kernel(img, frame, x, y, out):  # pragma: no cover - compiled
    _, h, w = img.shape
    zero = np.float32(0.0)
    x_max = np.float32(w - 1.001)
    y_max = np.float32(h - 1.001)
    for k in range(x.shape[0]):
        f = frame[k]
        for p in range(x.shape[1]):
            xc = min(max(x[k, p], zero), x_max)
            yc = min(max(y[k, p], zero), y_max)
            x0 = int(math.floor(xc))
            y0 = int(math.floor(yc))
            fx = np.float64(xc) - x0
            fy = np.float64(yc) - y0
            a = np.float64(img[f, y0, x0]) * (1.0 - fx) + np.float64(img[f, y0, x0 + 1]) * fx
            b = np.float64(img[f, y0 + 1, x0]) * (1.0 - fx) + np.float64(img[f, y0 + 1, x0 + 1]) * fx
            out[k, p] = a * (1.0 - fy) + b * fy


def _sample(img: np.ndarray, frame: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(K, P) float64 bilinear samples of images `img` (N, h, w) float32 at float pixel-index positions `x`, `y`
    (K, P) float32 in the frames `frame` (K,) (clamped at the border). Compiled (numba): in NumPy these
    gathers were most of the patch alignment's time (7 of 9.5 s on a 300-frame 512x288 clip); the arithmetic
    is the NumPy version's (float64 weights), so the samples are the same to the bit
    (tests/scenes/capture/test_capture_refine.py checks it)."""
    k, p = np.shape(x)
    out = np.empty((k, p), np.float64)
    _sample_kernel(
        np.ascontiguousarray(img, dtype=np.float32), np.ascontiguousarray(frame, dtype=np.int64),
        np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.float32), out,
    )  # fmt: skip
    return out


def align_patches(
    grey: np.ndarray,
    ref_frame: np.ndarray,
    ref_xy: np.ndarray,
    frame: np.ndarray,
    xy: np.ndarray,
    config: PatchConfig = PatchConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> tuple[np.ndarray, np.ndarray]:
    """Lucas-Kanade (`config.warp`: affine or translation; gain and offset normalised) of the patch around
    `ref_xy` in `ref_frame` into `frame`, from `xy`: ((K, 2) refined positions, (K,) accepted; the rejected
    keep `xy`). Positions in COLMAP pixels (the centre of the top-left pixel at (0.5, 0.5)); `grey` (N, h, w)
    float32, smoothed."""
    k = len(xy)
    if k == 0:
        return np.zeros((0, 2)), np.zeros(0, bool)
    off = np.arange(-config.radius, config.radius + 1, dtype=np.float32)
    ox, oy = (a.ravel()[None] for a in np.meshgrid(off, off))  # (1, P) window offsets
    gy_all, gx_all = np.gradient(grey, axis=(1, 2))
    start = np.asarray(xy, dtype=np.float32) - 0.5  # pixel-index positions
    ref = np.asarray(ref_xy, dtype=np.float32) - 0.5
    tmpl = _normalised(_sample(grey, ref_frame, ref[:, :1] + ox, ref[:, 1:] + oy))
    if config.warp != "translation":
        xy64 = np.asarray(xy, dtype=np.float64)
        out, accepted = np.empty((k, 2)), np.empty(k, bool)
        for lo in range(0, k, AFFINE_CHUNK):  # chunks: the Jacobian is (chunk, window pixels, 6) float64
            part = slice(lo, lo + AFFINE_CHUNK)
            out[part], accepted[part] = _align_warped(
                grey, gx_all, gy_all, tmpl[part], frame[part], start[part], xy64[part], ox, oy, config
            )
        return out, accepted
    p = start.copy()
    ok = np.ones(k, bool)
    active = np.arange(k)
    for _ in range(config.iterations):
        if not len(active):
            break
        f, sx, sy = frame[active], p[active, :1] + ox, p[active, 1:] + oy
        vals = _sample(grey, f, sx, sy)
        mean = vals.mean(axis=1, keepdims=True)
        norm = np.maximum(np.linalg.norm(vals - mean, axis=1, keepdims=True), 1e-9)
        res = tmpl[active] - (vals - mean) / norm
        # gradients scaled as the patch (its gain held over a step)
        gx = _sample(gx_all, f, sx, sy)
        gy = _sample(gy_all, f, sx, sy)
        jx = (gx - gx.mean(axis=1, keepdims=True)) / norm
        jy = (gy - gy.mean(axis=1, keepdims=True)) / norm
        a11, a12, a22 = (jx * jx).sum(1), (jx * jy).sum(1), (jy * jy).sum(1)
        b1, b2 = (jx * res).sum(1), (jy * res).sum(1)
        det = a11 * a22 - a12 * a12
        good = det > 1e-9 * np.maximum(a11 + a22, 1e-12) ** 2  # not an edge or a flat patch
        det = np.where(good, det, 1.0)
        step = np.stack([(a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det], axis=1)
        step = np.where(good[:, None], np.clip(step, -0.5, 0.5), 0.0)
        p[active] += step
        ok[active[~good]] = False
        active = active[good & (np.abs(step).max(axis=1) > config.converged_px)]
    score = (tmpl * _normalised(_sample(grey, frame, p[:, :1] + ox, p[:, 1:] + oy))).sum(axis=1)
    moved = np.hypot(*(p - start).T)
    ok &= (score >= config.min_zncc) & (moved <= config.max_shift_px)
    return np.where(ok[:, None], p.astype(np.float64) + 0.5, np.asarray(xy, dtype=np.float64)), ok


def _align_warped(
    grey: np.ndarray,
    gx_all: np.ndarray,
    gy_all: np.ndarray,
    tmpl: np.ndarray,
    frame: np.ndarray,
    start: np.ndarray,
    xy: np.ndarray,
    ox: np.ndarray,
    oy: np.ndarray,
    config: PatchConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """`align_patches` with an affine warp (the window offset o samples at p + M o, M a 2x2 map from the
    identity) or, for `config.warp` "homography", a projective one (at p + M o / (1 + g.o)); Gauss-Newton
    over (p, M[, g]) with the same normalised residual. Positions as `align_patches`; `gx_all`, `gy_all` the
    images' gradients."""
    k = len(start)
    projective = config.warp == "homography"
    n_par = 8 if projective else 6
    p = start.astype(np.float64).copy()
    m = np.tile(np.eye(2), (k, 1, 1))
    g = np.zeros((k, 2))
    ok = np.ones(k, bool)
    active = np.arange(k)
    oxd, oyd = ox.astype(np.float64), oy.astype(np.float64)

    def warped(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample positions (x, y) of the windows `idx`, and their projective denominators."""
        ma, ga = m[idx], g[idx]
        den = 1.0 + ga[:, :1] * oxd + ga[:, 1:] * oyd
        sx = p[idx, :1] + (ma[:, 0, :1] * oxd + ma[:, 0, 1:] * oyd) / den
        sy = p[idx, 1:] + (ma[:, 1, :1] * oxd + ma[:, 1, 1:] * oyd) / den
        return sx, sy, den

    for _ in range(config.iterations):
        if not len(active):
            break
        f = frame[active]
        sx, sy, den = warped(active)
        vals = _sample(grey, f, sx.astype(np.float32), sy.astype(np.float32))
        mean = vals.mean(axis=1, keepdims=True)
        norm = np.maximum(np.linalg.norm(vals - mean, axis=1, keepdims=True), 1e-9)
        res = tmpl[active] - (vals - mean) / norm
        gx = _sample(gx_all, f, sx.astype(np.float32), sy.astype(np.float32))
        gy = _sample(gy_all, f, sx.astype(np.float32), sy.astype(np.float32))
        gx = (gx - gx.mean(axis=1, keepdims=True)) / norm
        gy = (gy - gy.mean(axis=1, keepdims=True)) / norm
        cols = [gx, gy, gx * oxd / den, gx * oyd / den, gy * oxd / den, gy * oyd / den]
        if projective:  # d(M o / den)/dg = -(M o / den) o^T / den
            along = (gx * (sx - p[active, :1]) + gy * (sy - p[active, 1:])) / den
            cols += [-along * oxd, -along * oyd]
        jac = np.stack(cols, axis=2)  # (K, P, 6 or 8)
        jac_t = jac.transpose(0, 2, 1)
        hess = jac_t @ jac  # batched (BLAS); einsum took 7x as long
        grad = (jac_t @ res[..., None])[..., 0]
        # conditioned as the translation's test: the translation block must not be an edge or flat
        a11, a12, a22 = hess[:, 0, 0], hess[:, 0, 1], hess[:, 1, 1]
        good = a11 * a22 - a12 * a12 > 1e-9 * np.maximum(a11 + a22, 1e-12) ** 2
        scale = np.maximum(np.trace(hess, axis1=1, axis2=2), 1e-12)
        hess = hess + (1e-6 * scale)[:, None, None] * np.eye(n_par)
        if config.affine_prior > 0:
            lam = config.affine_prior * 0.5 * (a11 + a22)
            hess[:, 2:6, 2:6] += lam[:, None, None] * np.eye(4)
            grad[:, 2:6] -= lam[:, None] * (m[active] - np.eye(2)).reshape(-1, 4)
        if projective and config.projective_prior > 0:
            # g moves the window's rim by about g * radius^2: the prior is the linear part's at that scale
            lam = config.projective_prior * 0.5 * (a11 + a22) * config.radius**2
            hess[:, 6:, 6:] += lam[:, None, None] * np.eye(2)
            grad[:, 6:] -= lam[:, None] * g[active]
        step = np.zeros((len(active), n_par))
        if good.any():
            step[good] = np.linalg.solve(hess[good], grad[good][..., None])[..., 0]
        step[:, :2] = np.clip(step[:, :2], -0.5, 0.5)
        step[:, 2:6] = np.clip(step[:, 2:6], -0.1, 0.1)
        p[active] += step[:, :2]
        m[active] += step[:, 2:6].reshape(-1, 2, 2)
        if projective:  # steps of at most a tenth of the window's radius; the rim's denominator kept >= 1/2
            g[active] += np.clip(step[:, 6:], -0.1 / config.radius, 0.1 / config.radius)
            rim = np.abs(g[active]).sum(axis=1) * config.radius
            g[active] *= np.minimum(1.0, 0.5 / np.maximum(rim, 1e-12))[:, None]
        ok[active[~good]] = False
        active = active[good & (np.abs(step[:, :2]).max(axis=1) > config.converged_px)]
    sx, sy, _ = warped(np.arange(k))
    score = (tmpl * _normalised(_sample(grey, frame, sx.astype(np.float32), sy.astype(np.float32)))).sum(axis=1)
    moved = np.hypot(*(p - start).T)
    ok &= (score >= config.min_zncc) & (moved <= config.max_shift_px)
    return np.where(ok[:, None], p + 0.5, xy), ok


def _normalised(patches: np.ndarray) -> np.ndarray:
    """(K, P) patches less their mean, of unit length (flat ones stay ~0)."""
    centred = patches - patches.mean(axis=1, keepdims=True)
    return centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-9)


def refine_observations(
    grey: np.ndarray,
    observations: list[tuple[int, np.ndarray, np.ndarray]],
    config: PatchConfig = PatchConfig(),  # noqa: B008
) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], float]:
    """Every point's observations moved onto its reference observation's patch (the one in the middle of its
    frames) by `align_patches`, where that is within `config.max_frames` frames and succeeds; the others as
    they are. `grey` (N, h, w) uint8 tracking images; observations (frame, (K, 2) tracking pixels, (K,) point
    rows). Returns the observations and the fraction moved."""
    if not observations:
        return observations, 0.0
    from scipy import ndimage

    frames = np.concatenate([np.full(len(rows), f, np.intp) for f, _, rows in observations])
    xy = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for _, p, _ in observations])
    rows = np.concatenate([np.asarray(r, dtype=np.int64) for _, _, r in observations])
    if len(rows) == 0:
        return observations, 0.0
    # reference per point: its observation at the median frame
    order = np.lexsort((frames, rows))
    starts = np.flatnonzero(np.r_[True, rows[order][1:] != rows[order][:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    ref = order[starts + counts // 2]
    ref_of = np.empty(len(rows), np.intp)
    ref_of[order] = np.repeat(ref, counts)
    use = (ref_of != np.arange(len(rows))) & (np.abs(frames - frames[ref_of]) <= config.max_frames)
    smooth = np.stack([ndimage.gaussian_filter(g.astype(np.float32), config.smooth_px) for g in grey])
    idx = np.flatnonzero(use)
    new_xy = xy.copy()
    moved = np.zeros(len(rows), bool)
    if len(idx):
        r = ref_of[idx]
        new_xy[idx], moved[idx] = align_patches(smooth, frames[r], xy[r], frames[idx], xy[idx], config)
    out, at = [], 0
    for f, _, rws in observations:
        out.append((f, new_xy[at : at + len(rws)], rws))
        at += len(rws)
    return out, float(moved.mean())
