"""Structure from motion of the keyframes with pycolmap, at a fixed focal length.

The keyframes' features and verified matches go into a COLMAP database once (in a temporary folder); each
`MapBuilder.run(focal)` sets the camera's focal length, marks it fixed, and runs one of COLMAP's mappers
(self-calibration with a free focal length is fragile on short clips: mapping at fixed candidates is how the
field of view is searched):

* "global" (the default; COLMAP's global mapper, formerly GLOMAP): every keyframe's rotation at once from all
  the pairs' relative rotations (rotation averaging), then the positions and points together, then bundle
  adjustment. Why it is the default: the incremental mapper grows the model pair by pair from one starting
  pair, and a forward-moving camera's short pairs barely tell a turn from a sideways step, so a model could
  drift 2-13 degrees off while its reprojection error stayed low; the long pairs that would correct it (the
  loop offsets) are each one voice against many. Measured (40-frame 320x180 clips in procedural worlds 0 and
  2, FOV given, each clip encoded at CRF 14-18 to vary only the compression noise): incremental 3 of 30 tracks
  2.6-12.4 degrees off (median error), global none beyond 0.4 (its median error 0.06-0.39 degrees);
  bench/bench_tracking_worlds.py --mappers global,incremental measures both across worlds.
* "incremental": COLMAP's incremental mapper (what tracking used until this round), for comparison.

`MapBuilder.adjusted(run)` then lets one robust bundle adjustment move the focal length from a good start, with
its standard deviation from the adjustment's covariance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pycolmap

from .track_features import Features
from .track_types import MAPPERS


@dataclass
class MapRun:
    """One incremental-mapping run at a fixed focal length (tracking pixels)."""

    focal: float
    vertical_fov_deg: float
    #: The largest model, or None when the mapper could not start one.
    reconstruction: pycolmap.Reconstruction | None = field(repr=False)
    #: Keyframe indices with a pose in the model.
    registered: frozenset[int] = frozenset()
    mean_error_px: float = math.inf
    num_points: int = 0
    #: Standard deviation of the focal length (px) from the bundle adjustment's covariance, when it was free.
    focal_sigma: float = math.nan

    @property
    def num_registered(self) -> int:
        return len(self.registered)


def fov_of(focal: float, height: int) -> float:
    return math.degrees(2.0 * math.atan(0.5 * height / focal))


def focal_of(fov_deg: float, height: int) -> float:
    return 0.5 * height / math.tan(math.radians(fov_deg) / 2.0)


#: Points triangulated from rays closer than this (degrees) are dropped with their outliers (COLMAP's default).
MIN_TRI_ANGLE_DEG = 1.5
#: COLMAP's inlier threshold for two-view geometry and the initial pair, pixels (its default); below it the
#: mapper's limits for a new keyframe's pose (COLMAP: 12) and a point's observations (COLMAP: 4) are these.
COLMAP_MAX_ERROR_PX = 4.0
STRICT_ABS_POSE_ERROR_PX = 4.0
STRICT_FILTER_ERROR_PX = 2.0


class MapBuilder:
    """The keyframes' COLMAP database, and mapping runs on it."""

    def __init__(
        self,
        workdir: Path,
        size: tuple[int, int],
        keyframe_features: Sequence[Features],
        geometries: dict[tuple[int, int], pycolmap.TwoViewGeometry],
        *,
        num_threads: int,
        seed: int,
        init_min_tri_angle_deg: float,
        max_error_px: float = COLMAP_MAX_ERROR_PX,
        mapper: str = "global",
    ) -> None:
        if mapper not in MAPPERS:
            raise ValueError(f"mapper must be one of {', '.join(MAPPERS)}, got {mapper!r}")
        self.mapper = mapper
        self.workdir = workdir
        self.size = size
        self.count = len(keyframe_features)
        self.num_threads = num_threads
        self.seed = seed
        self.init_min_tri_angle_deg = init_min_tri_angle_deg
        self.max_error_px = max_error_px
        self.database = workdir / "keyframes.db"
        self._runs = 0
        w, h = size
        camera = pycolmap.Camera.create_from_model_name(1, "SIMPLE_PINHOLE", 1.2 * max(w, h), w, h)
        camera.has_prior_focal_length = True
        with pycolmap.Database.open(str(self.database)) as db:
            camera.camera_id = db.write_camera(camera)
            rig = pycolmap.Rig()
            rig.add_ref_sensor(camera.sensor_id)
            rig_id = db.write_rig(rig)
            image_ids = []
            for k, feats in enumerate(keyframe_features):
                image = pycolmap.Image(name=image_name(k), camera_id=camera.camera_id)
                image.image_id = db.write_image(image)
                frame = pycolmap.Frame()
                frame.rig_id = rig_id
                frame.add_data_id(image.data_id)
                db.write_frame(frame)
                db.write_keypoints(image.image_id, feats.keypoints)
                image_ids.append(image.image_id)
            for (a, b), geometry in geometries.items():
                db.write_matches(image_ids[a], image_ids[b], geometry.inlier_matches)
                db.write_two_view_geometry(image_ids[a], image_ids[b], geometry)
            self._camera = camera

    def run(self, focal: float, subset: Sequence[int] | None = None) -> MapRun:
        """Mapping (by `mapper`) with the focal length fixed at `focal` (tracking pixels), of all keyframes or
        of the `subset` (keyframe indices)."""
        w, h = self.size
        camera = self._camera
        camera.params = [focal, w / 2.0, h / 2.0]
        with pycolmap.Database.open(str(self.database)) as db:
            db.update_camera(camera)
        self._runs += 1
        out = self.workdir / f"run{self._runs}"
        out.mkdir()
        if self.mapper == "global":
            models = pycolmap.global_mapping(str(self.database), str(self.workdir), str(out), self._global(subset))
        else:
            models = pycolmap.incremental_mapping(
                str(self.database), str(self.workdir), str(out), self._incremental(subset)
            )
        fov = fov_of(focal, h)
        if not models:
            return MapRun(focal, fov, None)
        rec = max(models.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()))
        return summarize(rec, focal, fov)

    def _global(self, subset: Sequence[int] | None) -> pycolmap.GlobalPipelineOptions:
        options = pycolmap.GlobalPipelineOptions()
        adjustment = options.mapper.bundle_adjustment
        adjustment.refine_focal_length = False
        adjustment.refine_principal_point = False
        adjustment.refine_extra_params = False
        adjustment.ceres.use_gpu = False
        options.mapper.global_positioning.use_gpu = False
        options.min_model_size = 3
        options.random_seed = self.seed
        options.num_threads = self.num_threads
        if subset is not None:
            options.image_names = [image_name(k) for k in subset]
        return options

    def _incremental(self, subset: Sequence[int] | None) -> pycolmap.IncrementalPipelineOptions:
        options = pycolmap.IncrementalPipelineOptions()
        options.ba_refine_focal_length = False
        options.ba_refine_principal_point = False
        options.ba_refine_extra_params = False
        options.mapper.abs_pose_refine_focal_length = False
        options.mapper.abs_pose_refine_extra_params = False
        options.mapper.init_min_tri_angle = self.init_min_tri_angle_deg
        if self.max_error_px < COLMAP_MAX_ERROR_PX:  # TrackingConfig.map_max_error_px says why
            options.mapper.init_max_error = self.max_error_px
            options.mapper.abs_pose_max_error = STRICT_ABS_POSE_ERROR_PX
            options.mapper.filter_max_reproj_error = STRICT_FILTER_ERROR_PX
        options.mapper.init_min_num_inliers = 50
        options.mapper.abs_pose_min_num_inliers = 20
        options.mapper.random_seed = self.seed
        options.triangulation.random_seed = self.seed
        options.random_seed = self.seed
        # a model that stops growing early (a weak initial pair) is kept, but the mapper then starts another
        # from the remaining keyframes; the largest is used
        options.multiple_models = True
        options.max_num_models = 3
        options.min_model_size = 3
        options.extract_colors = False
        options.num_threads = self.num_threads
        if subset is not None:
            options.image_names = [image_name(k) for k in subset]
        return options

    def adjusted(self, run: MapRun, focal: float | None = None, *, max_error_px: float = 0.0) -> MapRun:
        """A copy of the run's model after a global bundle adjustment (poses and points free, Cauchy loss)
        with the focal length fixed at `focal`, or free (from the run's) when None; then also the focal
        length's standard deviation from the covariance of the adjustment (residuals scaled by their spread).
        With `max_error_px` > 0, observations reprojecting further than that (and points left with too few)
        are dropped from the copy first: an adjusted model's outliers, which would pull the focal length."""
        assert run.reconstruction is not None
        rec = pycolmap.Reconstruction(run.reconstruction)
        if max_error_px > 0:
            pycolmap.ObservationManager(rec).filter_all_points3D(max_error_px, MIN_TRI_ANGLE_DEG)
        camera = next(iter(rec.cameras.values()))
        if focal is not None:
            camera.params = [focal, *list(camera.params)[1:]]
        options = pycolmap.BundleAdjustmentOptions()
        options.refine_focal_length = focal is None
        options.refine_principal_point = False
        options.refine_extra_params = False
        options.print_summary = False
        options.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
        options.ceres.solver_options.num_threads = self.num_threads
        adjuster = adjust(rec, options)
        rec.update_point_3d_errors()
        camera = next(iter(rec.cameras.values()))
        f = float(camera.focal_length)
        out = summarize(rec, f, fov_of(f, self.size[1]))
        if focal is None:
            out.focal_sigma = _focal_sigma(rec, adjuster, camera)
        return out


def _focal_sigma(
    rec: pycolmap.Reconstruction, adjuster: pycolmap.CeresBundleAdjuster, camera: pycolmap.Camera
) -> float:
    """Standard deviation of the free focal length of an adjusted model, px (inf when not estimable)."""
    options = pycolmap.BACovarianceOptions()
    options.params = pycolmap.BACovarianceOptionsParams.ALL
    covariance = pycolmap.estimate_ba_covariance(options, rec, adjuster)
    cov = covariance.get_other_params_cov(camera.params) if covariance is not None else None
    if cov is None or not np.isfinite(cov).all() or cov[0, 0] <= 0:
        return math.inf
    f, cx, cy = (float(v) for v in list(camera.params)[:3])
    residuals = []
    for image in rec.images.values():
        if not image.has_pose:
            continue
        pose = np.asarray(image.cam_from_world().matrix())
        for p2d in image.points2D:
            if p2d.has_point3D():
                xc = pose[:, :3] @ rec.points3D[p2d.point3D_id].xyz + pose[:, 3]
                if xc[2] > 1e-9:
                    residuals.append((f * xc[0] / xc[2] + cx - p2d.xy[0], f * xc[1] / xc[2] + cy - p2d.xy[1]))
    r = np.array(residuals).reshape(-1, 2)
    inliers = r[np.hypot(r[:, 0], r[:, 1]) < 3.0]
    if len(inliers) == 0:
        return math.inf
    return math.sqrt(float(cov[0, 0]) * float(np.mean(inliers**2)))


def adjust(rec: pycolmap.Reconstruction, options: pycolmap.BundleAdjustmentOptions):
    """One bundle adjustment of every registered image of `rec` (in place), the gauge fixed by two cameras;
    returns the solved adjuster (its problem gives covariances)."""
    # (not pycolmap.bundle_adjustment: it builds an OptionManager, which resets COLMAP's log level)
    pycolmap.ObservationManager(rec).filter_observations_with_negative_depth()
    config = pycolmap.BundleAdjustmentConfig()
    for image_id in rec.reg_image_ids():
        config.add_image(image_id)
    config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)
    adjuster = pycolmap.create_default_ceres_bundle_adjuster(options, config, rec)
    adjuster.solve()
    return adjuster


def image_name(keyframe: int) -> str:
    return f"kf{keyframe:05d}"


def keyframe_of(image: pycolmap.Image) -> int:
    return int(image.name[2:])


def summarize(rec: pycolmap.Reconstruction, focal: float, fov: float) -> MapRun:
    registered = frozenset(keyframe_of(im) for im in rec.images.values() if im.has_pose)
    error = rec.compute_mean_reprojection_error() if rec.num_points3D() else math.inf
    return MapRun(focal, fov, rec, registered, float(error), rec.num_points3D())


def model_arrays(
    run: MapRun,
) -> tuple[dict[int, np.ndarray], np.ndarray, dict[int, int], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """The model as arrays: keyframe -> 3x4 world-to-camera (OpenCV), points (M, 3), COLMAP point id -> row,
    keyframe -> (keypoint indices (K,), point rows (K,)) of its observations."""
    rec = run.reconstruction
    assert rec is not None
    ids = sorted(rec.point3D_ids())
    row = {pid: n for n, pid in enumerate(ids)}
    points = np.array([rec.points3D[pid].xyz for pid in ids], dtype=np.float64).reshape(-1, 3)
    poses: dict[int, np.ndarray] = {}
    observations: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for image in rec.images.values():
        if not image.has_pose:
            continue
        k = keyframe_of(image)
        poses[k] = np.asarray(image.cam_from_world().matrix(), dtype=np.float64)
        kp_idx, pt_rows = [], []
        for n, p2d in enumerate(image.points2D):
            if p2d.has_point3D():
                kp_idx.append(n)
                pt_rows.append(row[p2d.point3D_id])
        observations[k] = (np.array(kp_idx, dtype=np.int64), np.array(pt_rows, dtype=np.int64))
    return poses, points, row, observations
