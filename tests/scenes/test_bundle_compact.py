"""Compact bundles of imported scenes (format 3): multi-view stereo's depth stored at its working size and
upsampled again at load from the decoded colour, the coarser log step of estimated depth, a format-2 bundle
written by the previous writer loading exactly as before, and broken working-size depth files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from starbridge.errors import SceneError
from starbridge.geometry.camera import Intrinsics
from starbridge.geometry.conventions import pose_to_matrix
from starbridge.scenes import bundle as bundle_mod
from starbridge.scenes.bundle import (
    DEPTH_FILE,
    DEPTH_LOG_STEP,
    DEPTH_LOG_STEP_ESTIMATED,
    FORMAT_VERSION,
    SceneBundle,
    SceneMeta,
    WorkingDepth,
    log_u16_table,
    write_bundle,
)
from starbridge.scenes.capture.depth_ops import resize_rgb
from starbridge.scenes.capture.depth_upsample import upsample_frames

DATA = Path(__file__).parent / "data"
N, H, W, h, w = 5, 72, 128, 27, 48


def captured(seed: int = 0) -> tuple[np.ndarray, WorkingDepth, np.ndarray, np.ndarray, np.ndarray]:
    """A capture-like scene: camera-like frames (sky, a slanted floor, a red box that moves), the working-size
    inverse depth of the same regions (tracking units: median depth about 25), its colour-guided upsampling as
    capture computes it, poses and masks. Returns (frames, working, depth, poses, moving)."""
    rng = np.random.default_rng(seed)
    frames = np.empty((N, H, W, 3), np.uint8)
    inverse = np.empty((N, h, w), np.float32)
    moving = np.zeros((N, H, W), bool)
    yy, xx = np.mgrid[0:H, 0:W]
    sy, sx = np.mgrid[0:h, 0:w]
    for i in range(N):
        img = np.empty((H, W, 3), np.float32)
        img[:] = np.stack([60 + xx * 0.5, 120 + yy * 0.6, 50 + 0 * xx], axis=-1)
        img[yy < H // 5] = (150, 190, 240)
        box = (yy >= 24) & (yy < 48) & (xx >= 16 + 6 * i) & (xx < 48 + 6 * i)
        img[box] = (200, 40, 30)
        moving[i] = box
        frames[i] = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
        inv = (0.02 + 0.06 * sy / h + 0.004 * np.sin(sx / 5.0)).astype(np.float32)
        inv[(sy >= 9) & (sy < 18) & (sx >= 6 + 2.25 * i) & (sx < 18 + 2.25 * i)] = 0.2
        inv[sy < h // 5] = 0.0
        inverse[i] = inv
    working = WorkingDepth(inverse, blend=0.1)
    depth = upsample_frames(inverse, frames, working.blend)
    poses = np.stack([pose_to_matrix([0.3 * i, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]) for i in range(N)])
    return frames, working, depth, poses, moving


def meta(depth_source: str = "multi-view-stereo", **kw) -> SceneMeta:
    base = dict(scene_id="clip", title="clip", fps=30.0, frame_count=N, intrinsics=Intrinsics.from_fov(60.0, W, H),
                source="video:clip.mp4", depth_source=depth_source)  # fmt: skip
    base.update(kw)
    return SceneMeta(**base)


def test_working_size_depth_loads_as_capture_upsampled_it(tmp_path: Path):
    frames, working, depth, poses, moving = captured()
    b = write_bundle(tmp_path / "clip", meta(), frames, depth, poses, moving=moving, depth_working=working)
    spec = b.meta.storage["depth"]
    assert b.meta.format_version == FORMAT_VERSION == 3
    assert spec["encoding"] == "log-u16" and spec["size"] == [w, h] and spec["upsample"] == "colour-guided"
    assert spec["upsample_blend"] == 0.1 and spec["log_step"] == DEPTH_LOG_STEP_ESTIMATED
    bundle_mod.drop_decoded()
    loaded = SceneBundle(b.path).load()
    got = np.asarray(loaded.depth)
    assert got.shape == (N, H, W) and got.dtype == np.float32 and not got.flags.writeable
    # exactly the upsampling of the stored working-size codes under the decoded colour
    codes_inverse = log_u16_table(spec["log_min"], spec["log_step"], inverse=True)
    import av

    with av.open(str(b.path / DEPTH_FILE)) as container:
        stored = np.stack([f.to_ndarray() for f in container.decode(video=0)])
    assert stored.shape == (N, h, w)
    np.testing.assert_array_equal(got, upsample_frames(codes_inverse[stored], np.asarray(loaded.frames), 0.1))
    # and the capture's full-size depth (in scene units) within the quantisation step, except where a choice
    # flipped: a neighbour spread near the blend threshold (quantisation moves it across), or a colour choice
    # between neighbours that the lossy colour decides the other way; there the depth is another working-size
    # neighbour's, so within the spread of the neighbours (no new values: no flying pixels)
    want = depth * np.float32(loaded.meta.scale)
    assert (np.isinf(got) == np.isinf(want)).mean() >= 0.998
    both = np.isfinite(got) & np.isfinite(want)
    rel = np.zeros(got.shape)
    rel[both] = np.abs(got[both].astype(np.float64) / want[both] - 1)
    step = DEPTH_LOG_STEP_ESTIMATED / 2 * 1.001 + 1e-6
    assert (rel[both] <= step).mean() >= 0.985
    assert np.median(rel[both]) <= DEPTH_LOG_STEP_ESTIMATED / 4
    inv = working.inverse
    spread = ndimage.maximum_filter(inv, size=(1, 3, 3)) / np.maximum(ndimage.minimum_filter(inv, size=(1, 3, 3)), 1e-9)
    rows = ((np.arange(H) + 0.5) * h / H).astype(int)
    cols = ((np.arange(W) + 0.5) * w / W).astype(int)
    spread_full = spread[:, rows[:, None], cols[None, :]]
    assert (rel[both] <= spread_full[both] - 1 + step).all()
    # the scene's median depth is the convention's, from the working-size depth too
    assert abs(np.median(got[np.isfinite(got)]) - bundle_mod.SCENE_MEDIAN_DEPTH_M) < 0.05
    np.testing.assert_array_equal(loaded.moving, moving)
    # the same bits on every load
    bundle_mod.drop_decoded()
    np.testing.assert_array_equal(SceneBundle(b.path).load().depth, got)


def test_working_size_depth_is_smaller_than_full_size(tmp_path: Path):
    frames, working, depth, poses, moving = captured()
    full = write_bundle(tmp_path / "full", meta(), frames, depth, poses, depth_log_step=DEPTH_LOG_STEP)
    compact = write_bundle(tmp_path / "compact", meta(), frames, depth, poses, depth_working=working)
    assert "size" not in full.meta.storage["depth"] and full.meta.storage["depth"]["log_step"] == DEPTH_LOG_STEP
    full_bytes = (full.path / DEPTH_FILE).stat().st_size
    assert (compact.path / DEPTH_FILE).stat().st_size < full_bytes / 3


@pytest.mark.parametrize(
    ("depth_source", "step"),
    [("multi-view-stereo", DEPTH_LOG_STEP_ESTIMATED), ("depth-model:m.onnx", DEPTH_LOG_STEP_ESTIMATED),
     ("depth-files", DEPTH_LOG_STEP)],
)  # fmt: skip
def test_log_step_follows_the_depth_source(tmp_path: Path, depth_source: str, step: float):
    frames, _, depth, poses, _ = captured()
    b = write_bundle(tmp_path / "b", meta(depth_source), frames, depth, poses)
    assert b.meta.storage["depth"]["log_step"] == step and "size" not in b.meta.storage["depth"]
    finite = np.isfinite(depth)
    want = depth[finite] * np.float32(b.meta.scale)
    rel = np.abs(SceneBundle(b.path).depth[finite] - want) / want
    assert rel.max() <= step / 2 * 1.001 + 1e-6


def test_rendered_scenes_stay_exact_whatever_they_are_given(tmp_path: Path):
    frames, working, depth, poses, _ = captured()
    b = write_bundle(tmp_path / "r", meta("exact", source="engine"), frames, depth, poses, depth_working=working)
    assert b.meta.storage["depth"]["encoding"] == "f32-split"
    loaded = SceneBundle(b.path)
    np.testing.assert_array_equal(loaded.depth, depth * np.float32(loaded.meta.scale))
    np.testing.assert_array_equal(loaded.frames, frames)


def test_a_format2_bundle_loads_exactly_as_before():
    """tests/scenes/data/format2-video was written by the format-2 writer (commit 1d38e7a, colour in FFV1):
    full-size log-u16 depth with step 0.001; the expected arrays are what that version's reader loaded."""
    b = SceneBundle(DATA / "format2-video").load()
    assert b.meta.format_version == 2 and b.meta.storage["depth"]["log_step"] == DEPTH_LOG_STEP
    with np.load(DATA / "format2-video-expected.npz") as want:
        for name in ("frames", "depth", "moving", "poses"):
            np.testing.assert_array_equal(getattr(b, name), want[name], err_msg=name)


def _edit_depth_spec(path: Path, change) -> None:
    doc = json.loads((path / "scene.json").read_text())
    change(doc["storage"]["depth"])
    (path / "scene.json").write_text(json.dumps(doc))


def _write_video(path: Path, images: np.ndarray) -> None:
    bundle_mod._write_video(path, images, 30.0, images.shape[2:0:-1], "ffv1", "gray16le", "gray16le", {})


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("short", r"depth.mkv holds 3 frames, scene.json says 5"),
        ("full size", r"depth.mkv holds 128x72 frames, scene.json says 48x27"),
        ("garbage", r"depth.mkv is not a readable video"),
    ],
)
def test_broken_working_depth_fails_at_load_naming_the_file(tmp_path: Path, how: str, message: str):
    frames, working, depth, poses, _ = captured()
    b = write_bundle(tmp_path / "clip", meta(), frames, depth, poses, depth_working=working)
    target = b.path / DEPTH_FILE
    if how == "short":
        _write_video(target, np.zeros((3, h, w), np.uint16))
    elif how == "full size":
        _write_video(target, np.zeros((N, H, W), np.uint16))
    else:
        target.write_bytes(b"\x00not a video" * 50)
    _edit_depth_spec(b.path, lambda d: d.update(bytes=target.stat().st_size))  # sizes agree: fails at decode
    bundle_mod.drop_decoded()
    opened = SceneBundle(b.path)
    with pytest.raises(SceneError, match=message):
        opened.load()


def test_truncated_working_depth_is_caught_at_open(tmp_path: Path):
    frames, working, depth, poses, _ = captured()
    b = write_bundle(tmp_path / "clip", meta(), frames, depth, poses, depth_working=working)
    data = (b.path / DEPTH_FILE).read_bytes()
    (b.path / DEPTH_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(SceneError, match=r"depth.mkv is truncated"):
        SceneBundle(b.path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(size=[0, 27]), r"storage.depth.size must be \[width, height\]"),
        (lambda d: d.update(size="48x27"), r"storage.depth.size must be \[width, height\]"),
        (lambda d: d.update(upsample="bicubic"), r"storage.depth.upsample 'bicubic' is not one this StarBridge"),
        (lambda d: d.pop("upsample_blend"), r"missing field 'storage.depth.upsample_blend'"),
        (lambda d: d.update(upsample_blend=-1), r"upsample_blend must be a finite number >= 0"),
        (lambda d: d.update(size=[129, 27]), r"storage.depth.size \[129, 27\] is larger than the frames \(128x72\)"),
    ],
)
def test_bad_working_size_records_are_refused_at_open(tmp_path: Path, change, message: str):
    frames, working, depth, poses, _ = captured()
    b = write_bundle(tmp_path / "clip", meta(), frames, depth, poses, depth_working=working)
    _edit_depth_spec(b.path, change)
    with pytest.raises(SceneError, match=message):
        SceneBundle(b.path)


@pytest.mark.parametrize(
    ("working", "message"),
    [
        (lambda wd: WorkingDepth(wd.inverse[:3]), r"must have the depth's 5 frames"),
        (lambda wd: WorkingDepth(np.zeros((N, H + 1, W), np.float32)), r"at a size no larger than 72x128"),
        (lambda wd: WorkingDepth(wd.inverse * np.nan), r"must be finite and >= 0"),
        (lambda wd: WorkingDepth(-wd.inverse), r"must be finite and >= 0"),
        (lambda wd: WorkingDepth(wd.inverse, method="nearest"), r"needs an upsampling among"),
        (lambda wd: WorkingDepth(wd.inverse.astype(np.int32)), r"must be an \(N, h, w\) float array"),
    ],
)
def test_write_validates_the_working_depth(tmp_path: Path, working, message: str):
    frames, good, depth, poses, _ = captured()
    with pytest.raises(SceneError, match=message):
        write_bundle(tmp_path / "clip", meta(), frames, depth, poses, depth_working=working(good))
    assert not (tmp_path / "clip").exists()
    with pytest.raises(SceneError, match=r"depth_log_step must be in \(0, 0.1\]"):
        write_bundle(tmp_path / "clip", meta(), frames, depth, poses, depth_log_step=0.0)


def test_working_colour_is_the_decoded_colour(tmp_path: Path):
    """Loading guides the upsampling with the colour it decoded (not the capture's): recomputing from the
    bundle's own frames gives the loaded depth, so what is served is consistent with what is shown."""
    frames, working, depth, poses, _ = captured(seed=4)
    b = SceneBundle(write_bundle(tmp_path / "c", meta(), frames, depth, poses, depth_working=working).path).load()
    small = np.stack([resize_rgb(f, (h, w)) for f in b.frames])
    assert small.shape == (N, h, w, 3)
    assert not np.array_equal(np.asarray(b.frames), frames)  # the colour is lossy (H.264 CRF)
    spec = b.meta.storage["depth"]
    inverse = working.inverse / np.float32(b.meta.scale)
    q = np.clip(np.rint((-np.log(np.where(inverse > 0, inverse, 1)) - spec["log_min"]) / spec["log_step"]) + 1, 1, None)
    codes = np.where(inverse > 0, q, 0).astype(np.int64)
    table = log_u16_table(spec["log_min"], spec["log_step"], inverse=True)
    np.testing.assert_array_equal(b.depth, upsample_frames(table[codes], np.asarray(b.frames), 0.1))
