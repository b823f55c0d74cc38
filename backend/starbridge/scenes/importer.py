"""Import a video file as a scene bundle (docs/architecture.md §6): decode, capture, write.

1. **Check** the arguments and any depth the user brings (`--depth-dir` files or a `--depth-model` ONNX file,
   capture/user_depth.py) before decoding anything, so bad input fails in milliseconds.
2. **Decode** with PyAV (scenes/video.py): RGB frames, the longest side at most `max_side`, upright, square
   pixels, SDR (video_meta.py, video_colour.py); black bars baked into the picture cropped (borders.py).
3. **Capture** (capture/pipeline.py): shots, camera tracking, depth (the user's, aligned to the tracked
   scale, or multi-view stereo), moving-object masks, and a report of how the scene was made.
4. **Write** the bundle (bundle.py: compact, atomic), scaled so the median depth is the scene convention's;
   multi-view stereo's depth is stored at its working size (loading redoes the colour-guided upsampling).

`import_video` writes one scene (of a clip with several shots, the longest or the one `shot` names);
`import_shots` writes each shot as a scene of its own, the video decoded once.

Any bad input (missing, empty, corrupt, truncated, unsupported file, bad depth) raises a SceneError that
names the file and the problem, and leaves no partial bundle. A clip that cannot be tracked still imports,
as rotation-only, and its report says why.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import InvalidArgument, SceneInUse, StarBridgeError
from ..geometry.camera import check_equivalent_focal, check_fov, fov_of_equivalent_focal
from .borders import Borders, find_borders
from .bundle import SCENE_ID_MAX, BundleExists, SceneBundle, SceneMeta, write_bundle
from .capture.pipeline import CaptureConfig, UserDepth, capture_video, find_clip_shots
from .capture.user_depth import (
    check_depth_dir,
    check_frame_count,
    load_depth_dir,
    load_depth_model,
    probe_video,
    run_depth_model,
)
from .demo import DEMO_SCENE_ID
from .video import DecodedVideo, decode_video, output_size

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]

#: Bounds of `max_side` (the longest side of stored frames), pixels.
MIN_SIDE = 16
MAX_IMPORT_SIDE = 8192
#: Defaults of `import_video` (and so of `starbridge scene import` and the ImportScene RPC).
DEFAULT_MAX_SIDE = 512
#: 0: every frame.
DEFAULT_MAX_FRAMES = 0
#: None: the vertical field of view is estimated by the camera tracking (most videos do not say; the lens an
#: Apple device names in the file's metadata is the estimate's prior, video_meta.py).
DEFAULT_FOV_DEG: float | None = None


class _Progress:
    """Reports (stage, done, total) to a callback, or as tqdm bars on stderr when there is none."""

    def __init__(self, callback: ProgressFn | None) -> None:
        self.callback = callback
        self._bar: tqdm | None = None
        self._stage = ""
        #: Put before each bar's stage name ("shot 2/5 ": import_shots); not passed to a callback.
        self.prefix = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.callback is not None:
            self.callback(stage, done, total)
            return
        if self.prefix + stage != self._stage:
            self.close()
            self._stage = self.prefix + stage
            self._bar = tqdm(total=total or None, desc=self._stage, unit="frame", file=sys.stderr, leave=False)
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
    vertical_fov_deg: float | None = DEFAULT_FOV_DEG,
    lens_mm: float | None = None,
    shot: int | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    capture: CaptureConfig = CaptureConfig(),  # noqa: B008 (frozen)
) -> SceneBundle:
    """Decode `video_path`, capture its 4D world, and write the scene into `store` (a SceneStore).

    scene_id: defaults to a slug of the file name. max_side: the longest side of the stored frames (never
    upscaled). max_frames: keep at most this many frames (0: all). vertical_fov_deg: the camera's vertical
    field of view when known (None: estimated). lens_mm: instead, the 35 mm-equivalent focal length of the lens
    when known (a phone's spec sheet or a photo's EXIF: 26 for most main cameras); the field of view is that
    lens's over the clip's frame (given neither, a lens the file's own metadata names is the estimate's prior).
    shot: of a clip with several shots, the one to import, counted from 1 (None: the longest; `import_shots`
    imports each). Frames are stood upright by the file's display matrix (a portrait phone clip), and black
    bars baked into the picture are cropped (borders.py: the field of view, given or estimated, is the
    picture's inside them).
    progress(stage, done, total): stages "decode", the capture's ("shots", "track-*", "depth", "moving",
    "moving-depth", "regions", "planes", "ground-fill"), "write".
    """
    video_path = Path(video_path)
    _check_args(max_side, max_frames, vertical_fov_deg, depth_dir, depth_model, lens_mm, shot)
    scene_id = scene_id or slug(video_path.stem)
    dest = _free_target(store, scene_id, overwrite)
    report = _Progress(progress)
    try:
        clip = _read(video_path, depth_dir, depth_model, max_side, max_frames, vertical_fov_deg, lens_mm, report)
        bundle = _capture_and_write(clip, dest, scene_id, shot, overwrite, report, capture)
    finally:
        report.close()
    log.info("imported %s as scene %r: %s", video_path.name, scene_id, bundle)
    return bundle


def import_shots(
    store,
    video_path: Path | str,
    scene_id: str | None = None,
    depth_dir: Path | str | None = None,
    depth_model: Path | str | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    max_frames: int = DEFAULT_MAX_FRAMES,
    vertical_fov_deg: float | None = DEFAULT_FOV_DEG,
    lens_mm: float | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    capture: CaptureConfig = CaptureConfig(),  # noqa: B008 (frozen)
    guard: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> list[SceneBundle]:
    """Every shot of `video_path` as a scene of its own, `<scene_id>-1`, `<scene_id>-2`, ... in the clip's order
    (the options as `import_video`'s; the video is decoded once). The ids are checked before any shot is
    captured: with one of them taken and no `overwrite`, nothing is written. Each scene is written atomically
    as its shot is done; a shot that fails stops the import with an error that says which shots were
    imported. `guard(scene_id)`: a context held while that scene is replaced (the store's lock). The progress
    stages are `import_video`'s; the bars on stderr name the shot."""
    video_path = Path(video_path)
    _check_args(max_side, max_frames, vertical_fov_deg, depth_dir, depth_model, lens_mm)
    base = (scene_id or slug(video_path.stem))[: SCENE_ID_MAX - 4].rstrip("-_") or "scene"
    store.path_of(base)  # validates the id before anything is decoded
    report = _Progress(progress)
    done: list[SceneBundle] = []
    try:
        clip = _read(video_path, depth_dir, depth_model, max_side, max_frames, vertical_fov_deg, lens_mm, report)
        shots = find_clip_shots(clip.frames).shots
        ids = [f"{base}-{k}" for k in range(1, len(shots) + 1)]
        targets = [_free_target(store, i, overwrite) for i in ids]
        for k, (target_id, dest) in enumerate(zip(ids, targets, strict=True), start=1):
            report.prefix = f"shot {k}/{len(shots)} "
            try:
                with guard(target_id) if guard is not None and overwrite else nullcontext():
                    done.append(_capture_and_write(clip, dest, target_id, k, overwrite, report, capture))
            except StarBridgeError as exc:
                kept = f"; imported before it: {', '.join(b.meta.scene_id for b in done)}" if done else ""
                first, end = shots[k - 1]
                raise type(exc)(
                    f"shot {k} of {len(shots)} (frames {first}-{end - 1}): {exc.message}{kept}", field=exc.field
                ) from exc
            log.info("imported shot %d of %d of %s as scene %r", k, len(shots), video_path.name, target_id)
    finally:
        report.close()
    return done


@dataclass(frozen=True)
class _Clip:
    """A decoded clip ready for the capture: its frames inside any black bars, and what came with them."""

    path: Path
    video: DecodedVideo
    frames: np.ndarray
    borders: Borders
    vertical_fov_deg: float | None
    lens_mm: float | None
    user: UserDepth | None


def _read(
    video_path: Path,
    depth_dir: Path | str | None,
    depth_model: Path | str | None,
    max_side: int,
    max_frames: int,
    vertical_fov_deg: float | None,
    lens_mm: float | None,
    report: _Progress,
) -> _Clip:
    """Steps 1 and 2 of the module docstring: the user's depth checked before the video is decoded."""
    folder = model = None
    if depth_dir is not None:
        header = probe_video(video_path)
        kept = min(header.frame_count, max_frames) if max_frames and header.frame_count else header.frame_count
        folder = check_depth_dir(Path(depth_dir), header.size, kept, allow_extra=bool(max_frames))
    elif depth_model is not None:
        model = load_depth_model(depth_model)
    video = decode_video(video_path, max_side, max_frames, report)
    n, full_height, full_width = video.frames.shape[:3]
    borders = find_borders(video.frames)  # black bars baked into the picture are no part of the world
    frames = borders.crop_frames(video.frames)
    height, width = frames.shape[1:3]
    if lens_mm is not None:
        vertical_fov_deg = fov_of_equivalent_focal(lens_mm, width, height)
    user = None
    if folder is not None:
        check_frame_count(folder, n, video.limited)
        depth_files = load_depth_dir(folder, (full_height, full_width), count=n, progress=report)
        user = UserDepth(borders.crop_maps(depth_files), "depth", "depth-files")
    elif model is not None:
        depth = run_depth_model(model, frames, report)
        with np.errstate(divide="ignore"):
            disparity = np.where(np.isfinite(depth), 1.0 / depth, 0.0).astype(np.float32)
        user = UserDepth(disparity, "disparity", f"depth-model:{Path(depth_model).name}")  # type: ignore[arg-type]
    return _Clip(video_path, video, frames, borders, vertical_fov_deg, lens_mm, user)


def _capture_and_write(
    clip: _Clip,
    dest: Path,
    scene_id: str,
    shot: int | None,
    overwrite: bool,
    report: _Progress,
    capture: CaptureConfig,
) -> SceneBundle:
    """Steps 3 and 4 of the module docstring for one shot of `clip` (None: the longest)."""
    video, fov = clip.video, clip.vertical_fov_deg
    # the lens the file's metadata names, when the user gave none: the field of view's prior
    if fov is None and video.lens_35mm is not None:
        capture = replace(capture, tracking=capture.tracking.with_lens(video.lens_35mm))
    cap = capture_video(clip.frames, fps=video.fps, vertical_fov_deg=fov, user_depth=clip.user, shot=shot,
                        progress=report, config=capture)  # fmt: skip
    if clip.lens_mm is not None:  # the report says where the given field of view came from
        height, width = clip.frames.shape[1:3]
        cap.report["fov_note"] = (
            f"given as a {clip.lens_mm:g} mm-equivalent lens: {fov:.1f} degrees over this {width}x{height} frame"
        )
    _report_video(cap.report, video)
    if not clip.borders.none:
        full_height, full_width = video.frames.shape[1:3]
        cap.report["borders"] = clip.borders.words(full_width, full_height)
    meta = SceneMeta(
        scene_id=scene_id,
        title=clip.path.stem if shot is None else f"{clip.path.stem} (shot {shot})",
        fps=video.fps,
        frame_count=len(cap.frames),
        intrinsics=cap.intrinsics,
        source=f"video:{clip.path.name}",
        depth_source=cap.depth_source,
        rotation_only=cap.rotation_only,
        capture=cap.report,
    )
    report("write", 0, 1)
    bundle = write_bundle(dest, meta, cap.frames, cap.depth, cap.poses, moving=cap.moving,
                          depth_working=cap.depth_working, overwrite=overwrite)  # fmt: skip
    report("write", 1, 1)
    return bundle


def _free_target(store, scene_id: str, overwrite: bool) -> Path:
    """The folder scene `scene_id` will be written to: refused for the demo's id, and for a scene that exists
    unless `overwrite`."""
    dest = store.path_of(scene_id)  # validates the id
    if scene_id == DEMO_SCENE_ID:
        raise SceneInUse(
            f"scene id {DEMO_SCENE_ID!r} belongs to the built-in demo scene; pick another", field="scene_id"
        )
    if store.exists(scene_id) and not overwrite:
        raise BundleExists(f"scene {scene_id!r} already exists in {store.root} (pass overwrite to replace it)")
    return dest


def _report_video(report: dict, video: DecodedVideo) -> None:
    """What the file itself said, into the capture report: how its frames were stood upright, the lens its
    metadata names, any warning about either (video_meta.py), and how an HDR clip became SDR (video_colour.py)."""
    if video.orientation:
        report["orientation"] = video.orientation
    if video.colour:
        report["colour"] = video.colour
    if video.timing:
        report["timing"] = video.timing
    if video.lens_35mm is not None:
        report["lens_metadata_mm"] = video.lens_35mm
    if video.warnings:
        report["warnings"] = [*report.get("warnings", []), *video.warnings]


def slug(text: str) -> str:
    """A valid scene id made from `text`: lowercase, runs of other characters turned into '-'."""
    s = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:SCENE_ID_MAX].strip("-_")
    return s or "scene"


def _check_args(
    max_side: int, max_frames: int, fov: float | None, depth_dir, depth_model, lens_mm=None, shot: int | None = None
) -> None:
    if shot is not None and (isinstance(shot, bool) or not isinstance(shot, int) or shot < 1):
        raise InvalidArgument(f"shot must be a shot number counted from 1, got {shot!r}", field="shot")
    if not MIN_SIDE <= max_side <= MAX_IMPORT_SIDE:
        raise InvalidArgument(
            f"max_side must be in [{MIN_SIDE}, {MAX_IMPORT_SIDE}] pixels, got {max_side}", field="max_side"
        )
    if max_frames < 0:
        raise InvalidArgument(f"max_frames must be >= 0 (0: all frames), got {max_frames}", field="max_frames")
    if fov is not None:
        check_fov(fov)
    if lens_mm is not None:
        if fov is not None:
            raise InvalidArgument("give vertical_fov_deg or lens_mm, not both", field="lens_mm")
        check_equivalent_focal(lens_mm, "lens_mm")
    if depth_dir is not None and depth_model is not None:
        raise InvalidArgument("give depth_dir or depth_model, not both", field="depth_model")


__all__ = [
    "DEFAULT_FOV_DEG", "DEFAULT_MAX_FRAMES", "DEFAULT_MAX_SIDE", "import_shots", "import_video", "output_size", "slug",
]  # fmt: skip
