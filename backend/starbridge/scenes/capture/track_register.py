"""Registration (tracking stage ``registration``): every frame that is not a mapped keyframe is posed from its own
features: against the map's points (2D-3D matches with its neighbouring keyframes, RANSAC + refinement at the
fixed focal length), or, for a rotation-only clip, by its rotation from matches with them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pycolmap

from .track_features import FeatureEngine, Features
from .track_mapping import MapRun, model_arrays
from .track_rotation import RotationSolution, register_rotation
from .track_types import POSE_KEYFRAME, POSE_REGISTERED, TrackingConfig


@dataclass
class PosedFrames:
    """Per-frame OpenCV world-to-camera 3x4 poses as they are found, and their sources."""

    n: int
    w2c: dict[int, np.ndarray] = field(default_factory=dict)
    source: dict[int, str] = field(default_factory=dict)

    def set(self, frame: int, pose: np.ndarray, source: str) -> None:
        self.w2c[frame] = pose
        self.source[frame] = source


class Registrar:
    """Poses the frames of one tracking run that the map (or the rotation-only solve) left out. After `to_map`:
    `points`, `errors`, `colors` of the map's sparse points and `obs`, every posed frame's observations."""

    def __init__(
        self,
        frames: np.ndarray,
        engine: FeatureEngine,
        keyframes: list[int],
        quick: list[Features],
        dense: list[Features],
        size: tuple[int, int],
        scale: float,
        config: TrackingConfig,
        report: Callable[[str, int, int], None],
    ) -> None:
        self.frames = frames
        self.n = len(frames)
        self.engine = engine
        self.keyframes = keyframes
        self.quick = quick
        self.dense = dense
        #: (width, height) of the tracking images; input pixels per tracking pixel
        self.size = size
        self.scale = scale
        self.cfg = config
        self.report = report
        self.model_points = np.zeros((0, 3))
        self.model_errors = np.zeros(0)
        self.model_colors = np.zeros((0, 3), np.uint8)
        #: (frame, input-pixel positions (K, 2), point rows (K,)) per posed frame
        self.obs: list[tuple[int, np.ndarray, np.ndarray]] = []

    def _neighbours(self, frame: int, posed: list[int], count: int) -> list[int]:
        """The `count` nearest posed keyframe indices before `frame` and the `count` nearest after it."""
        before = [k for k in posed if self.keyframes[k] < frame][-count:]
        after = [k for k in posed if self.keyframes[k] > frame][:count]
        return before[::-1] + after

    def _features_of(self, frame: int) -> Features:
        """A keyframe's dense features, or another frame's quick ones."""
        if frame in self.keyframes:
            return self.dense[self.keyframes.index(frame)]
        return self.quick[frame]

    def to_map(self, run: MapRun) -> PosedFrames:
        """Every frame's pose: the keyframes' from the map, the others registered against its points."""
        cfg = self.cfg
        scale = self.scale
        w, h = self.size
        kf_poses, points, _, kf_obs = model_arrays(run)
        self.model_points = points
        self.model_errors, self.model_colors = self._point_stats(run)
        poses = PosedFrames(self.n)
        for k, pose in kf_poses.items():
            frame = self.keyframes[k]
            poses.set(frame, pose, POSE_KEYFRAME)
            kp_idx, rows = kf_obs[k]
            self.obs.append((frame, self.dense[k].xy[kp_idx] * scale, rows))
        # 3D point row of every keyframe keypoint (-1: none)
        point_of = {k: np.full(len(self.dense[k]), -1) for k in kf_poses}
        for k, (kp_idx, rows) in kf_obs.items():
            point_of[k][kp_idx] = rows
        camera = pycolmap.Camera.create_from_model_name(1, "SIMPLE_PINHOLE", run.focal, w, h)
        camera.params = [run.focal, w / 2.0, h / 2.0]
        estimation = pycolmap.AbsolutePoseEstimationOptions()
        estimation.ransac.max_error = 4.0
        estimation.ransac.random_seed = cfg.seed
        refinement = pycolmap.AbsolutePoseRefinementOptions()
        refinement.refine_focal_length = False
        refinement.refine_extra_params = False
        posed = sorted(kf_poses)
        todo = [f for f in range(self.n) if f not in poses.w2c]
        for t, frame in enumerate(todo):
            feats = self._features_of(frame)
            xy_parts, row_parts = [], []
            for k in self._neighbours(frame, posed, 1):
                m = self.engine.match(feats, self.dense[k])
                if len(m) == 0:
                    continue
                has = point_of[k][m[:, 1]] >= 0
                xy_parts.append(feats.xy[m[has, 0]])
                row_parts.append(point_of[k][m[has, 1]])
            self.report("registration", t + 1, len(todo))
            if not row_parts:
                continue
            all_rows = np.concatenate(row_parts)
            all_xy = np.concatenate(xy_parts)
            _, first = np.unique(all_rows, return_index=True)
            all_rows, all_xy = all_rows[first], all_xy[first]
            if len(all_rows) < cfg.min_register_inliers:
                continue
            result = pycolmap.estimate_and_refine_absolute_pose(
                all_xy, points[all_rows], camera, estimation, refinement
            )
            if result is None or result["num_inliers"] < cfg.min_register_inliers:
                continue
            inl = np.asarray(result["inlier_mask"], dtype=bool)
            pose = np.asarray(result["cam_from_world"].matrix(), dtype=np.float64)
            if not self._plausible(pose, points[all_rows[inl]], frame, kf_poses):
                continue
            poses.set(frame, pose, POSE_REGISTERED)
            self.obs.append((frame, all_xy[inl] * scale, all_rows[inl]))
        self.report("registration", len(todo), len(todo))
        return poses

    def _plausible(self, pose: np.ndarray, points: np.ndarray, frame: int, kf_poses: dict[int, np.ndarray]) -> bool:
        """A registration is kept when at least `min_register_in_front` of its inlier points lie in front of the
        camera and it turns at most `max_register_turn_deg` from the nearest keyframe in time. With a focal
        length far from the truth the 2D-3D fit can land on a mirrored pose that still fits: measured, a dolly
        filmed at 60 degrees and tracked at 44.4 had every registered frame rolled ~179 degrees from the truth
        between keyframes that were right (its points still in front; refining from the nearest keyframe's pose
        instead lands on the same mirrored fit: the map itself fits it); such frames are left to the
        interpolation, which the report counts."""
        depth = points @ pose[2, :3] + pose[2, 3]
        if len(depth) == 0 or float(np.mean(depth > 0)) < self.cfg.min_register_in_front:
            return False
        rel = pose[:3, :3] @ kf_poses[self._nearest_keyframe(frame, kf_poses)][:3, :3].T
        turn = math.degrees(math.acos(min(1.0, max(-1.0, (float(np.trace(rel)) - 1.0) / 2.0))))
        return turn <= self.cfg.max_register_turn_deg

    def _nearest_keyframe(self, frame: int, kf_poses: dict[int, np.ndarray]) -> int:
        return min(kf_poses, key=lambda k: abs(self.keyframes[k] - frame))

    def _point_stats(self, run: MapRun) -> tuple[np.ndarray, np.ndarray]:
        """Per point: reprojection error (input pixels) and colour (from its first observation)."""
        rec = run.reconstruction
        assert rec is not None
        ids = sorted(rec.point3D_ids())
        errors = np.array([rec.points3D[p].error for p in ids], dtype=np.float64) * self.scale
        colors = np.zeros((len(ids), 3), np.uint8)
        hgt, wid = self.frames.shape[1:3]
        for n, pid in enumerate(ids):
            element = rec.points3D[pid].track.elements[0]
            image = rec.images[element.image_id]
            x, y = image.points2D[element.point2D_idx].xy * self.scale
            frame = self.keyframes[int(image.name[2:])]
            colors[n] = self.frames[frame, min(int(y), hgt - 1), min(int(x), wid - 1)]
        return errors, colors

    def to_rotation(self, rotation: RotationSolution) -> PosedFrames:
        """Every frame's rotation: the keyframes' from the solve, the others from matches with them."""
        cfg = self.cfg
        w, h = self.size
        centre = np.array([w / 2.0, h / 2.0])
        poses = PosedFrames(self.n)
        posed = [k for k in range(len(self.keyframes)) if not np.isnan(rotation.rotations[k, 0, 0])]
        for k in posed:
            poses.set(self.keyframes[k], np.column_stack([rotation.rotations[k], np.zeros(3)]), POSE_KEYFRAME)
        todo = [f for f in range(self.n) if f not in poses.w2c]
        for t, frame in enumerate(todo):
            feats = self._features_of(frame)
            views = []
            for k in self._neighbours(frame, posed, 1):
                m = self.engine.match(self.dense[k], feats)
                if len(m) >= 8:
                    kf_xy, xy = self.dense[k].xy[m[:, 0]] - centre, feats.xy[m[:, 1]] - centre
                    views.append((rotation.rotations[k], kf_xy, xy))
            self.report("registration", t + 1, len(todo))
            found = register_rotation(rotation.focal, views, min_inliers=cfg.min_register_inliers) if views else None
            if found is not None:
                poses.set(frame, np.column_stack([found[0], np.zeros(3)]), POSE_REGISTERED)
        self.report("registration", len(todo), len(todo))
        return poses
