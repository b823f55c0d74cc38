"""What the plugin should show: frames re-rendered by the backend's own generator, and backdrops
reprojected in numpy the way backdrop_sky.gdshader does it on the GPU.

Used to check frames the plugin received (are these the backend's pixels for that pose, upright?)
and screenshots it rendered (is the backdrop that frame, reprojected to the camera, behind the level?).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from starbridge.geometry.camera import Intrinsics
from starbridge.geometry.conventions import pose_to_matrix, quat_to_matrix
from starbridge.runtime.explicit import ExplicitGenerator
from starbridge.runtime.generator import FrameRequest
from starbridge.scenes.store import SceneStore


def load_dump(base: Path) -> tuple[dict, np.ndarray]:
    """(metadata, (H, W, 4) uint8 pixels) of a frame a driver dumped as base.json + base.rgba."""
    meta = json.loads(base.with_suffix(".json").read_text())
    pixels = np.frombuffer(base.with_suffix(".rgba").read_bytes(), np.uint8)
    return meta, pixels.reshape(meta["height"], meta["width"], 4)


def backend_frame(store: Path, meta: dict, scene_id: str = "demo") -> np.ndarray:
    """The frame the backend's explicit generator makes for this pose, intrinsics and scene time."""
    scene = SceneStore(store).get(scene_id)
    w, h = meta["width"], meta["height"]
    session = ExplicitGenerator().open(scene, w, h)
    intrinsics = Intrinsics.from_fov(meta["fov"], w, h, meta["aspect"])
    c2w = pose_to_matrix(np.asarray(meta["position"], float), np.asarray(meta["rotation"], float))
    return session.render(FrameRequest(c2w, intrinsics, meta["scene_time_s"]))


def mean_abs(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    diff = np.abs(a[..., :3].astype(np.float64) - b[..., :3].astype(np.float64)).mean(axis=-1)
    return float(diff[mask].mean() if mask is not None else diff.mean())


def yaw_pitch_quat(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """(x, y, z, w) of Godot's rotation_degrees (pitch, yaw, 0) with the default YXZ order."""
    cy, sy = math.cos(math.radians(yaw_deg) / 2), math.sin(math.radians(yaw_deg) / 2)
    cp, sp = math.cos(math.radians(pitch_deg) / 2), math.sin(math.radians(pitch_deg) / 2)
    # q = q_yaw(Y) * q_pitch(X)
    return np.array([cy * sp, sy * cp, -sy * sp, cy * cp])


def reproject(
    frame: np.ndarray,
    frame_rotation: np.ndarray,
    frame_fov_deg: float,
    frame_aspect: float,
    camera_rotation: np.ndarray,
    camera_fov_deg: float,
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """What backdrop_sky.gdshader draws: (H, W, 3) float sRGB image and a mask of rays inside the frame.

    Both rotations are scene-space (x, y, z, w) quaternions (the anchor is the identity here);
    screen rows top to bottom; bilinear sampling with the edge clamped, like the GPU sampler.
    """
    width, height = size
    tan_c = math.tan(math.radians(camera_fov_deg) / 2)
    aspect_c = width / height
    xs = ((np.arange(width) + 0.5) / width * 2 - 1) * tan_c * aspect_c
    ys = (1 - (np.arange(height) + 0.5) / height * 2) * tan_c
    rays = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None], -np.ones((height, width))), axis=-1)
    world = rays @ quat_to_matrix(camera_rotation).T
    gen = world @ quat_to_matrix(frame_rotation)  # R_gen^T applied to row vectors
    depth = np.maximum(-gen[..., 2], 1e-9)
    tan_g = math.tan(math.radians(frame_fov_deg) / 2)
    u = 0.5 + 0.5 * gen[..., 0] / depth / (tan_g * frame_aspect)
    v = 0.5 - 0.5 * gen[..., 1] / depth / tan_g
    inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1) & (-gen[..., 2] > 1e-6)
    fh, fw = frame.shape[:2]
    px = np.clip(u * fw - 0.5, 0, fw - 1)
    py = np.clip(v * fh - 0.5, 0, fh - 1)
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    x1, y1 = np.minimum(x0 + 1, fw - 1), np.minimum(y0 + 1, fh - 1)
    fx, fy = (px - x0)[..., None], (py - y0)[..., None]
    # The GPU filters in linear light (source_color): do the same, then encode back to sRGB.
    lin = _to_linear(frame[..., :3].astype(np.float64) / 255.0)
    top = lin[y0, x0] * (1 - fx) + lin[y0, x1] * fx
    bottom = lin[y1, x0] * (1 - fx) + lin[y1, x1] * fx
    return 255.0 * _to_srgb(top * (1 - fy) + bottom * fy), inside


def _to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _to_srgb(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(np.clip(c, 0, None), 1 / 2.4) - 0.055)
