"""Scene bundles: one folder per scene, immutable once written (docs/architecture.md §3, §6 and §8).

Layout of a bundle folder (format_version 3)::

    scene.json   metadata (see SceneMeta; unknown keys are ignored, a newer format_version is refused),
                 with a "storage" object saying how each array below is stored and a "capture" report
    colour.mp4   the frames: H.264 in RGB (libx264rgb: 4:4:4, no YUV conversion), one video frame per
                 reference frame in order; lossless (qp 0) for rendered scenes, CRF COLOUR_CRF for videos.
                 colour.mkv (FFV1, lossless) instead where PyAV has no libx264rgb
    depth.mkv    z-depth as a lossless FFV1 16-bit grey video, in one of two encodings:
                   "log-u16": q = 0 for +inf (no surface), else 1 + round((ln depth - log_min) / log_step),
                              so the relative error is at most log_step / 2 at every depth: DEPTH_LOG_STEP
                              (0.05 %) for exact depth, DEPTH_LOG_STEP_ESTIMATED (0.25 %) for estimated
                              depth (multi-view stereo, a depth model: good to a few percent at best).
                              With "size" [w, h] smaller than the frames (format 3), the depth is stored at
                              the working size it was estimated at, and loading redoes the upsampling that
                              made the full-size depth at capture ("upsample": "colour-guided" with
                              "upsample_blend", capture/depth_upsample.py) from the decoded colour frames;
                   "f32-split": the float32 bits exactly, high halves over low halves (a frame of 2H rows);
                 absent when depth is one value everywhere: "infinite" (a rotation-only scene) or "constant"
    moving.mkv   moving-object masks, FFV1 8-bit grey (255 = a moving object), when the source has them;
                 absent when there are none, or when every mask is the same constant
    poses.npy    (N, 4, 4) float64 camera-to-world in the wire convention (camera looks down -Z, +Y up)
    ...          extra files a source or a model may add (e.g. demo.json, cached reference latents)

scene.json "storage" records, for every array, its encoding, its file and the file's size in bytes (a
truncated or replaced file is caught when the bundle is opened). Colour, depth and masks are decoded into
memory the first time any of them is used (`SceneBundle.load`), colour and depth in parallel; bundles of the
same folder opened in one process share one decoded copy while any of them is alive. Constant arrays are
zero-copy read-only broadcasts (a rotation-only scene's depth takes no memory). The KEEP_DECODED most
recently used scenes stay decoded after their bundles are closed (`drop_decoded` forgets them).

Format 2 (still read, never written): format 3 without "size": depth always at the frame size, log-u16 with
DEPTH_LOG_STEP whatever the depth's source. Format 1 (still read, never written): frames.npy (N, H, W, 3)
uint8, depth.npy (N, H, W) float32 and poses.npy, memory-mapped; no masks.

In memory, whatever the format: frames (N, H, W, 3) uint8 sRGB-encoded RGB, rows top to bottom; depth
(N, H, W) float32 z-depth (along the camera's forward axis) in scene metres, +inf where there is no surface;
moving (N, H, W) bool or None; poses (N, 4, 4) float64. All read-only.

Scene space: the first camera sits at the origin with the identity pose, and the scene is scaled so the
median finite depth over all reference frames is SCENE_MEDIAN_DEPTH_M. `write_bundle` does that
normalisation and records the factor in `SceneMeta.scale` (scene units per source unit).

Writes are atomic: everything goes into a hidden temporary sibling folder (TEMP_PREFIX), which is renamed
into place at the end; on any failure the temporary folder is removed. Readers never see half a bundle.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import logging
import math
import os
import re
import shutil
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import InvalidArgument, SceneError
from ..geometry.camera import Intrinsics
from .video import X264_REPRODUCIBLE

log = logging.getLogger(__name__)

#: Version of the bundle layout written here. Readers refuse bundles with a larger number.
FORMAT_VERSION = 3
#: The oldest layout still read (1: plain .npy arrays).
OLDEST_FORMAT_VERSION = 1
#: Median finite z-depth of the reference video in scene space, metres. Every scene is scaled to it.
SCENE_MEDIAN_DEPTH_M = 4.0

SCENE_JSON = "scene.json"
COLOUR_FILE = "colour.mp4"
#: Colour file where PyAV lacks libx264rgb (FFV1, lossless).
COLOUR_FILE_FFV1 = "colour.mkv"
DEPTH_FILE = "depth.mkv"
MOVING_FILE = "moving.mkv"
POSES_FILE = "poses.npy"
#: Array files of format 1.
V1_FRAMES_FILE = "frames.npy"
V1_DEPTH_FILE = "depth.npy"
#: Names a bundle writer reserves; extra files may not use them.
RESERVED_FILES = frozenset(
    {SCENE_JSON, COLOUR_FILE, COLOUR_FILE_FFV1, DEPTH_FILE, MOVING_FILE, POSES_FILE, V1_FRAMES_FILE, V1_DEPTH_FILE}
)

#: Colour of scenes from videos: H.264 constant rate factor (lower is better; 0 would be lossless) and
#: x264 speed preset. The frames are decoded from an already compressed clip, so a low CRF mostly re-encodes
#: the clip's own artefacts: on a 10 s 512x288 ground-truth clip (bench/bench_bundle_size.py) CRF 14 took
#: 4.6 MB (46.0 dB against the decoded frames), CRF 16 3.6 MB (44.6 dB), CRF 18 2.7 MB (43.1 dB), for a
#: 1.2 MB source, with no measurable change in the novel-view PSNR of the explicit render.
COLOUR_CRF = 16
COLOUR_PRESET = "fast"
#: Sources whose frames are rendered, not filmed: stored losslessly by default (colour and depth exact).
LOSSLESS_SOURCES = ("demo", "engine")
#: Step of ln(depth) of the "log-u16" depth encoding: relative error at most DEPTH_LOG_STEP / 2 (0.05 %).
DEPTH_LOG_STEP = 1e-3
#: The step for estimated depth (ESTIMATED_DEPTH_SOURCES): relative error at most 0.25 %, ten times below
#: what multi-view stereo or a monocular model gets right (a few percent at best); measured in
#: bench/bench_bundle_size.py (novel-view PSNR unchanged, depth file about half the size).
DEPTH_LOG_STEP_ESTIMATED = 5e-3
#: depth_source values whose depth is an estimate (a user's depth files may be exact: they keep DEPTH_LOG_STEP).
ESTIMATED_DEPTH_SOURCES = re.compile(r"multi-view-stereo|depth-model:.+")
#: Depth upsampling methods a bundle may ask for at load ("storage.depth.upsample").
UPSAMPLE_METHODS = ("colour-guided",)
#: Largest code of "log-u16" (0 is +inf).
_LOG_U16_MAX = 65535

#: Hidden sibling folders a write or a delete is working in. Stores ignore them and sweep stale ones.
TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"

#: Scene ids: lowercase letters, digits, '-' and '_', 1 to 64 characters (they name folders and URLs).
#: The longest scene id, characters.
SCENE_ID_MAX = 64
SCENE_ID_RE = re.compile(rf"[a-z0-9_-]{{1,{SCENE_ID_MAX}}}")
#: Allowed `source` values: "demo", "engine", or "video:<file name>".
SOURCE_RE = re.compile(r"demo|engine|video:.+")
#: Allowed `depth_source` values.
DEPTH_SOURCE_RE = re.compile(r"exact|multi-view-stereo|depth-files|depth-model:.+|none")
#: Plain file names (extra files, storage files).
FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

#: How far a pose's rotation may be from orthonormal (max |R^T R - I|), and its last row from (0, 0, 0, 1).
POSE_TOLERANCE = 1e-4

#: Encodings of scene.json "storage", per array.
FRAMES_ENCODINGS = ("video", "npy")
DEPTH_ENCODINGS = ("log-u16", "f32-split", "infinite", "constant", "npy")
MOVING_ENCODINGS = ("mask-video", "constant")
POSES_ENCODINGS = ("npy",)
_FILE_ENCODINGS = frozenset({"video", "npy", "log-u16", "f32-split", "mask-video"})


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


def v1_storage() -> dict[str, Any]:
    """The storage of a format-1 bundle: three memory-mappable .npy files, no masks."""
    return {
        "frames": {"encoding": "npy", "file": V1_FRAMES_FILE},
        "depth": {"encoding": "npy", "file": V1_DEPTH_FILE},
        "moving": None,
        "poses": {"encoding": "npy", "file": POSES_FILE},
    }


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
    #: How the arrays are stored: {"frames": {...}, "depth": {...}, "moving": {...} | None, "poses": {...}}
    #: (see the module docstring); filled in by `write_bundle`, empty until then.
    storage: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: How the scene was made (the capture pipeline's report: stages, timings, quality figures), a
    #: JSON-able mapping, or None. Stored as scene.json "capture".
    capture: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
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
        if self.format_version >= 2:
            doc.update(storage=_plain(self.storage), capture=_plain(self.capture))
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
        if version < OLDEST_FORMAT_VERSION:
            raise SceneError(f"{where}: format_version {version} is not a scene bundle format", field="format_version")
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
        if version == 1:
            storage, capture = v1_storage(), None
        else:
            storage = _parse_storage(_get(doc, "storage", dict, where), where)
            capture = doc.get("capture")
            if capture is not None and not isinstance(capture, dict):
                raise SceneError(
                    f"{where}: field 'capture' must be an object or null, got {type(capture).__name__}",
                    field="capture",
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
            storage=storage,
            capture=capture,
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
        if self.capture is not None:
            if not isinstance(self.capture, Mapping):
                raise SceneError(
                    f"capture must be a mapping or None, got {type(self.capture).__name__}", field="capture"
                )
            try:
                json.dumps(_plain(self.capture), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise SceneError(f"capture must be JSON-able with finite numbers: {exc}", field="capture") from None


@dataclass(frozen=True)
class WorkingDepth:
    """Depth estimated at a reduced (working) size, and how the full-size depth was made from it: what an
    imported scene's bundle stores instead of the full-size depth (loading redoes the upsampling)."""

    #: (N, h, w) float32 inverse depth (1 / z-depth, the units of the full-size depth given with it); 0 at +inf.
    inverse: np.ndarray = field(repr=False)
    #: The upsampling (one of UPSAMPLE_METHODS: capture/depth_upsample.py) and its parameter.
    method: str = "colour-guided"
    blend: float = 0.3


def _plain(value: Any) -> Any:
    """A JSON-able copy of mappings and sequences (Mapping -> dict, tuple -> list)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


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


def _parse_storage(doc: dict, where: str) -> dict[str, Any]:
    """Validate scene.json "storage" (formats 2 and 3): every array's encoding, file name, size and parameters."""
    out: dict[str, Any] = {}
    for name, encodings in (
        ("frames", FRAMES_ENCODINGS),
        ("depth", DEPTH_ENCODINGS),
        ("moving", MOVING_ENCODINGS),
        ("poses", POSES_ENCODINGS),
    ):
        label = f"storage.{name}"
        if name == "moving" and doc.get(name) is None:
            out[name] = None
            continue
        spec = _get(doc, name, dict, where, label)
        encoding = _get(spec, "encoding", str, where, f"{label}.encoding")
        _known(encoding, encodings, where, f"{label}.encoding", label)
        if encoding in _FILE_ENCODINGS:
            file = _get(spec, "file", str, where, f"{label}.file")
            if not FILE_NAME_RE.fullmatch(file):
                raise SceneError(f"{where}: {label}.file {file!r} is not a plain file name", field=label)
            if "bytes" in spec:
                size = _get(spec, "bytes", int, where, f"{label}.bytes")
                if size < 0:
                    raise SceneError(f"{where}: {label}.bytes must be >= 0, got {size}", field=label)
        if encoding == "log-u16":
            log_min = _get(spec, "log_min", float, where, f"{label}.log_min")
            step = _get(spec, "log_step", float, where, f"{label}.log_step")
            if not (math.isfinite(log_min) and math.isfinite(step) and step > 0):
                raise SceneError(f"{where}: {label} needs a finite log_min and a log_step > 0", field=label)
            if "size" in spec:
                _parse_working_size(spec, where, label)
        elif encoding == "constant" and name == "depth":
            value = _get(spec, "value", float, where, f"{label}.value")
            if not (math.isfinite(value) and value > 0):
                raise SceneError(f"{where}: {label}.value must be a finite number > 0, got {value!r}", field=label)
        elif encoding == "constant":
            _get(spec, "value", bool, where, f"{label}.value")
        out[name] = dict(spec)
    return out


def _known(value: str, allowed: tuple[str, ...], where: str, key: str, label: str) -> None:
    """Raise SceneError unless `value` (scene.json's `key`) is one of `allowed`: a newer writer's, perhaps."""
    if value not in allowed:
        raise SceneError(
            f"{where}: {key} {value!r} is not one this StarBridge reads ({', '.join(allowed)}); "
            "was the scene written by a newer version?",
            field=label,
        )


def _parse_working_size(spec: dict, where: str, label: str) -> None:
    """Validate a depth stored at a working size: "size" [w, h], "upsample" and "upsample_blend"."""
    size = spec["size"]
    if not (
        isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        and min(size) >= 1
    ):  # fmt: skip
        raise SceneError(f"{where}: {label}.size must be [width, height] in pixels, got {size!r}", field=label)
    _known(_get(spec, "upsample", str, where, f"{label}.upsample"), UPSAMPLE_METHODS, where, f"{label}.upsample", label)
    blend = _get(spec, "upsample_blend", float, where, f"{label}.upsample_blend")
    if not (math.isfinite(blend) and blend >= 0):
        raise SceneError(f"{where}: {label}.upsample_blend must be a finite number >= 0, got {blend!r}", field=label)


# ---------------------------------------------------------------------------------------------- reading


class _Arrays:
    """The decoded frames, depth and masks of one bundle (shared by the SceneBundles of that folder)."""

    def __init__(self, frames: np.ndarray, depth: np.ndarray, moving: np.ndarray | None) -> None:
        self.frames = frames
        self.depth = depth
        self.moving = moving


#: How many scenes stay decoded in memory after their last SceneBundle is gone (most recently used first),
#: so a scene whose session just closed, or that start-up prepared, is not decoded again by the next one.
KEEP_DECODED = 2

#: Decoded arrays by bundle identity (folder, scene.json inode and mtime), while any SceneBundle holds them
#: or they are among the KEEP_DECODED most recently used.
_SHARED: weakref.WeakValueDictionary[tuple, _Arrays] = weakref.WeakValueDictionary()
_RECENT: collections.deque[_Arrays] = collections.deque()
_SHARED_LOCK = threading.Lock()
_LOADING: dict[tuple, threading.Lock] = {}
#: .npy files are opened one at a time: numpy parses their header with ast.literal_eval, and CPython 3.11's
#: AST constructor keeps its recursion counter per interpreter, not per thread, so two threads parsing at once
#: can fail with "SystemError: AST constructor recursion depth mismatch" (seen once in CI: a format-1 bundle's
#: depth opening on the loader's helper thread while its frames opened on the caller's).
_NPY_LOCK = threading.Lock()


def drop_decoded() -> None:
    """Forget the recently used decoded scenes (memory is freed once no open SceneBundle holds them)."""
    with _SHARED_LOCK:
        _RECENT.clear()


def _keep(arrays: _Arrays) -> None:
    """Make `arrays` the most recently used (call with _SHARED_LOCK held)."""
    for i, held in enumerate(_RECENT):
        if held is arrays:
            del _RECENT[i]
            break
    _RECENT.append(arrays)
    while len(_RECENT) > KEEP_DECODED:
        _RECENT.popleft()


class SceneBundle:
    """A scene bundle folder, opened for reading.

    Opening reads and validates scene.json and checks every array file is there with the size scene.json
    records (format 1: the .npy headers against the metadata), so a broken bundle fails here with a
    SceneError rather than mid-session. Colour, depth and masks are decoded into memory on first use (or by
    `load`); a file that does not decode raises SceneError then. Poses load on first use.
    """

    def __init__(self, path: Path | str, meta: SceneMeta | None = None) -> None:
        self.path = Path(path)
        self.meta = meta if meta is not None else read_meta(self.path)
        self._lock = threading.Lock()
        self._arrays: _Arrays | None = None
        self._poses: np.ndarray | None = None
        self._check_files()

    def __repr__(self) -> str:
        m = self.meta
        return f"SceneBundle({m.scene_id!r}, {m.frame_count} frames {m.width}x{m.height} @ {m.fps:g} fps, {self.path})"

    # ------------------------------------------------------------------ the arrays

    @property
    def frames(self) -> np.ndarray:
        """(N, H, W, 3) uint8 sRGB reference frames, rows top to bottom (read-only)."""
        return self._load().frames

    @property
    def depth(self) -> np.ndarray:
        """(N, H, W) float32 z-depth in scene metres, +inf for no surface (read-only)."""
        return self._load().depth

    @property
    def moving(self) -> np.ndarray | None:
        """(N, H, W) bool: pixels of moving objects (read-only); None when the scene has no masks."""
        return self._load().moving

    @property
    def poses(self) -> np.ndarray:
        """(N, 4, 4) float64 camera-to-world, wire convention, scene units; poses[0] is the identity."""
        with self._lock:
            if self._poses is None:
                self._poses = self._npy("poses", mmap=False)
            return self._poses

    def load(self) -> SceneBundle:
        """Decode colour, depth and masks into memory now (the first use does it otherwise); returns self.

        Raises SceneError naming the file when one does not decode to what scene.json says."""
        self._load()
        return self

    @property
    def loaded(self) -> bool:
        """Whether the arrays are in memory (for this bundle object)."""
        return self._arrays is not None

    def _load(self) -> _Arrays:
        with self._lock:
            if self._arrays is None:
                self._arrays = _shared_arrays(self)
            return self._arrays

    def _decode(self) -> _Arrays:
        """Decode the arrays from disk: depth and masks on a second thread while colour decodes here."""
        result: dict[str, Any] = {}

        def depth_and_masks() -> None:
            try:
                result["depth"] = self._read_depth()
                if isinstance(result["depth"], WorkingDepth):  # import (compile) the kernel while colour decodes
                    from .capture import depth_upsample  # noqa: F401
                result["moving"] = self._read_moving()
            except BaseException as exc:  # re-raised on the calling thread
                result["error"] = exc

        helper = threading.Thread(target=depth_and_masks, name="bundle-load", daemon=True)
        helper.start()
        try:
            frames = self._read_frames()
        finally:
            helper.join()
        if "error" in result:
            raise result["error"]
        depth = result["depth"]
        if isinstance(depth, WorkingDepth):  # stored at the working size: upsample under the decoded colour
            from .capture.depth_upsample import upsample_frames

            depth = upsample_frames(depth.inverse, frames, depth.blend)
            depth.setflags(write=False)
        return _Arrays(frames, depth, result["moving"])

    def _read_frames(self) -> np.ndarray:
        spec = self.meta.storage["frames"]
        if spec["encoding"] == "npy":
            return self._npy("frames")
        n, h, w = self.meta.frame_count, self.meta.height, self.meta.width
        out = np.empty((n, h, w, 3), np.uint8)

        def put(i: int, frame: Any) -> None:
            out[i] = frame.to_ndarray(format="rgb24")

        _read_video(self.path / spec["file"], n, (w, h), put)
        out.setflags(write=False)
        return out

    def _read_depth(self) -> np.ndarray | WorkingDepth:
        """The depth (N, H, W); or, stored at a working size, its inverse (N, h, w) to upsample (WorkingDepth)."""
        spec = self.meta.storage["depth"]
        n, h, w = self.meta.frame_count, self.meta.height, self.meta.width
        encoding = spec["encoding"]
        if encoding == "npy":
            return self._npy("depth")
        if encoding in ("infinite", "constant"):
            value = np.float32(np.inf if encoding == "infinite" else spec["value"])
            return np.broadcast_to(value, (n, h, w))  # read-only, no memory
        if encoding == "log-u16" and "size" in spec and tuple(spec["size"]) != (w, h):
            ws, hs = spec["size"]
            inverse = np.empty((n, hs, ws), np.float32)
            lut = log_u16_table(spec["log_min"], spec["log_step"], inverse=True)

            def put_inverse(i: int, frame: Any) -> None:
                np.take(lut, frame.to_ndarray(), out=inverse[i])

            _read_video(self.path / spec["file"], n, (ws, hs), put_inverse)
            return WorkingDepth(inverse, spec["upsample"], spec["upsample_blend"])
        out = np.empty((n, h, w), np.float32)
        if encoding == "log-u16":
            lut = log_u16_table(spec["log_min"], spec["log_step"])

            def put(i: int, frame: Any) -> None:
                np.take(lut, frame.to_ndarray(), out=out[i])

            _read_video(self.path / spec["file"], n, (w, h), put)
        else:  # f32-split: high halves over low halves

            def put(i: int, frame: Any) -> None:
                halves = frame.to_ndarray().astype(np.uint32)
                out[i].view(np.uint32)[...] = (halves[:h] << 16) | halves[h:]

            _read_video(self.path / spec["file"], n, (w, 2 * h), put)
        out.setflags(write=False)
        return out

    def _read_moving(self) -> np.ndarray | None:
        spec = self.meta.storage.get("moving")
        if spec is None:
            return None
        n, h, w = self.meta.frame_count, self.meta.height, self.meta.width
        if spec["encoding"] == "constant":
            return np.broadcast_to(np.bool_(spec["value"]), (n, h, w))
        out = np.empty((n, h, w), np.bool_)

        def put(i: int, frame: Any) -> None:
            np.greater(frame.to_ndarray(), 127, out=out[i])

        _read_video(self.path / spec["file"], n, (w, h), put)
        out.setflags(write=False)
        return out

    def _npy(self, name: str, mmap: bool = True) -> np.ndarray:
        path = self.path / self.meta.storage[name]["file"]
        try:
            with _NPY_LOCK:
                arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise SceneError(f"{path}: cannot read array: {exc}") from exc
        if not mmap:
            arr.setflags(write=False)
        return arr

    # ------------------------------------------------------------------ checks at open

    def _check_files(self) -> None:
        n, h, w = self.meta.frame_count, self.meta.height, self.meta.width
        npy_shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {
            "frames": ((n, h, w, 3), np.dtype(np.uint8)),
            "depth": ((n, h, w), np.dtype(np.float32)),
            "poses": ((n, 4, 4), np.dtype(np.float64)),
        }
        storage = self.meta.storage
        working = storage["depth"].get("size")
        if working is not None and (working[0] > w or working[1] > h):
            raise SceneError(
                f"broken scene bundle: {self.path / SCENE_JSON}: storage.depth.size {working} is larger than the "
                f"frames ({w}x{h})"
            )
        for name in ("frames", "depth", "moving", "poses"):
            spec = storage.get(name)
            if spec is None or spec["encoding"] not in _FILE_ENCODINGS:
                continue
            path = self.path / spec["file"]
            if spec["encoding"] == "npy":
                shape, dtype = npy_shapes[name]
                _check_npy_header(path, shape, dtype)
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise SceneError(f"broken scene bundle: {path.name} is missing in {path.parent}") from None
            except OSError as exc:
                raise SceneError(f"broken scene bundle: cannot read {path}: {exc}") from None
            want = spec.get("bytes")
            if want is not None and size != want:
                what = "truncated" if size < want else "larger than written"
                raise SceneError(f"broken scene bundle: {path} is {what} ({size} bytes, scene.json says {want})")

    # ------------------------------------------------------------------ the rest

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


def _shared_arrays(bundle: SceneBundle) -> _Arrays:
    """The decoded arrays of `bundle`'s folder: the copy another open bundle of it holds, else decoded now
    (once, however many threads ask at the same time)."""
    try:
        st = (bundle.path / SCENE_JSON).stat()
        key: tuple = (str(bundle.path.resolve()), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        return bundle._decode()  # scene.json gone (the folder was replaced or deleted): no sharing
    with _SHARED_LOCK:
        hit = _SHARED.get(key)
        if hit is not None:
            _keep(hit)
            return hit
        gate = _LOADING.setdefault(key, threading.Lock())
    try:
        with gate:
            with _SHARED_LOCK:
                hit = _SHARED.get(key)
            if hit is None:
                hit = bundle._decode()
            with _SHARED_LOCK:
                _SHARED[key] = hit
                _keep(hit)
            return hit
    finally:
        with _SHARED_LOCK:
            if _LOADING.get(key) is gate and not gate.locked():
                del _LOADING[key]


def _read_video(path: Path, count: int, size: tuple[int, int], put: Callable[[int, Any], None]) -> None:
    """Decode the first video stream of `path`, calling put(i, frame) for each of exactly `count` frames of
    `size` (width, height); SceneError naming the file otherwise."""
    import av

    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise SceneError(f"broken scene bundle: {path} is not a readable video: {exc}") from None
    i = 0
    try:
        if not container.streams.video:
            raise SceneError(f"broken scene bundle: {path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if i >= count:
                raise SceneError(f"broken scene bundle: {path} holds more than the {count} frames scene.json says")
            if (frame.width, frame.height) != size:
                raise SceneError(
                    f"broken scene bundle: {path} holds {frame.width}x{frame.height} frames, scene.json says "
                    f"{size[0]}x{size[1]}"
                )
            put(i, frame)
            i += 1
    except av.FFmpegError as exc:
        raise SceneError(f"broken scene bundle: {path}: cannot decode frame {i}: {exc}") from None
    finally:
        container.close()
    if i != count:
        raise SceneError(f"broken scene bundle: {path} holds {i} frames, scene.json says {count}")


def log_u16_table(log_min: float, log_step: float, inverse: bool = False) -> np.ndarray:
    """(65536,) float32 depth of each "log-u16" code: +inf for 0, exp(log_min + (q - 1) log_step) else; with
    `inverse`, the inverse depth: 0 for code 0, exp(-(log_min + (q - 1) log_step)) else."""
    sign = -1.0 if inverse else 1.0
    with np.errstate(over="ignore"):
        logs = log_min + np.arange(-1, _LOG_U16_MAX, dtype=np.float64) * log_step
        table = np.exp(sign * logs).astype(np.float32)
    table[0] = 0.0 if inverse else np.inf
    return table


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


def npy_header(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) of an open .npy file, from its header alone (nothing is unpickled)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def _check_npy_header(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """SceneError unless `path` is an .npy of exactly this shape and dtype, C order, not truncated."""
    try:
        with open(path, "rb") as f:
            got_shape, fortran, got_dtype = npy_header(f)
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


def check_arrays(
    meta: SceneMeta, frames: np.ndarray, depth: np.ndarray, poses: np.ndarray, moving: np.ndarray | None = None
) -> None:
    """Raise SceneError naming the array and the expected vs actual shape, dtype or value."""
    n, h, w = meta.frame_count, meta.height, meta.width
    arrays: list[tuple[str, Any, tuple[int, ...], str]] = [
        ("frames", frames, (n, h, w, 3), "u"),
        ("depth", depth, (n, h, w), "f"),
        ("poses", poses, (n, 4, 4), "f"),
    ]
    if moving is not None:
        arrays.append(("moving", moving, (n, h, w), "b"))
    for name, arr, shape, kinds in arrays:
        if not isinstance(arr, np.ndarray):
            raise SceneError(f"{name} must be a numpy array, got {type(arr).__name__}", field=name)
        if arr.shape != shape:
            raise SceneError(f"{name} must have shape {shape} (N, ...) from scene meta, got {arr.shape}", field=name)
        if arr.dtype.kind not in kinds or (name == "frames" and arr.dtype != np.uint8):
            want = {"frames": "uint8", "moving": "bool"}.get(name, "a float dtype")
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
    moving: np.ndarray | None = None,
    depth_working: WorkingDepth | None = None,
    in_scene_units: bool = False,
    overwrite: bool = False,
    lossless: bool | None = None,
    colour_crf: int = COLOUR_CRF,
    depth_log_step: float | None = None,
) -> SceneBundle:
    """Validate, normalise (see `normalise_scene`) and atomically write a bundle at `dest` (format 2).

    frames: (N, H, W, 3) uint8 sRGB; depth: (N, H, W) float z-depth, +inf for no surface; poses: (N, 4, 4)
    camera-to-world, wire convention; moving: (N, H, W) bool masks of moving objects, or None; N, H, W from
    `meta`. `meta.capture` (the capture report) is stored in scene.json. `extra_files` maps plain file names
    to bytes or arrays (saved as .npy). `meta.created` is filled in when empty.

    lossless: store colour and depth exactly (H.264 qp 0, float32 depth) rather than H.264 at `colour_crf`
    and log-quantised depth; None: lossless for rendered sources (LOSSLESS_SOURCES). depth_log_step: the
    quantisation step of ln(depth) (relative error <= step / 2); None: DEPTH_LOG_STEP_ESTIMATED for estimated
    depth (ESTIMATED_DEPTH_SOURCES), DEPTH_LOG_STEP else.

    depth_working: the working-size inverse depth `depth` was upsampled from (multi-view stereo's,
    `DepthResult.inverse`, with its method and blend). Unless lossless, it is what the bundle stores (a few
    times smaller), and loading redoes the upsampling from the stored colour: the loaded depth is that of
    `depth` within the quantisation step wherever the colour choice at depth edges comes out the same (the
    colour is stored lossily), and the same bits on every load.

    With `overwrite`, an existing bundle at `dest` is replaced; without, BundleExists is raised (also when
    another writer got there first). Nothing half-written is ever visible at `dest`, and the temporary
    folder is removed on any failure.
    """
    dest = Path(dest)
    meta.validate()
    check_arrays(meta, frames, depth, poses, moving)
    if not 0 <= colour_crf <= 51:
        raise SceneError(f"colour_crf must be in [0, 51], got {colour_crf}", field="colour_crf")
    if depth_log_step is not None and not (math.isfinite(depth_log_step) and 0 < depth_log_step <= 0.1):
        raise SceneError(f"depth_log_step must be in (0, 0.1], got {depth_log_step!r}", field="depth_log_step")
    if depth_working is not None:
        _check_working(depth_working, depth.shape)
    extra_files = dict(extra_files or {})
    for name in extra_files:
        if name in RESERVED_FILES or not FILE_NAME_RE.fullmatch(name):
            raise SceneError(f"extra file name {name!r} is reserved or not a plain file name", field="extra_files")
    if dest.exists() and not overwrite:
        raise BundleExists(f"scene folder {dest} already exists (pass overwrite to replace it)")
    scale_before = meta.scale
    meta, depth, poses = normalise_scene(meta, depth, poses, in_scene_units)
    if lossless is None:
        lossless = meta.source in LOSSLESS_SOURCES
    if depth_log_step is None:
        estimated = ESTIMATED_DEPTH_SOURCES.fullmatch(meta.depth_source)
        depth_log_step = DEPTH_LOG_STEP_ESTIMATED if estimated else DEPTH_LOG_STEP
    if depth_working is not None and meta.scale != scale_before:  # inverse depth scales the other way
        factor = np.float32(scale_before / meta.scale)
        depth_working = replace(depth_working, inverse=np.asarray(depth_working.inverse, np.float32) * factor)
    if not meta.created:
        meta = replace(meta, created=now_iso())
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f"{TEMP_PREFIX}{dest.name}-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        _save_npy(tmp / POSES_FILE, np.ascontiguousarray(poses, dtype=np.float64))
        storage: dict[str, Any] = {
            "frames": _write_colour(tmp, frames, meta.fps, lossless, colour_crf),
            "depth": _write_depth(tmp, depth, meta.fps, lossless, depth_log_step, depth_working),
            "moving": None if moving is None else _write_moving(tmp, moving, meta.fps),
            "poses": {"encoding": "npy", "file": POSES_FILE},
        }
        for spec in storage.values():
            if spec is not None and "file" in spec:
                spec["bytes"] = (tmp / spec["file"]).stat().st_size
        meta = replace(meta, format_version=FORMAT_VERSION, storage=storage)
        for name, content in extra_files.items():
            if isinstance(content, np.ndarray):
                _save_npy(tmp / name, content)
            else:
                _save_bytes(tmp / name, bytes(content))
        doc = json.dumps(meta.to_json(), indent=2, allow_nan=False)
        _save_bytes(tmp / SCENE_JSON, (doc + "\n").encode("utf-8"))
        _move_into_place(tmp, dest, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote scene bundle %s (%d frames %dx%d)", dest, meta.frame_count, meta.width, meta.height)
    return SceneBundle(dest, meta)


def colour_codec() -> str:
    """The colour encoder this PyAV has: "libx264rgb" (H.264 in RGB), else "ffv1" (lossless, larger)."""
    import av

    return "libx264rgb" if "libx264rgb" in av.codecs_available else "ffv1"


def _write_colour(folder: Path, frames: np.ndarray, fps: float, lossless: bool, crf: int) -> dict[str, Any]:
    codec = colour_codec()
    h, w = frames.shape[1:3]
    if codec == "libx264rgb":
        quality = {"qp": "0"} if lossless else {"crf": str(crf)}
        options = {**quality, "preset": COLOUR_PRESET, "x264-params": X264_REPRODUCIBLE}
        _write_video(folder / COLOUR_FILE, frames, fps, (w, h), "libx264rgb", "rgb24", "rgb24", options)
        return {"encoding": "video", "file": COLOUR_FILE, "codec": codec, "lossless": lossless,
                "crf": None if lossless else crf}  # fmt: skip
    log.warning("this PyAV has no libx264rgb encoder: storing colour losslessly with FFV1 (larger files)")
    _write_video(folder / COLOUR_FILE_FFV1, frames, fps, (w, h), "ffv1", "bgr0", "rgb24", {"level": "3"})
    return {"encoding": "video", "file": COLOUR_FILE_FFV1, "codec": codec, "lossless": True, "crf": None}


def _check_working(working: WorkingDepth, shape: tuple[int, ...]) -> None:
    """SceneError unless `working` is (N, h, w) finite inverse depth >= 0 no larger than `shape`, with a known
    upsampling."""
    inv = working.inverse
    if not isinstance(inv, np.ndarray) or inv.ndim != 3 or inv.dtype.kind != "f":
        what = f"{inv.dtype} {inv.shape}" if isinstance(inv, np.ndarray) else type(inv).__name__
        raise SceneError(f"depth_working.inverse must be an (N, h, w) float array, got {what}", field="depth_working")
    if inv.shape[0] != shape[0] or inv.shape[1] > shape[1] or inv.shape[2] > shape[2]:
        raise SceneError(
            f"depth_working.inverse {inv.shape} must have the depth's {shape[0]} frames at a size no larger "
            f"than {shape[1]}x{shape[2]} (rows x columns)",
            field="depth_working",
        )
    if not np.isfinite(inv).all() or (inv < 0).any():
        raise SceneError("depth_working.inverse must be finite and >= 0 (0 at infinity)", field="depth_working")
    if working.method not in UPSAMPLE_METHODS or not (math.isfinite(working.blend) and working.blend >= 0):
        raise SceneError(
            f"depth_working needs an upsampling among {UPSAMPLE_METHODS} and a blend >= 0, got "
            f"{working.method!r} and {working.blend!r}",
            field="depth_working",
        )


def _write_depth(
    folder: Path, depth: np.ndarray, fps: float, lossless: bool, log_step: float, working: WorkingDepth | None
) -> dict[str, Any]:
    n, h, w = depth.shape
    finite = np.isfinite(depth)
    if not finite.any():
        return {"encoding": "infinite"}
    first = float(depth.flat[0])
    if finite.all() and bool((depth == np.float32(first)).all()):
        return {"encoding": "constant", "value": first}
    options = {"level": "3", "slices": "4"}
    if lossless:
        bits = np.ascontiguousarray(depth, dtype=np.float32).view(np.uint32)
        planes = (np.concatenate([(b >> 16).astype(np.uint16), (b & 0xFFFF).astype(np.uint16)]) for b in bits)
        _write_video(folder / DEPTH_FILE, planes, fps, (w, 2 * h), "ffv1", "gray16le", "gray16le", options)
        return {"encoding": "f32-split", "file": DEPTH_FILE}
    record: dict[str, Any] = {}
    if working is not None and working.inverse.shape[1:] != (h, w) and bool((working.inverse > 0).any()):
        h, w = working.inverse.shape[1:]
        with np.errstate(divide="ignore"):
            depth = np.where(working.inverse > 0, 1.0 / working.inverse, np.inf).astype(np.float32)
        finite = np.isfinite(depth)
        record = {"size": [w, h], "upsample": working.method, "upsample_blend": working.blend}
    log_min, log_max = float(np.log(depth[finite].min())), float(np.log(depth[finite].max()))
    step = max(log_step, (log_max - log_min) / (_LOG_U16_MAX - 1) * (1 + 1e-9))
    codes = (log_u16_codes(d, log_min, step) for d in depth)
    _write_video(folder / DEPTH_FILE, codes, fps, (w, h), "ffv1", "gray16le", "gray16le", options)
    return {"encoding": "log-u16", "file": DEPTH_FILE, "log_min": log_min, "log_step": step, **record}


def log_u16_codes(depth: np.ndarray, log_min: float, log_step: float) -> np.ndarray:
    """uint16 "log-u16" codes of a depth map: 0 for +inf, 1 + round((ln d - log_min) / log_step) else."""
    codes = np.zeros(depth.shape, np.uint16)
    finite = np.isfinite(depth)
    q = np.rint((np.log(depth[finite].astype(np.float64)) - log_min) / log_step) + 1
    codes[finite] = np.clip(q, 1, _LOG_U16_MAX).astype(np.uint16)
    return codes


def _write_moving(folder: Path, moving: np.ndarray, fps: float) -> dict[str, Any]:
    n, h, w = moving.shape
    first = bool(moving.flat[0])
    if bool((moving == first).all()):
        return {"encoding": "constant", "value": first}
    masks = (m.astype(np.uint8) * np.uint8(255) for m in moving)
    _write_video(folder / MOVING_FILE, masks, fps, (w, h), "ffv1", "gray", "gray", {"level": "3", "slices": "4"})
    return {"encoding": "mask-video", "file": MOVING_FILE}


def _write_video(
    path: Path,
    images: Iterator[np.ndarray] | np.ndarray,
    fps: float,
    size: tuple[int, int],
    codec: str,
    pix_fmt: str,
    in_format: str,
    options: dict[str, str],
) -> None:
    """Encode `images` (each (H, W[, 3]) in `in_format`) as one video stream at `path`; bit-exact output (the
    same input gives the same bytes), flushed to disk."""
    import av

    container = av.open(str(path), mode="w", options={"fflags": "+bitexact"})
    try:
        rate = Fraction(fps).limit_denominator(1001) or Fraction(1, 1001)  # only playback speed depends on it
        stream: Any = container.add_stream(codec, rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        stream.options = {**options, "flags": "+bitexact"}
        for image in images:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=in_format)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    _fsync(path)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


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
