"""Depth the user brings: a folder of per-frame depth files or a monocular depth ONNX model, loaded and
validated *before* the video is decoded, so a bad depth source fails at once, naming the file and what is
wrong, and no partial scene is ever written.

Order of use (what `scene import --depth-dir / --depth-model` does)::

    header = probe_video(video)                                   # the header and the first frame
    folder = check_depth_dir(depth_dir, header.size, header.frame_count, allow_extra=max_frames > 0)  # ms
    depth = load_depth_dir(folder, stored_size)                    # every value checked, resized
    ... decode the video (n frames kept) ...
    check_frame_count(folder, n, limited)                          # the exact count, once it is known

    model = load_depth_model(path)                                 # before decoding: it loads, NCHW, float
    ... decode ...
    depth = run_depth_model(model, frames)                         # per frame; each output checked

Depth files (`DEPTH_SUFFIXES`):

* ``.npy``: one 2D numeric array per frame, (H, W) (singleton axes such as (1, H, W) are dropped), dtype
  float16/32/64 or integers of 16 bits or more; read with ``np.load(allow_pickle=False)`` only: object arrays
  (pickles) are refused, never loaded. ``.npz`` archives are refused (one array per file).
* ``.png``: 16-bit greyscale PNG (integer depth in any unit, e.g. millimetres). 8-bit PNGs are refused: they
  are images or visualisations, not depth. (EXR is not read: it would need a non-serving dependency.)

Files are matched to frames in natural order of their names ("f2" before "f10"); one kind per folder;
hidden files, sub-folders and other suffixes are ignored. Values: z-depth in any unit (the scene is
rescaled); ``0`` (the usual "no measurement") and ``+inf`` (sky) mean no surface and are stored as +inf;
NaN, -inf and negative values are refused, as is a map with no finite depth > 0 (e.g. all zero).

Accepted sizes: every map has the same size, with the aspect ratio of the video's frames within
ASPECT_TOLERANCE (2 %): the video's own size, the stored size after ``--max-side``, or any uniform scale of
them, such as a model's output rounded to its patch size. Maps are resized to the stored frame size by
nearest neighbour (no depth is invented between a foreground edge and the sky). A transposed (W, H) map is
refused with a hint.

The depth model follows the Depth-Anything-V2 export convention: input NCHW float32 RGB normalised with
ImageNet mean/std (a fixed size, or dynamic: DEPTH_MODEL_SHORT_SIDE on the short side, multiples of
DEPTH_MODEL_PATCH); output relative inverse depth (disparity), (1, H, W) or (1, 1, H, W). Each frame's
disparity becomes depth 1 / max(disp, eps), scaled so that frame's median is SCENE_MEDIAN_DEPTH_M, resized
bilinearly. Aligning either kind of user depth to the tracked cameras' scale is `capture.depth_align.align_depth`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ...errors import SceneError
from ..bundle import SCENE_MEDIAN_DEPTH_M, npy_header
from ..video_meta import orientation_of, square_size

ProgressFn = Callable[[str, int, int], None]

#: Depth file kinds read from a depth folder (lower-case suffixes).
DEPTH_SUFFIXES = (".npy", ".png")
#: How far a depth map's aspect ratio (width / height) may be from the video's, relative.
ASPECT_TOLERANCE = 0.02
#: dtype kinds of .npy depth accepted: floats, signed and unsigned integers (of at least 16 bits).
NPY_KINDS = "fiu"
#: PIL modes of a 16-bit (or 32-bit integer) greyscale PNG.
PNG_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I")
#: Depth-Anything-V2 convention: ImageNet normalisation, sizes a multiple of the ViT patch, 518 on the short side.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEPTH_MODEL_PATCH = 14
DEPTH_MODEL_SHORT_SIDE = 518
#: Disparities below this fraction of a frame's largest are clamped (depth at most 1 / this times the nearest).
DISPARITY_EPS_REL = 1e-3


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


# ---------------------------------------------------------------------------------------------- the video


@dataclass(frozen=True)
class VideoHeader:
    """What a video's container says about its first video stream (with its sample aspect ratio and its first
    frame's display matrix: the size is the upright, square-pixel picture's, as decode_video gives it)."""

    width: int
    height: int
    #: Frames the container announces; 0 when it does not say (e.g. Matroska).
    frame_count: int
    fps: float

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the decoded frames."""
        return self.width, self.height


def probe_video(path: Path | str) -> VideoHeader:
    """Read the header of `path`'s first video stream (milliseconds); SceneError naming the file otherwise."""
    import av

    path = Path(path)
    if not path.is_file():
        raise SceneError(f"video file {path} does not exist or is not a file", field="video_path")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise SceneError(f"video file {path.name}: not a video FFmpeg can read ({exc})", field="video_path") from None
    try:
        if not container.streams.video:
            raise SceneError(f"video file {path.name}: no video stream", field="video_path")
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        count = int(stream.frames or 0)
        (width, height), _ = square_size(
            width, height, stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
        )
        width, height = _upright_size(container, stream, width, height)
    finally:
        container.close()
    if width < 1 or height < 1:
        raise SceneError(f"video file {path.name}: the header gives no frame size", field="video_path")
    return VideoHeader(width, height, count, fps if math.isfinite(fps) and fps > 0 else 0.0)


def _upright_size(container, stream, width: int, height: int) -> tuple[int, int]:
    """(width, height) once the first frame's display matrix is applied (a portrait phone clip is stored
    landscape); the header's when the first frame does not decode (decode_video reports that)."""
    import av
    from av.sidedata.sidedata import Type

    try:
        frame = next(container.decode(stream), None)
    except (av.FFmpegError, OSError, ValueError):
        return width, height
    matrix = frame.side_data.get(Type.DISPLAYMATRIX) if frame is not None else None
    return orientation_of(bytes(matrix) if matrix is not None else None)[0].size(width, height)


# ---------------------------------------------------------------------------------------------- depth files


@dataclass(frozen=True)
class DepthFile:
    """One depth file, as its header describes it."""

    path: Path
    #: (height, width) of the map.
    shape: tuple[int, int]
    dtype: str


@dataclass(frozen=True)
class DepthFolder:
    """A checked depth folder: its depth files in frame order, all of one size."""

    folder: Path
    files: tuple[DepthFile, ...]

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of every map."""
        return self.files[0].shape

    def __len__(self) -> int:
        return len(self.files)


def _fail(message: str) -> SceneError:
    return SceneError(message, field="depth_dir")


def natural_key(name: str) -> tuple:
    """Sort key putting "f2" before "f10": runs of digits compare as numbers."""
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name))


def check_depth_dir(
    folder: Path | str,
    video_size: tuple[int, int],
    frame_count: int = 0,
    *,
    allow_extra: bool = False,
) -> DepthFolder:
    """Check a depth folder from file headers alone (milliseconds, before any decoding).

    video_size: (width, height) of the video's frames (`probe_video`). frame_count: the frames the video
    has (0: not known yet; check it with `check_frame_count` after decoding). allow_extra: more files than
    frames are fine (max_frames cut the video short). Raises SceneError naming the folder or file and the
    problem: not a folder, no depth files, mixed kinds, not an array, a pickle, wrong dtype, wrong or
    differing size, truncated, missing frames.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise _fail(f"depth folder {folder} does not exist or is not a folder")
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]
    except OSError as exc:
        raise _fail(f"depth folder {folder}: cannot list it: {exc}") from None
    by_kind: dict[str, list[Path]] = {}
    for p in entries:
        by_kind.setdefault(p.suffix.lower(), []).append(p)
    kinds = [s for s in DEPTH_SUFFIXES if s in by_kind]
    if not kinds:
        found = ", ".join(f"{len(v)} {k or '(no suffix)'}" for k, v in sorted(by_kind.items())) or "nothing"
        hint = " (.npz archives hold several arrays: save one .npy per frame)" if ".npz" in by_kind else ""
        raise _fail(
            f"depth folder {folder} has no depth files (one .npy or 16-bit .png per frame); found {found}{hint}"
        )
    if len(kinds) > 1:
        raise _fail(
            f"depth folder {folder} mixes {' and '.join(kinds)} files "
            f"({', '.join(str(len(by_kind[k])) for k in kinds)}); use one kind"
        )
    paths = sorted(by_kind[kinds[0]], key=lambda p: natural_key(p.name))
    _check_numbering(folder, paths)
    files = tuple(_inspect_file(p) for p in paths)
    result = DepthFolder(folder, files)
    first = files[0]
    for f in files[1:]:
        if f.shape != first.shape:
            raise _fail(
                f"depth file {f.path.name}: {f.shape[1]}x{f.shape[0]}, but {first.path.name} is "
                f"{first.shape[1]}x{first.shape[0]}; every depth map must have the same size"
            )
    _check_aspect(first, video_size)
    if frame_count:
        check_frame_count(result, frame_count, allow_extra)
    return result


def check_frame_count(depth: DepthFolder, frame_count: int, allow_extra: bool = False) -> None:
    """SceneError unless the folder has a depth file per frame (at least one per frame with `allow_extra`),
    naming the missing frame numbers when the file names are numbered."""
    have = len(depth.files)
    if have == frame_count or (allow_extra and have > frame_count):
        return
    kind = depth.files[0].path.suffix.lower()
    if have > frame_count:
        raise _fail(
            f"depth folder {depth.folder} has {have} {kind} files but the video has {frame_count} frame(s): "
            f"{have - frame_count} too many (the first extra one is {depth.files[frame_count].path.name}); "
            "give one depth map per frame"
        )
    detail = _missing_numbers([f.path for f in depth.files], frame_count)
    raise _fail(
        f"depth folder {depth.folder} has {have} {kind} file(s) but the video has {frame_count} frame(s): "
        f"{frame_count - have} missing{detail}; give one depth map per frame"
    )


def _numbered(paths: list[Path]) -> list[tuple[str, int, str]] | None:
    """(prefix, number, suffix) per file when every name is prefix + number + suffix with one prefix."""
    parts = []
    for p in paths:
        m = re.fullmatch(r"(.*?)(\d+)(\D*)", p.stem)
        if m is None:
            return None
        parts.append((m.group(1), int(m.group(2)), m.group(3)))
    if len({(a, c) for a, _, c in parts}) != 1:
        return None
    return parts


def _check_numbering(folder: Path, paths: list[Path]) -> None:
    parts = _numbered(paths)
    if parts is None:
        return
    seen: dict[int, Path] = {}
    for (_, number, _), p in zip(parts, paths, strict=True):
        if number in seen:
            raise _fail(f"depth folder {folder}: {seen[number].name} and {p.name} are both frame {number}")
        seen[number] = p


def _missing_numbers(paths: list[Path], frame_count: int) -> str:
    """The detail naming missing frame numbers (" (frame numbers 17, 203 have no file, ...)"), or ""."""
    parts = _numbered(paths)
    if not parts:
        return ""
    numbers = sorted(n for _, n, _ in parts)
    start = numbers[0]  # frames are numbered from the first file's number (0, 1 or any other)
    expected = range(start, start + frame_count)
    missing = sorted(set(expected) - set(numbers))
    if not missing:
        return ""
    shown = ", ".join(str(n) for n in missing[:8]) + (", ..." if len(missing) > 8 else "")
    return f" (frame numbers {shown} have no file, counting from {start})"


def _inspect_file(path: Path) -> DepthFile:
    """Header checks of one depth file: readable, a 2D numeric map (after dropping singleton axes), the
    right dtype, not truncated."""
    if path.suffix.lower() == ".png":
        return _inspect_png(path)
    try:
        with open(path, "rb") as f:
            shape, _fortran, dtype = npy_header(f)
            data_start = f.tell()
        size = path.stat().st_size
    except (OSError, ValueError) as exc:
        raise _fail(f"depth file {path.name}: not a .npy array ({exc})") from None
    if dtype.hasobject:
        raise _fail(
            f"depth file {path.name}: holds Python objects (a pickle), which are never loaded; "
            "save a numeric array (np.save of a float32 depth map)"
        )
    _check_dtype(path, dtype)
    need = data_start + int(np.prod(shape)) * dtype.itemsize
    if size < need:
        raise _fail(f"depth file {path.name}: truncated ({size} of {need} bytes)")
    return DepthFile(path, _map_shape(path, tuple(shape), dtype), dtype.name)


def _check_dtype(path: Path, dtype: np.dtype) -> None:
    if dtype.kind not in NPY_KINDS or dtype.fields is not None:
        raise _fail(
            f"depth file {path.name}: dtype {dtype} is not a depth dtype (floats, or integers of 16 bits or more)"
        )
    if dtype.kind in "iu" and dtype.itemsize < 2:
        raise _fail(
            f"depth file {path.name}: 8-bit values ({dtype}) look like an image, not depth; save the depth itself "
            "(float, or integers of 16 bits or more)"
        )


def _map_shape(path: Path, shape: tuple[int, ...], dtype: Any) -> tuple[int, int]:
    """(H, W) of an array of `shape`: 2D, or 2D once singleton axes are dropped; never empty."""
    if 0 in shape:
        raise _fail(f"depth file {path.name}: an empty array {shape}")
    if len(shape) == 2:
        return (int(shape[0]), int(shape[1]))
    squeezed = tuple(s for s in shape if s != 1)
    if len(squeezed) != 2:
        raise _fail(f"depth file {path.name}: expected a 2D numeric depth map (H, W), got {dtype} {shape}")
    return (int(squeezed[0]), int(squeezed[1]))


def _inspect_png(path: Path) -> DepthFile:
    try:
        with Image.open(path) as img:
            fmt, mode, (w, h) = img.format, img.mode, img.size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise _fail(f"depth file {path.name}: not a readable PNG ({exc})") from None
    if fmt != "PNG":
        raise _fail(f"depth file {path.name}: a {fmt} image named .png; save 16-bit greyscale PNGs")
    if mode not in PNG_DEPTH_MODES:
        raise _fail(
            f"depth file {path.name}: a PNG of mode {mode} (8-bit or colour) looks like an image or a "
            "visualisation, not depth; save 16-bit greyscale PNGs (or .npy)"
        )
    return DepthFile(path, (h, w), "uint16" if mode.startswith("I;16") else "int32")


def _check_aspect(first: DepthFile, video_size: tuple[int, int]) -> None:
    vw, vh = video_size
    h, w = first.shape
    want, got = vw / vh, w / h
    if abs(got - want) <= ASPECT_TOLERANCE * want:
        return
    hint = ""
    if abs(h / w - want) <= ASPECT_TOLERANCE * want:
        hint = " (it looks transposed: save (height, width) arrays)"
    raise _fail(
        f"depth file {first.path.name}: {w}x{h} (aspect {got:.3f}) does not match the video's {vw}x{vh} "
        f"(aspect {want:.3f}){hint}; depth maps must have the frames' aspect ratio (within "
        f"{ASPECT_TOLERANCE:.0%}): the video's size, the imported size, or a uniform scale of them"
    )


def read_depth_file(file: DepthFile) -> np.ndarray:
    """(H, W) float32 depth of one file, values checked (see `check_depth_values`): +inf for no surface."""
    path = file.path
    try:
        if path.suffix.lower() == ".png":
            with Image.open(path) as img:
                img.load()
                raw = np.asarray(img)
        else:
            raw = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise _fail(f"depth file {path.name}: cannot read it: {exc}") from None
    if not isinstance(raw, np.ndarray):  # an .npz: np.load gives an archive
        raise _fail(f"depth file {path.name}: not a single .npy array")
    raw = raw.reshape(file.shape) if raw.shape != file.shape else raw
    return check_depth_values(raw, path.name)


def check_depth_values(depth: np.ndarray, name: str) -> np.ndarray:
    """(H, W) float32 of a user depth map, with 0 and +inf (no surface) as +inf; SceneError naming `name`
    for NaN, -inf, negative values, or no finite depth > 0 at all."""
    values = np.asarray(depth)
    if values.dtype.kind == "f":
        nan = np.isnan(values)
        if nan.any():
            r, c = np.argwhere(nan)[0]
            raise _fail(f"depth file {name}: {int(nan.sum())} NaN value(s), the first at row {r}, column {c}")
        neginf = np.isneginf(values)
        if neginf.any():
            raise _fail(f"depth file {name}: {int(neginf.sum())} -inf value(s); use +inf (or 0) for no surface")
    negative = values < 0
    if negative.any():
        r, c = np.argwhere(negative)[0]
        raise _fail(
            f"depth file {name}: {int(negative.sum())} negative value(s) (min {values.min()}), the first at "
            f"row {r}, column {c}; depth is a distance along the camera's axis, >= 0"
        )
    out = values.astype(np.float32)
    surface = np.isfinite(out) & (out > 0)
    if not surface.any():
        what = "all zero" if not values.any() else "no finite depth > 0 (only 0 and +inf)"
        raise _fail(f"depth file {name}: {what}; is it the right file?")
    out[~surface] = np.inf
    return out


def load_depth_dir(
    depth: DepthFolder, size: tuple[int, int], count: int = 0, progress: ProgressFn | None = None
) -> np.ndarray:
    """(count or all, H, W) float32 depth of the checked folder's files, every value checked, resized to
    `size` (height, width) by nearest neighbour; progress("depth", done, total)."""
    report = progress or _no_progress
    files = depth.files[:count] if count else depth.files
    out = np.empty((len(files), *size), dtype=np.float32)
    for i, file in enumerate(files):
        out[i] = resize_nearest(read_depth_file(file), size)
        report("depth", i + 1, len(files))
    return out


def resize_nearest(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) nearest-neighbour resize of a 2D map to size (height, width), by pixel centres."""
    h, w = depth.shape
    if (h, w) == tuple(size):
        return depth
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.intp), w - 1)
    return depth[rows[:, None], cols[None, :]]


# ---------------------------------------------------------------------------------------------- depth model


@dataclass(frozen=True)
class DepthModel:
    """A loaded, checked depth ONNX model."""

    path: Path
    session: Any
    input_name: str
    #: (height, width) of a fixed input, or None for a dynamic one (see `model_size`).
    fixed_size: tuple[int, int] | None

    def size_for(self, frame_size: tuple[int, int]) -> tuple[int, int]:
        """(height, width) the model runs at for frames of `frame_size` (height, width)."""
        return self.fixed_size or dynamic_model_size(frame_size)


def _model_fail(path: Path, message: str) -> SceneError:
    return SceneError(f"depth model {path.name}: {message}", field="depth_model")


def load_depth_model(path: Path | str) -> DepthModel:
    """Load and check a Depth-Anything-V2-style ONNX model (before decoding): it exists, ONNX Runtime loads
    it, one NCHW float input with 3 channels, an output of rank 3 or 4. SceneError naming it otherwise."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise SceneError(f"depth model {path} does not exist or is not a file", field="depth_model")
    try:
        # CPU here; choosing the execution provider (CUDA when it really loads) is the runtime module's job.
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad model
        raise _model_fail(path, f"cannot load it: {exc}") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise _model_fail(path, f"expected one input (an NCHW image), got {len(inputs)}: {[i.name for i in inputs]}")
    inp = inputs[0]
    shape = list(inp.shape)
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise _model_fail(path, f"input {inp.name!r} must be NCHW with 3 channels, got shape {shape}")
    if inp.type != "tensor(float)":
        raise _model_fail(path, f"input {inp.name!r} must be float32 (tensor(float)), got {inp.type}")
    out_rank = len(outputs[0].shape) if outputs and outputs[0].shape is not None else 0
    if out_rank not in (3, 4):
        raise _model_fail(path, f"output must be (1, H, W) or (1, 1, H, W) disparity, declared {outputs[0].shape}")
    fixed = None
    if isinstance(shape[2], int) and isinstance(shape[3], int) and shape[2] > 0 and shape[3] > 0:
        fixed = (shape[2], shape[3])
    return DepthModel(path, session, inp.name, fixed)


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
    img = Image.fromarray(np.ascontiguousarray(frame)).resize((size[1], size[0]), Image.Resampling.BICUBIC)
    rgb = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    x = (rgb - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def resize_bilinear(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 bilinear resize of a 2D map of finite values to size (height, width)."""
    img = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))  # 2D float32: mode "F"
    return np.asarray(img.resize((size[1], size[0]), Image.Resampling.BILINEAR), dtype=np.float32)


def disparity_to_depth(disparity: np.ndarray) -> np.ndarray:
    """Relative disparity (H, W) -> float32 depth 1 / max(disp, eps), scaled to median SCENE_MEDIAN_DEPTH_M.

    eps is DISPARITY_EPS_REL times the largest disparity, so the farthest depth is bounded (DA-V2's sky)."""
    disp = np.asarray(disparity, dtype=np.float64)
    eps = max(float(disp.max()) * DISPARITY_EPS_REL, 1e-12)
    depth = 1.0 / np.maximum(disp, eps)
    return (depth * (SCENE_MEDIAN_DEPTH_M / float(np.median(depth)))).astype(np.float32)


def run_depth_model(model: DepthModel, frames: np.ndarray, progress: ProgressFn | None = None) -> np.ndarray:
    """(N, H, W) float32 depth of every (H, W, 3) uint8 frame; each frame normalised on its own (the model's
    disparity has an unknown scale per frame). SceneError naming the model and frame for an output of the
    wrong shape, with NaN or infinite values, or with no positive disparity."""
    report = progress or _no_progress
    n, height, width = frames.shape[:3]
    size = model.size_for((height, width))
    out = np.empty((n, height, width), dtype=np.float32)
    for i in range(n):
        try:
            result = model.session.run(None, {model.input_name: model_input(frames[i], size)})[0]
        except Exception as exc:  # onnxruntime's own exception types
            raise _model_fail(model.path, f"failed on frame {i}: {exc}") from None
        disp = np.asarray(result)
        if disp.ndim == 4 and disp.shape[:2] == (1, 1):
            disp = disp[0, 0]
        elif disp.ndim == 3 and disp.shape[0] == 1:
            disp = disp[0]
        else:
            raise _model_fail(model.path, f"output must be (1, H, W) or (1, 1, H, W), got {disp.shape}")
        if not np.isfinite(disp).all():
            bad = int((~np.isfinite(disp)).sum())
            raise _model_fail(model.path, f"output for frame {i} has {bad} NaN or infinite value(s)")
        if not (disp > 0).any():
            raise _model_fail(model.path, f"output for frame {i} has no positive disparity (all <= 0)")
        out[i] = disparity_to_depth(resize_bilinear(disp, (height, width)))
        report("depth", i + 1, n)
    return out
