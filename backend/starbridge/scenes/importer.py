"""Import a video file as a scene bundle (docs/architecture.md §6), with PyAV.

Frames are decoded to RGB24 (sRGB), downscaled so the longest side is at most `max_side` (even sizes),
and kept at the stream's frame rate. Depth comes from one of:

- `depth_dir`: a folder of per-frame .npy depth maps (z-depth, any unit; sorted by file name; values that
  are not finite or not > 0 mean "no surface"), resized to the frame size (nearest neighbour);
- `depth_model`: a user-supplied monocular depth ONNX model in the Depth-Anything-V2 export convention
  (input NCHW float32 RGB normalised with ImageNet mean/std, spatial size a multiple of 14; output
  relative inverse depth (disparity), (N, H, W) or (N, 1, H, W)); each frame's disparity becomes depth
  1 / max(disp, eps), scaled so that frame's median is SCENE_MEDIAN_DEPTH_M, resized bilinearly;
- neither: a rotation-only scene: depth +inf everywhere (right for a tripod backdrop).

Camera poses: the motion of the video's camera is unknown, so every pose is the identity: the reference
camera is treated as fixed (a tripod shot). Recovering camera motion (structure from motion) is future work.

Any bad input (missing, empty, corrupt, truncated, unsupported file, bad depth) raises a SceneError that
names the file and the problem, and leaves no partial bundle (bundle.write_bundle writes atomically).
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import InvalidArgument, SceneError, SceneInUse
from ..geometry.camera import Intrinsics, check_fov
from .bundle import SCENE_MEDIAN_DEPTH_M, BundleExists, SceneBundle, SceneMeta, write_bundle
from .demo import DEMO_SCENE_ID

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]

#: Bounds of `max_side` (the longest side of stored frames), pixels.
MIN_SIDE = 16
MAX_IMPORT_SIDE = 8192
#: Defaults of `import_video` (and so of `starbridge scene import` and the ImportScene RPC).
DEFAULT_MAX_SIDE = 512
#: 0: every frame.
DEFAULT_MAX_FRAMES = 0
#: Vertical field of view assumed for the video's camera (videos do not say), degrees.
DEFAULT_FOV_DEG = 60.0
#: A stream that decodes to fewer than this fraction of the frames its container announces is truncated.
TRUNCATED_FRACTION = 0.9
#: Frame rate assumed when the stream does not say (logged).
FALLBACK_FPS = 30.0
#: Depth-Anything-V2 convention: ImageNet normalisation, sizes a multiple of the ViT patch, 518 on the short side.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEPTH_MODEL_PATCH = 14
DEPTH_MODEL_SHORT_SIDE = 518
#: Disparities below this fraction of a frame's largest are clamped (depth at most 1 / this times the nearest).
DISPARITY_EPS_REL = 1e-3


@dataclass(frozen=True)
class DecodedVideo:
    """frames (N, H, W, 3) uint8 sRGB, rows top to bottom; fps; whether `max_frames` cut the video short."""

    frames: np.ndarray
    fps: float
    limited: bool


class _Progress:
    """Reports (stage, done, total) to a callback, or as tqdm bars on stderr when there is none."""

    def __init__(self, callback: ProgressFn | None) -> None:
        self.callback = callback
        self._bar: tqdm | None = None
        self._stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.callback is not None:
            self.callback(stage, done, total)
            return
        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=total or None, desc=stage, unit="frame", file=sys.stderr, leave=False)
        if self._bar is not None:
            if total and self._bar.total != total:
                self._bar.total = total
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def import_video(
    store,
    video_path: Path | str,
    scene_id: str | None = None,
    depth_dir: Path | str | None = None,
    depth_model: Path | str | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    max_frames: int = DEFAULT_MAX_FRAMES,
    vertical_fov_deg: float = DEFAULT_FOV_DEG,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> SceneBundle:
    """Decode `video_path`, add depth, and write the scene into `store` (a SceneStore).

    scene_id: defaults to a slug of the file name. max_side: the longest side of the stored frames (never
    upscaled). max_frames: keep at most this many frames (0: all). vertical_fov_deg: the camera's vertical
    field of view (videos do not say). progress(stage, done, total): stages "decode", "depth", "write".
    """
    video_path = Path(video_path)
    _check_args(max_side, max_frames, vertical_fov_deg, depth_dir, depth_model)
    scene_id = scene_id or slug(video_path.stem)
    dest = store.path_of(scene_id)  # validates the id
    if scene_id == DEMO_SCENE_ID:
        raise SceneInUse(
            f"scene id {DEMO_SCENE_ID!r} belongs to the built-in demo scene; pick another", field="scene_id"
        )
    if store.exists(scene_id) and not overwrite:
        raise BundleExists(f"scene {scene_id!r} already exists in {store.root} (pass overwrite to replace it)")
    report = _Progress(progress)
    try:
        video = decode_video(video_path, max_side, max_frames, report)
        n, height, width = video.frames.shape[:3]
        if depth_dir is not None:
            depth = depth_from_files(Path(depth_dir), n, (height, width), video.limited, report)
            depth_source = "depth-files"
        elif depth_model is not None:
            depth = depth_from_model(Path(depth_model), video.frames, report)
            depth_source = f"depth-model:{Path(depth_model).name}"
        else:
            depth = np.full((n, height, width), np.inf, dtype=np.float32)
            depth_source = "none"
        meta = SceneMeta(
            scene_id=scene_id,
            title=video_path.stem,
            fps=video.fps,
            frame_count=n,
            intrinsics=Intrinsics.from_fov(vertical_fov_deg, width, height),
            source=f"video:{video_path.name}",
            depth_source=depth_source,
            rotation_only=depth_source == "none",
        )
        poses = np.repeat(np.eye(4)[None], n, axis=0)  # camera motion unknown: a fixed (tripod) camera
        report("write", 0, 1)
        bundle = write_bundle(dest, meta, video.frames, depth, poses, overwrite=overwrite)
        report("write", 1, 1)
    finally:
        report.close()
    log.info("imported %s as scene %r: %s", video_path.name, scene_id, bundle)
    return bundle


def slug(text: str) -> str:
    """A valid scene id made from `text`: lowercase, runs of other characters turned into '-'."""
    s = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:64].strip("-_")
    return s or "scene"


def _check_args(max_side: int, max_frames: int, fov: float, depth_dir, depth_model) -> None:
    if not MIN_SIDE <= max_side <= MAX_IMPORT_SIDE:
        raise InvalidArgument(
            f"max_side must be in [{MIN_SIDE}, {MAX_IMPORT_SIDE}] pixels, got {max_side}", field="max_side"
        )
    if max_frames < 0:
        raise InvalidArgument(f"max_frames must be >= 0 (0: all frames), got {max_frames}", field="max_frames")
    check_fov(fov)
    if depth_dir is not None and depth_model is not None:
        raise InvalidArgument("give depth_dir or depth_model, not both", field="depth_model")


# ---------------------------------------------------------------------------------------------- frames


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longest side is at most `max_side`, both even and >= 2."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def _open_video(path: Path):
    if not path.exists():
        raise SceneError(f"video file {path} does not exist", field="video_path")
    if not path.is_file():
        raise SceneError(f"video file {path} is not a file", field="video_path")
    if path.stat().st_size == 0:
        raise SceneError(f"video file {path.name}: file is empty", field="video_path")
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise SceneError(f"video file {path.name}: not a video FFmpeg can read ({exc})", field="video_path") from None
    except (OSError, ValueError) as exc:
        raise SceneError(f"video file {path.name}: cannot open: {exc}", field="video_path") from None


def decode_video(path: Path, max_side: int, max_frames: int, report: ProgressFn) -> DecodedVideo:
    """Decode the first video stream of `path` to RGB frames of at most `max_side` pixels on the long side."""
    container = _open_video(path)
    try:
        if not container.streams.video:
            raise SceneError(f"video file {path.name}: no video stream", field="video_path")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if not (math.isfinite(fps) and fps > 0):
            log.warning("%s does not state its frame rate; assuming %g fps", path.name, FALLBACK_FPS)
            fps = FALLBACK_FPS
        announced = int(stream.frames or 0)
        total = min(announced, max_frames) if max_frames else announced
        frames: list[np.ndarray] = []
        size: tuple[int, int] | None = None
        try:
            for frame in container.decode(stream):
                if size is None:
                    size = output_size(frame.width, frame.height, max_side)
                rgb = frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="AREA")
                frames.append(rgb.to_ndarray())
                report("decode", len(frames), total)
                if max_frames and len(frames) >= max_frames:
                    break
        except av.FFmpegError as exc:
            raise SceneError(
                f"video file {path.name}: could not decode frame {len(frames)}: {exc}", field="video_path"
            ) from None
    finally:
        container.close()
    limited = bool(max_frames) and len(frames) >= max_frames
    if not frames:
        raise SceneError(f"video file {path.name}: truncated or empty: decoded 0 frames", field="video_path")
    if not limited and announced and len(frames) < TRUNCATED_FRACTION * announced:
        raise SceneError(
            f"video file {path.name}: truncated: decoded {len(frames)} of the {announced} frames it announces",
            field="video_path",
        )
    return DecodedVideo(np.stack(frames), fps, limited)


# ---------------------------------------------------------------------------------------------- depth


def resize_nearest(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) nearest-neighbour resize of a 2D map to size (height, width), by pixel centres."""
    h, w = depth.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.intp), w - 1)
    return depth[rows[:, None], cols[None, :]]


def resize_bilinear(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 bilinear resize of a 2D map of finite values to size (height, width)."""
    img = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))  # 2D float32: mode "F"
    return np.asarray(img.resize((size[1], size[0]), Image.Resampling.BILINEAR), dtype=np.float32)


def depth_from_files(folder: Path, count: int, size: tuple[int, int], limited: bool, report: ProgressFn) -> np.ndarray:
    """(count, H, W) float32 depth from the .npy files of `folder`, sorted by name. Values that are not
    finite or not > 0 become +inf (no surface). With `limited` (max_frames cut the video), extra files
    past `count` are ignored; otherwise the number of files must equal `count`."""
    if not folder.is_dir():
        raise SceneError(f"depth folder {folder} does not exist or is not a folder", field="depth_dir")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".npy" and p.is_file())
    if len(files) != count and not (limited and len(files) > count):
        raise SceneError(
            f"depth folder {folder} has {len(files)} .npy file(s) but the video has {count} frame(s) kept; "
            "give one depth map per frame",
            field="depth_dir",
        )
    out = np.empty((count, *size), dtype=np.float32)
    for i, path in enumerate(files[:count]):
        out[i] = resize_nearest(_load_depth_file(path), size)
        report("depth", i + 1, count)
    return out


def _load_depth_file(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SceneError(f"depth file {path.name}: not a readable .npy array: {exc}", field="depth_dir") from None
    arr = np.squeeze(arr)
    if arr.ndim != 2 or arr.dtype.kind not in "fiu" or min(arr.shape) < 1:
        raise SceneError(
            f"depth file {path.name}: expected a 2D numeric depth map (H, W), got {arr.dtype} {arr.shape}",
            field="depth_dir",
        )
    depth = arr.astype(np.float32)
    depth[~(np.isfinite(depth) & (depth > 0))] = np.inf
    return depth


@dataclass(frozen=True)
class _DepthModel:
    """A loaded depth ONNX model and the input size it runs at, (height, width)."""

    session: object
    input_name: str
    size: tuple[int, int]


def _load_depth_model(path: Path, frame_size: tuple[int, int]) -> _DepthModel:
    import onnxruntime as ort

    if not path.is_file():
        raise SceneError(f"depth model {path} does not exist or is not a file", field="depth_model")
    try:
        # CPU here; choosing the execution provider (CUDA when it really loads) is the runtime module's job.
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad model
        raise SceneError(f"depth model {path.name}: cannot load it: {exc}", field="depth_model") from None
    inp = session.get_inputs()[0]
    shape = list(inp.shape)
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise SceneError(
            f"depth model {path.name}: input {inp.name!r} must be NCHW with 3 channels, got shape {shape}",
            field="depth_model",
        )
    if isinstance(shape[2], int) and isinstance(shape[3], int) and shape[2] > 0 and shape[3] > 0:
        size = (shape[2], shape[3])
    else:
        size = dynamic_model_size(frame_size)
    return _DepthModel(session, inp.name, size)


def dynamic_model_size(frame_size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) for a model with a dynamic input: DEPTH_MODEL_SHORT_SIDE on the short side, the
    aspect kept, both rounded to a multiple of DEPTH_MODEL_PATCH."""
    h, w = frame_size
    scale = DEPTH_MODEL_SHORT_SIDE / min(h, w)

    def snap(x: float) -> int:
        return max(DEPTH_MODEL_PATCH, DEPTH_MODEL_PATCH * round(x / DEPTH_MODEL_PATCH))

    return snap(h * scale), snap(w * scale)


def model_input(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(1, 3, h, w) float32 ImageNet-normalised input from an (H, W, 3) uint8 frame, bicubic resize."""
    img = Image.fromarray(frame).resize((size[1], size[0]), Image.Resampling.BICUBIC)
    rgb = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    x = (rgb - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def disparity_to_depth(disparity: np.ndarray) -> np.ndarray:
    """Relative disparity (H, W) -> float32 depth 1 / max(disp, eps), scaled to median SCENE_MEDIAN_DEPTH_M.

    eps is DISPARITY_EPS_REL times the largest disparity, so the farthest depth is bounded (DA-V2's sky)."""
    disp = np.nan_to_num(np.asarray(disparity, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    eps = max(float(disp.max()) * DISPARITY_EPS_REL, 1e-12)
    depth = 1.0 / np.maximum(disp, eps)
    return (depth * (SCENE_MEDIAN_DEPTH_M / float(np.median(depth)))).astype(np.float32)


def depth_from_model(path: Path, frames: np.ndarray, report: ProgressFn) -> np.ndarray:
    """(N, H, W) float32 depth of every frame from a Depth-Anything-V2-style ONNX model at `path`.

    Each frame is normalised on its own (the model's disparity has an unknown scale per frame)."""
    n, height, width = frames.shape[:3]
    model = _load_depth_model(path, (height, width))
    out = np.empty((n, height, width), dtype=np.float32)
    for i in range(n):
        try:
            result = model.session.run(None, {model.input_name: model_input(frames[i], model.size)})[0]  # type: ignore[attr-defined]
        except Exception as exc:  # onnxruntime's own exception types
            raise SceneError(f"depth model {path.name}: failed on frame {i}: {exc}", field="depth_model") from None
        disp = np.asarray(result)
        if disp.ndim == 4 and disp.shape[:2] == (1, 1):
            disp = disp[0, 0]
        elif disp.ndim == 3 and disp.shape[0] == 1:
            disp = disp[0]
        else:
            raise SceneError(
                f"depth model {path.name}: output must be (1, H, W) or (1, 1, H, W), got {disp.shape}",
                field="depth_model",
            )
        out[i] = disparity_to_depth(resize_bilinear(disp, (height, width)))
        report("depth", i + 1, n)
    return out
