"""Scene bundles: one folder per scene, immutable once written (DESIGN.md sections 3, 6 and 8).

Layout of a bundle folder::

    scene.json   metadata (see SceneMeta; unknown keys are ignored, a newer format_version is refused)
    frames.npy   (N, H, W, 3) uint8, sRGB-encoded RGB, rows top to bottom
    depth.npy    (N, H, W) float32 z-depth (along the camera's forward axis) in scene metres;
                 +inf where there is no surface (sky, or every pixel of a rotation-only scene)
    poses.npy    (N, 4, 4) float64 camera-to-world in the wire convention (camera looks down -Z, +Y up)
    ...          extra files a source or a model may add (e.g. demo.json, cached reference latents)

The arrays are plain .npy files so readers can memory-map them (``np.load(mmap_mode="r")``).

Scene space: the first camera sits at the origin with the identity pose, and the scene is scaled so the
median finite depth over all reference frames is SCENE_MEDIAN_DEPTH_M. `write_bundle` does that
normalisation and records the factor in `SceneMeta.scale` (scene units per source unit).

Writes are atomic: everything goes into a hidden temporary sibling folder (TEMP_PREFIX), which is renamed
into place at the end; on any failure the temporary folder is removed. Readers never see half a bundle.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgument, SceneError
from ..geometry.camera import Intrinsics

log = logging.getLogger(__name__)

#: Version of the bundle layout written here. Readers refuse bundles with a larger number.
FORMAT_VERSION = 1
#: Median finite z-depth of the reference video in scene space, metres. Every scene is scaled to it.
SCENE_MEDIAN_DEPTH_M = 4.0

SCENE_JSON = "scene.json"
FRAMES_FILE = "frames.npy"
DEPTH_FILE = "depth.npy"
POSES_FILE = "poses.npy"
#: Names a bundle writer reserves; extra files may not use them.
RESERVED_FILES = frozenset({SCENE_JSON, FRAMES_FILE, DEPTH_FILE, POSES_FILE})

#: Hidden sibling folders a write or a delete is working in. Stores ignore them and sweep stale ones.
TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"

#: Scene ids: lowercase letters, digits, '-' and '_', 1 to 64 characters (they name folders and URLs).
SCENE_ID_RE = re.compile(r"[a-z0-9_-]{1,64}")
#: Allowed `source` values: "demo", "engine", or "video:<file name>".
SOURCE_RE = re.compile(r"demo|engine|video:.+")
#: Allowed `depth_source` values.
DEPTH_SOURCE_RE = re.compile(r"exact|depth-files|depth-model:.+|none")

#: How far a pose's rotation may be from orthonormal (max |R^T R - I|), and its last row from (0, 0, 0, 1).
POSE_TOLERANCE = 1e-4


class BundleExists(SceneError):
    """The destination of a bundle write already holds a scene (and overwriting was not asked for)."""


def check_scene_id(scene_id: str, field_name: str = "scene_id") -> str:
    """Return `scene_id` if it is valid, else raise InvalidArgument naming the rule it broke."""
    if not isinstance(scene_id, str) or not SCENE_ID_RE.fullmatch(scene_id):
        raise InvalidArgument(
            f"{field_name} {scene_id!r} is not a valid scene id: use 1 to 64 characters among lowercase "
            "letters, digits, '-' and '_' (e.g. 'harbour-sunset')",
            field=field_name,
        )
    return scene_id


def now_iso() -> str:
    """Current UTC time as ISO 8601 with seconds, e.g. '2025-01-31T12:00:00+00:00'."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class SceneMeta:
    """What scene.json says about a scene. Sizes are in pixels, times in seconds, depths in scene metres."""

    scene_id: str
    title: str
    fps: float
    frame_count: int
    #: Intrinsics of the reference frames, at (width, height).
    intrinsics: Intrinsics
    #: Scene units per source unit (what positions and depths of the source were multiplied by).
    scale: float = 1.0
    #: Median finite depth of the reference frames in scene space; 0.0 when no pixel has a finite depth.
    median_depth_m: float = SCENE_MEDIAN_DEPTH_M
    #: "demo", "engine" or "video:<file name>".
    source: str = "demo"
    #: "exact", "depth-files", "depth-model:<file name>" or "none".
    depth_source: str = "exact"
    #: True when the scene has no depth: every pixel is at infinity (a tripod backdrop).
    rotation_only: bool = False
    #: ISO 8601 time the bundle was written ("" until `write_bundle` fills it in).
    created: str = ""
    format_version: int = FORMAT_VERSION
    #: Keys of scene.json this version does not know, kept so a rewrite does not lose them.
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def width(self) -> int:
        return self.intrinsics.width

    @property
    def height(self) -> int:
        return self.intrinsics.height

    @property
    def duration_s(self) -> float:
        """Length of one loop of the reference video: frame_count / fps."""
        return self.frame_count / self.fps

    def to_json(self) -> dict[str, Any]:
        """The scene.json document."""
        k = self.intrinsics
        doc: dict[str, Any] = dict(self.extra)
        doc.update(
            format_version=self.format_version,
            scene_id=self.scene_id,
            title=self.title,
            fps=self.fps,
            frame_count=self.frame_count,
            width=k.width,
            height=k.height,
            intrinsics={"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy},
            scale=self.scale,
            median_depth_m=self.median_depth_m,
            source=self.source,
            depth_source=self.depth_source,
            rotation_only=self.rotation_only,
            created=self.created,
        )
        return doc

    @classmethod
    def from_json(cls, doc: Any, where: str = SCENE_JSON) -> SceneMeta:
        """Parse and validate a scene.json document; SceneError naming `where` and the field otherwise."""
        if not isinstance(doc, dict):
            raise SceneError(f"{where}: expected a JSON object, got {type(doc).__name__}")
        version = _get(doc, "format_version", int, where)
        if version > FORMAT_VERSION:
            raise SceneError(
                f"{where}: format_version {version} is newer than this StarBridge reads ({FORMAT_VERSION}); "
                "upgrade StarBridge or re-import the scene"
            )
        intr = _get(doc, "intrinsics", dict, where)
        width, height = _get(doc, "width", int, where), _get(doc, "height", int, where)
        intrinsics = Intrinsics(
            fx=_get(intr, "fx", float, where, "intrinsics.fx"),
            fy=_get(intr, "fy", float, where, "intrinsics.fy"),
            cx=_get(intr, "cx", float, where, "intrinsics.cx"),
            cy=_get(intr, "cy", float, where, "intrinsics.cy"),
            width=width,
            height=height,
        )
        known = {f for f in cls.__dataclass_fields__ if f != "extra"} | {"width", "height"}
        meta = cls(
            scene_id=_get(doc, "scene_id", str, where),
            title=_get(doc, "title", str, where),
            fps=_get(doc, "fps", float, where),
            frame_count=_get(doc, "frame_count", int, where),
            intrinsics=intrinsics,
            scale=_get(doc, "scale", float, where),
            median_depth_m=_get(doc, "median_depth_m", float, where),
            source=_get(doc, "source", str, where),
            depth_source=_get(doc, "depth_source", str, where),
            rotation_only=_get(doc, "rotation_only", bool, where),
            created=_get(doc, "created", str, where),
            format_version=version,
            extra={k: v for k, v in doc.items() if k not in known},
        )
        try:
            meta.validate()
        except SceneError as exc:
            raise SceneError(f"{where}: {exc.message}", field=exc.field) from None
        return meta

    def validate(self) -> None:
        """Raise SceneError naming the first field that is out of its range."""
        try:
            check_scene_id(self.scene_id)
        except InvalidArgument as exc:
            raise SceneError(exc.message, field="scene_id") from None
        k = self.intrinsics
        pos, nonneg = "a finite number > 0", "a finite number >= 0"
        checks: list[tuple[str, Any, bool, str]] = [
            ("fps", self.fps, _finite(self.fps) and self.fps > 0, pos),
            ("frame_count", self.frame_count, self.frame_count >= 1, ">= 1"),
            ("width", k.width, k.width >= 1, ">= 1"),
            ("height", k.height, k.height >= 1, ">= 1"),
            ("intrinsics.fx", k.fx, _finite(k.fx) and k.fx > 0, pos),
            ("intrinsics.fy", k.fy, _finite(k.fy) and k.fy > 0, pos),
            ("intrinsics.cx", k.cx, _finite(k.cx), "finite"),
            ("intrinsics.cy", k.cy, _finite(k.cy), "finite"),
            ("scale", self.scale, _finite(self.scale) and self.scale > 0, pos),
            ("median_depth_m", self.median_depth_m, _finite(self.median_depth_m) and self.median_depth_m >= 0, nonneg),
            ("source", self.source, bool(SOURCE_RE.fullmatch(self.source)), "'demo', 'engine' or 'video:<file name>'"),
            (
                "depth_source",
                self.depth_source,
                bool(DEPTH_SOURCE_RE.fullmatch(self.depth_source)),
                "'exact', 'depth-files', 'depth-model:<file name>' or 'none'",
            ),
        ]
        for name, value, ok, bound in checks:
            if not ok:
                raise SceneError(f"{name} must be {bound}, got {value!r}", field=name)
        if self.rotation_only and self.depth_source != "none":
            raise SceneError(f"a rotation-only scene has depth_source 'none', got {self.depth_source!r}")


def _finite(x: float) -> bool:
    return math.isfinite(x)


def _get(doc: dict, key: str, kind: type, where: str, label: str = "") -> Any:
    """doc[key] checked against `kind` (an int is accepted for a float; a bool is not an int)."""
    label = label or key
    if key not in doc:
        raise SceneError(f"{where}: missing field '{label}'", field=label)
    value = doc[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise SceneError(
            f"{where}: field '{label}' must be {kind.__name__}, got {type(value).__name__} {value!r}", field=label
        )
    return value


# ---------------------------------------------------------------------------------------------- reading


class SceneBundle:
    """A scene bundle folder, opened for reading. The arrays load lazily, memory-mapped and read-only.

    Opening reads and validates scene.json and the .npy headers (shape and dtype against the metadata,
    file size against the header), so a broken bundle fails here with a SceneError rather than mid-session.
    """

    def __init__(self, path: Path | str, meta: SceneMeta | None = None) -> None:
        self.path = Path(path)
        self.meta = meta if meta is not None else read_meta(self.path)
        for name, shape, dtype in self._expected_arrays():
            _check_npy_header(self.path / name, shape, dtype)

    def __repr__(self) -> str:
        m = self.meta
        return f"SceneBundle({m.scene_id!r}, {m.frame_count} frames {m.width}x{m.height} @ {m.fps:g} fps, {self.path})"

    def _expected_arrays(self) -> list[tuple[str, tuple[int, ...], np.dtype]]:
        n, h, w = self.meta.frame_count, self.meta.height, self.meta.width
        return [
            (FRAMES_FILE, (n, h, w, 3), np.dtype(np.uint8)),
            (DEPTH_FILE, (n, h, w), np.dtype(np.float32)),
            (POSES_FILE, (n, 4, 4), np.dtype(np.float64)),
        ]

    @cached_property
    def frames(self) -> np.ndarray:
        """(N, H, W, 3) uint8 sRGB reference frames, rows top to bottom (read-only memory map)."""
        return self._load(FRAMES_FILE)

    @cached_property
    def depth(self) -> np.ndarray:
        """(N, H, W) float32 z-depth in scene metres, +inf for no surface (read-only memory map)."""
        return self._load(DEPTH_FILE)

    @cached_property
    def poses(self) -> np.ndarray:
        """(N, 4, 4) float64 camera-to-world, wire convention, scene units; poses[0] is the identity."""
        return self._load(POSES_FILE, mmap=False)

    def _load(self, name: str, mmap: bool = True) -> np.ndarray:
        path = self.path / name
        try:
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise SceneError(f"{path}: cannot read array: {exc}") from exc
        if not mmap:
            arr.setflags(write=False)
        return arr

    def frame_index(self, scene_time_s: float) -> int:
        """Index of the reference frame nearest to `scene_time_s`, looping over the scene's duration."""
        if not math.isfinite(scene_time_s):
            raise InvalidArgument(f"scene_time_s must be finite, got {scene_time_s}", field="scene_time_s")
        return int(math.floor(scene_time_s * self.meta.fps + 0.5)) % self.meta.frame_count

    def file(self, name: str) -> Path:
        """Path of an extra file of the bundle (it may not exist)."""
        return self.path / name

    def size_bytes(self) -> int:
        """Total size of the bundle's files on disk, bytes."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def read_meta(path: Path) -> SceneMeta:
    """Read and validate `path`/scene.json."""
    where = path / SCENE_JSON
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SceneError(f"{path} is not a scene bundle: {SCENE_JSON} is missing") from None
    except OSError as exc:
        raise SceneError(f"{where}: cannot read: {exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SceneError(f"{where}: not valid JSON: {exc}") from None
    return SceneMeta.from_json(doc, str(where))


def _check_npy_header(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """SceneError unless `path` is an .npy of exactly this shape and dtype, C order, not truncated."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(f)
            else:
                got_shape, fortran, got_dtype = np.lib.format.read_array_header_2_0(f)
            data_start = f.tell()
    except FileNotFoundError:
        raise SceneError(f"broken scene bundle: {path.name} is missing in {path.parent}") from None
    except (OSError, ValueError) as exc:
        raise SceneError(f"broken scene bundle: {path} is not a readable .npy file: {exc}") from None
    if tuple(got_shape) != shape or got_dtype != dtype or fortran:
        raise SceneError(
            f"broken scene bundle: {path} holds {got_dtype} {tuple(got_shape)}"
            f"{' (Fortran order)' if fortran else ''}, scene.json says {dtype} {shape}"
        )
    need = data_start + int(np.prod(shape)) * dtype.itemsize
    size = path.stat().st_size
    if size < need:
        raise SceneError(f"broken scene bundle: {path} is truncated ({size} of {need} bytes)")


# ---------------------------------------------------------------------------------------------- writing


def median_finite_depth(depth: np.ndarray) -> float:
    """Median of the finite, positive values of `depth`; 0.0 when there are none."""
    flat = np.asarray(depth).reshape(-1)
    finite = flat[np.isfinite(flat) & (flat > 0)]
    return float(np.median(finite)) if finite.size else 0.0


def check_arrays(meta: SceneMeta, frames: np.ndarray, depth: np.ndarray, poses: np.ndarray) -> None:
    """Raise SceneError naming the array and the expected vs actual shape, dtype or value."""
    n, h, w = meta.frame_count, meta.height, meta.width
    for name, arr, shape, kinds in (
        ("frames", frames, (n, h, w, 3), "u"),
        ("depth", depth, (n, h, w), "f"),
        ("poses", poses, (n, 4, 4), "f"),
    ):
        if not isinstance(arr, np.ndarray):
            raise SceneError(f"{name} must be a numpy array, got {type(arr).__name__}", field=name)
        if arr.shape != shape:
            raise SceneError(f"{name} must have shape {shape} (N, ...) from scene meta, got {arr.shape}", field=name)
        if arr.dtype.kind not in kinds or (name == "frames" and arr.dtype != np.uint8):
            want = "uint8" if name == "frames" else "a float dtype"
            raise SceneError(f"{name} must be {want}, got {arr.dtype}", field=name)
    if np.isnan(depth).any() or (depth <= 0).any() or np.isneginf(depth).any():
        raise SceneError("depth must be > 0 or +inf (no surface) everywhere; found NaN, <= 0 or -inf", field="depth")
    if not np.isfinite(poses).all():
        raise SceneError("poses must be finite numbers", field="poses")
    rot = poses[:, :3, :3]
    ortho = np.abs(np.einsum("nji,njk->nik", rot, rot) - np.eye(3)).max()
    last_row = np.abs(poses[:, 3, :] - np.array([0.0, 0.0, 0.0, 1.0])).max()
    det = np.linalg.det(rot).min()
    if ortho > POSE_TOLERANCE or last_row > POSE_TOLERANCE or det < 0:
        raise SceneError(
            f"poses must be rigid camera-to-world matrices (rotation orthonormal, det +1, last row 0 0 0 1, "
            f"tolerance {POSE_TOLERANCE}); worst |R^T R - I| = {ortho:.2e}, last row off by {last_row:.2e}, "
            f"min det {det:.3f}",
            field="poses",
        )


def rigid_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 rigid transform."""
    inv = np.eye(4)
    inv[:3, :3] = m[:3, :3].T
    inv[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return inv


def normalise_scene(
    meta: SceneMeta, depth: np.ndarray, poses: np.ndarray, in_scene_units: bool = False
) -> tuple[SceneMeta, np.ndarray, np.ndarray]:
    """Rebase poses so poses[0] is the identity; unless `in_scene_units`, rescale positions and depth so the
    median finite depth is SCENE_MEDIAN_DEPTH_M. Returns (meta with scale and median_depth_m, depth float32,
    poses float64). A scene with no finite depth keeps its scale and gets median_depth_m 0.0."""
    poses = np.asarray(poses, dtype=np.float64)
    poses = np.einsum("ij,njk->nik", rigid_inverse(poses[0]), poses)
    poses[0] = np.eye(4)  # exactly, not up to rounding
    depth = np.asarray(depth, dtype=np.float32)
    median = median_finite_depth(depth)
    factor = 1.0
    if median > 0 and not in_scene_units:
        factor = SCENE_MEDIAN_DEPTH_M / median
        depth = depth * np.float32(factor)
        poses[:, :3, 3] *= factor
        median = median_finite_depth(depth)
    return replace(meta, scale=meta.scale * factor, median_depth_m=median), depth, poses


def write_bundle(
    dest: Path | str,
    meta: SceneMeta,
    frames: np.ndarray,
    depth: np.ndarray,
    poses: np.ndarray,
    extra_files: Mapping[str, bytes | np.ndarray] | None = None,
    *,
    in_scene_units: bool = False,
    overwrite: bool = False,
) -> SceneBundle:
    """Validate, normalise (see `normalise_scene`) and atomically write a bundle at `dest`.

    frames: (N, H, W, 3) uint8 sRGB; depth: (N, H, W) float z-depth, +inf for no surface; poses: (N, 4, 4)
    camera-to-world, wire convention; N, H, W from `meta`. `extra_files` maps plain file names to bytes or
    arrays (saved as .npy). `meta.created` is filled in when empty. With `overwrite`, an existing bundle at
    `dest` is replaced; without, BundleExists is raised (also when another writer got there first).
    Nothing half-written is ever visible at `dest`, and the temporary folder is removed on any failure.
    """
    dest = Path(dest)
    meta.validate()
    check_arrays(meta, frames, depth, poses)
    extra_files = dict(extra_files or {})
    for name in extra_files:
        if name in RESERVED_FILES or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise SceneError(f"extra file name {name!r} is reserved or not a plain file name", field="extra_files")
    if dest.exists() and not overwrite:
        raise BundleExists(f"scene folder {dest} already exists (pass overwrite to replace it)")
    meta, depth, poses = normalise_scene(meta, depth, poses, in_scene_units)
    if not meta.created:
        meta = replace(meta, created=now_iso())
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f"{TEMP_PREFIX}{dest.name}-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        _save_npy(tmp / FRAMES_FILE, np.ascontiguousarray(frames))
        _save_npy(tmp / DEPTH_FILE, np.ascontiguousarray(depth, dtype=np.float32))
        _save_npy(tmp / POSES_FILE, np.ascontiguousarray(poses, dtype=np.float64))
        for name, content in extra_files.items():
            if isinstance(content, np.ndarray):
                _save_npy(tmp / name, content)
            else:
                _save_bytes(tmp / name, bytes(content))
        _save_bytes(tmp / SCENE_JSON, (json.dumps(meta.to_json(), indent=2) + "\n").encode("utf-8"))
        _move_into_place(tmp, dest, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote scene bundle %s (%d frames %dx%d)", dest, meta.frame_count, meta.width, meta.height)
    return SceneBundle(dest, meta)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _save_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _move_into_place(tmp: Path, dest: Path, overwrite: bool) -> None:
    """Rename the finished `tmp` folder to `dest`. An existing `dest` is moved aside first when overwriting."""
    trash = None
    if overwrite and dest.exists():
        trash = dest.parent / f"{TRASH_PREFIX}{dest.name}-{uuid.uuid4().hex[:12]}"
        try:
            os.rename(dest, trash)
        except OSError as exc:
            raise SceneError(f"cannot replace the scene at {dest} (is it in use?): {exc}") from exc
    try:
        os.rename(tmp, dest)  # fails if dest exists and is not empty: another writer was first
    except OSError as exc:
        if trash is not None and not dest.exists():
            os.rename(trash, dest)  # put the old bundle back
            trash = None
        if dest.exists():
            raise BundleExists(f"scene folder {dest} was created by another writer meanwhile") from exc
        raise SceneError(f"cannot move the new bundle into place at {dest}: {exc}") from exc
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
