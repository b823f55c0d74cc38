"""Scene bundles: round trip (lossless and lossy), constant arrays, masks, the capture report, the format-1
reader, normalisation, validation errors, broken bundles, atomic writes, shared decoding."""

from __future__ import annotations

import gc
import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from starbridge.errors import InvalidArgument, SceneError
from starbridge.geometry.camera import Intrinsics
from starbridge.geometry.conventions import pose_to_matrix
from starbridge.scenes import bundle as bundle_mod
from starbridge.scenes.bundle import (
    COLOUR_FILE,
    COLOUR_FILE_FFV1,
    DEPTH_FILE,
    DEPTH_LOG_STEP,
    FORMAT_VERSION,
    MOVING_FILE,
    POSES_FILE,
    SCENE_MEDIAN_DEPTH_M,
    TEMP_PREFIX,
    BundleExists,
    SceneBundle,
    SceneMeta,
    check_scene_id,
    write_bundle,
)

N, H, W = 3, 6, 8


def make_meta(**kw) -> SceneMeta:
    base = dict(
        scene_id="unit",
        title="unit test",
        fps=10.0,
        frame_count=N,
        intrinsics=Intrinsics.from_fov(60.0, W, H),
        source="engine",
        depth_source="exact",
    )
    base.update(kw)
    return SceneMeta(**base)


def make_arrays(depth_value: float = 20.0):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (N, H, W, 3), dtype=np.uint8)
    depth = np.full((N, H, W), depth_value, dtype=np.float32)
    depth[:, 0, :] = np.inf  # a sky row
    depth[:, 2:, :3] = depth_value / 3  # something nearer
    poses = np.stack(
        [
            pose_to_matrix([1.0 + i, 2.0, 3.0], [0.0, math.sin(0.1 * (i + 1)), 0.0, math.cos(0.1 * (i + 1))])
            for i in range(N)
        ]
    )
    return frames, depth, poses


def smooth_clip(n: int = 4, h: int = 48, w: int = 64):
    """Camera-like frames (gradients, a moving box, mild noise) and a depth ramp from 1 to 1000 with sky."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        img = np.stack([x / w * 200 + 20, y / h * 180 + 40, (x + y) / (w + h) * 120 + 60 + 10 * i], axis=-1)
        img[10:30, 8 + 4 * i : 30 + 4 * i] = (230, 60, 40)
        frames[i] = np.clip(img + rng.normal(0, 0.7, img.shape), 0, 255).astype(np.uint8)
    depth = np.broadcast_to(np.exp(np.linspace(0.0, np.log(1000.0), w, dtype=np.float32)), (n, h, w)).copy()
    depth[:, :5] = np.inf
    moving = np.zeros((n, h, w), bool)
    for i in range(n):
        moving[i, 10:30, 8 + 4 * i : 30 + 4 * i] = True
    return frames, depth, moving


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


# ---------------------------------------------------------------------------------------------- round trips


def test_round_trip_normalises_frame_and_scale(tmp_path: Path):
    frames, depth, poses = make_arrays(depth_value=20.0)
    written = write_bundle(tmp_path / "unit", make_meta(), frames, depth, poses)
    b = SceneBundle(tmp_path / "unit")
    assert b.meta == written.meta
    m = b.meta
    assert (m.scene_id, m.fps, m.frame_count, m.width, m.height) == ("unit", 10.0, N, W, H)
    assert m.duration_s == pytest.approx(0.3)
    assert m.scale == pytest.approx(SCENE_MEDIAN_DEPTH_M / 20.0)
    assert m.median_depth_m == pytest.approx(SCENE_MEDIAN_DEPTH_M)
    assert m.created and m.format_version == FORMAT_VERSION == 3
    # A rendered source ("engine") is stored losslessly: colour and depth come back exactly.
    np.testing.assert_array_equal(b.frames, frames)
    assert not b.frames.flags.writeable and not b.depth.flags.writeable and not b.poses.flags.writeable
    assert b.depth.dtype == np.float32 and np.isinf(b.depth[:, 0]).all()
    np.testing.assert_array_equal(b.depth[:, 1:], depth[:, 1:] * np.float32(m.scale))
    assert b.moving is None
    # Rebased: frame 0 is the identity and relative motion is kept, with positions scaled.
    np.testing.assert_array_equal(b.poses[0], np.eye(4))
    rel = np.linalg.inv(poses[0]) @ poses[2]
    np.testing.assert_allclose(b.poses[2][:3, :3], rel[:3, :3], atol=1e-12)
    np.testing.assert_allclose(b.poses[2][:3, 3], rel[:3, 3] * m.scale, atol=1e-12)
    assert listing(tmp_path) == ["unit"]  # no temporary folder left
    assert listing(b.path) == sorted([COLOUR_FILE, DEPTH_FILE, POSES_FILE, "scene.json"])
    doc = json.loads((tmp_path / "unit" / "scene.json").read_text())
    assert doc["intrinsics"] == {"fx": m.intrinsics.fx, "fy": m.intrinsics.fy, "cx": W / 2, "cy": H / 2}
    assert doc["format_version"] == 3 and doc["rotation_only"] is False and doc["capture"] is None
    storage = doc["storage"]
    assert storage["frames"] == {"encoding": "video", "file": COLOUR_FILE, "codec": "libx264rgb", "lossless": True,
                                 "crf": None, "bytes": (b.path / COLOUR_FILE).stat().st_size}  # fmt: skip
    assert storage["depth"]["encoding"] == "f32-split" and storage["moving"] is None
    assert storage["poses"] == {"encoding": "npy", "file": POSES_FILE, "bytes": (b.path / POSES_FILE).stat().st_size}


def test_video_sources_are_compact_and_close(tmp_path: Path):
    """A filmed source: H.264 colour within ~1 level, log-quantised depth within 0.05 %, far smaller than raw."""
    frames, depth, moving = smooth_clip()
    n, h, w = depth.shape
    meta = make_meta(frame_count=n, intrinsics=Intrinsics.from_fov(60.0, w, h), source="video:clip.mp4",
                     depth_source="depth-files")  # fmt: skip
    poses = np.repeat(np.eye(4)[None], n, axis=0)
    written = write_bundle(tmp_path / "clip", meta, frames, depth, poses, moving=moving)
    b = SceneBundle(written.path)
    storage = b.meta.storage
    assert storage["frames"]["lossless"] is False and storage["frames"]["crf"] == bundle_mod.COLOUR_CRF
    assert storage["depth"]["encoding"] == "log-u16" and storage["depth"]["log_step"] == DEPTH_LOG_STEP
    assert psnr(b.frames, frames) >= 40.0
    assert np.abs(b.frames.astype(int) - frames).mean() <= 1.0
    finite = np.isfinite(depth)
    assert (np.isfinite(b.depth) == finite).all()
    want = depth[finite] * np.float32(b.meta.scale)
    rel = np.abs(b.depth[finite] - want) / want
    assert rel.max() <= DEPTH_LOG_STEP / 2 * 1.001 + 1e-6  # 0.05 %: ten times inside the 0.5 % budget
    np.testing.assert_array_equal(b.moving, moving)
    raw = frames.nbytes + depth.nbytes + moving.nbytes
    assert b.size_bytes() < raw / 3


def test_rotation_only_and_constant_arrays_store_no_file(tmp_path: Path):
    frames, depth, poses = make_arrays(depth_value=7.0)
    inf = np.full((N, H, W), np.inf, dtype=np.float32)
    meta = make_meta(scene_id="b", depth_source="none", rotation_only=True)
    identity = np.repeat(np.eye(4)[None], N, axis=0)
    b = write_bundle(tmp_path / "b", meta, frames, inf, identity, moving=np.zeros((N, H, W), bool))
    assert (b.meta.scale, b.meta.median_depth_m, b.meta.rotation_only) == (1.0, 0.0, True)
    assert b.meta.storage["depth"] == {"encoding": "infinite"}
    assert b.meta.storage["moving"] == {"encoding": "constant", "value": False}
    assert listing(b.path) == sorted([COLOUR_FILE, POSES_FILE, "scene.json"])  # no depth, no masks file
    again = SceneBundle(tmp_path / "b")
    assert again.depth.shape == (N, H, W) and again.depth.dtype == np.float32 and np.isinf(again.depth).all()
    assert again.depth.strides == (0, 0, 0) and not again.depth.flags.writeable  # no memory behind it
    assert again.moving is not None and again.moving.shape == (N, H, W) and not again.moving.any()

    flat = np.full((N, H, W), 7.0, np.float32)
    c = write_bundle(tmp_path / "c", make_meta(scene_id="c"), frames, flat, poses, in_scene_units=True)
    assert c.meta.storage["depth"] == {"encoding": "constant", "value": 7.0}
    assert DEPTH_FILE not in listing(c.path)
    np.testing.assert_array_equal(SceneBundle(c.path).depth, flat)


def test_in_scene_units_keeps_depth(tmp_path: Path):
    frames, depth, poses = make_arrays(depth_value=7.0)
    b = write_bundle(tmp_path / "a", make_meta(), frames, depth, poses, in_scene_units=True)
    assert b.meta.scale == 1.0 and b.meta.median_depth_m == pytest.approx(7.0)
    np.testing.assert_array_equal(b.poses[0], np.eye(4))
    np.testing.assert_array_equal(b.depth, depth)


def test_lossless_is_a_choice_and_odd_sizes_work(tmp_path: Path):
    rng = np.random.default_rng(3)
    n, h, w = 2, 5, 7
    frames = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 50.0, (n, h, w)).astype(np.float32)
    moving = rng.random((n, h, w)) < 0.3
    meta = make_meta(frame_count=n, intrinsics=Intrinsics.from_fov(60.0, w, h), source="video:x.mp4")
    poses = np.repeat(np.eye(4)[None], n, axis=0)
    b = write_bundle(tmp_path / "x", meta, frames, depth, poses, moving=moving, lossless=True, in_scene_units=True)
    again = SceneBundle(b.path)
    np.testing.assert_array_equal(again.frames, frames)
    np.testing.assert_array_equal(again.depth, depth)
    np.testing.assert_array_equal(again.moving, moving)
    assert MOVING_FILE in listing(b.path)


def test_without_libx264rgb_colour_is_lossless_ffv1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(bundle_mod, "colour_codec", lambda: "ffv1")
    frames, depth, poses = make_arrays()
    b = write_bundle(tmp_path / "unit", make_meta(source="video:x.mp4"), frames, depth, poses)
    assert b.meta.storage["frames"]["file"] == COLOUR_FILE_FFV1 and b.meta.storage["frames"]["lossless"] is True
    np.testing.assert_array_equal(SceneBundle(b.path).frames, frames)


@pytest.mark.parametrize("source", ["engine", "video:x.mp4"])
def test_same_input_same_bytes(tmp_path: Path, source: str):
    frames, depth, moving = smooth_clip(n=3)
    n, h, w = depth.shape
    meta = make_meta(frame_count=n, intrinsics=Intrinsics.from_fov(60.0, w, h), source=source, created="then")
    poses = np.repeat(np.eye(4)[None], n, axis=0)
    a = write_bundle(tmp_path / "a", meta, frames, depth, poses, moving=moving)
    b = write_bundle(tmp_path / "b", meta, frames, depth, poses, moving=moving)
    for name in listing(a.path):
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), name


def test_capture_report_round_trip_and_validation(tmp_path: Path):
    frames, depth, poses = make_arrays()
    report = {"tracking": {"registered": 3, "reprojection_px": 0.41}, "stages": ["cuts", "tracking"], "ok": True}
    b = write_bundle(tmp_path / "unit", make_meta(capture=report), frames, depth, poses)
    assert SceneBundle(b.path).meta.capture == report
    assert json.loads((b.path / "scene.json").read_text())["capture"] == report
    for bad in ({"x": math.nan}, {"x": object()}):
        with pytest.raises(SceneError, match="capture must be JSON-able with finite numbers"):
            write_bundle(tmp_path / "bad", make_meta(capture=bad), frames, depth, poses)
    doc = json.loads((b.path / "scene.json").read_text())
    doc["capture"] = [1, 2]
    (b.path / "scene.json").write_text(json.dumps(doc))
    with pytest.raises(SceneError, match="'capture' must be an object or null"):
        SceneBundle(b.path)


def test_extra_files_and_unknown_keys_survive(tmp_path: Path):
    frames, depth, poses = make_arrays()
    extra = {"notes.txt": b"hello", "latents.npy": np.arange(6, dtype=np.float32)}
    b = write_bundle(tmp_path / "unit", make_meta(), frames, depth, poses, extra)
    assert b.file("notes.txt").read_bytes() == b"hello"
    np.testing.assert_array_equal(np.load(b.file("latents.npy")), np.arange(6))
    doc = json.loads((b.path / "scene.json").read_text())
    doc["future_field"] = {"x": 1}
    (b.path / "scene.json").write_text(json.dumps(doc))
    assert SceneBundle(b.path).meta.to_json()["future_field"] == {"x": 1}
    for reserved in ("colour.mp4", "depth.mkv", "frames.npy", "poses.npy", "scene.json"):
        with pytest.raises(SceneError, match="reserved"):
            write_bundle(tmp_path / "other", make_meta(), frames, depth, poses, {reserved: b""})
    with pytest.raises(SceneError, match="reserved or not a plain"):
        write_bundle(tmp_path / "other", make_meta(), frames, depth, poses, {"../evil": b""})


# ---------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f, d, p, m: (f[:, :, :-1], d, p, m), r"frames must have shape \(3, 6, 8, 3\).*got \(3, 6, 7, 3\)"),
        (lambda f, d, p, m: (f.astype(np.float32), d, p, m), "frames must be uint8, got float32"),
        (lambda f, d, p, m: (f, d[:2], p, m), r"depth must have shape \(3, 6, 8\).*got \(2, 6, 8\)"),
        (lambda f, d, p, m: (f, np.ones(d.shape, np.int32), p, m), "depth must be a float dtype, got int32"),
        (lambda f, d, p, m: (f, np.where(d > 10, np.nan, d), p, m), "depth must be > 0 or \\+inf"),
        (lambda f, d, p, m: (f, -d, p, m), "depth must be > 0 or \\+inf"),
        (lambda f, d, p, m: (f, d, p[:, :3], m), r"poses must have shape \(3, 4, 4\).*got \(3, 3, 4\)"),
        (lambda f, d, p, m: (f, d, p * 2.0, m), "poses must be rigid"),
        (lambda f, d, p, m: (f, d, np.where(np.isnan(p), 0, np.full_like(p, np.inf)), m), "poses must be finite"),
        (lambda f, d, p, m: (f, d, p, m.astype(np.uint8)), "moving must be bool, got uint8"),
        (lambda f, d, p, m: (f, d, p, m[:, 1:]), r"moving must have shape \(3, 6, 8\).*got \(3, 5, 8\)"),
    ],
)
def test_write_validates_arrays(tmp_path: Path, change, message):
    frames, depth, poses, moving = change(*make_arrays(), np.zeros((N, H, W), bool))
    with pytest.raises(SceneError, match=message):
        write_bundle(tmp_path / "unit", make_meta(), frames, depth, poses, moving=moving)
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(scene_id="Bad Id"), "not a valid scene id"),
        (dict(fps=0.0), "fps must be a finite number > 0"),
        (dict(fps=math.nan), "fps must be"),
        (dict(source="youtube"), "source must be"),
        (dict(depth_source="guess"), "depth_source must be"),
        (dict(rotation_only=True), "rotation-only scene has depth_source 'none'"),
    ],
)
def test_write_validates_meta(tmp_path: Path, change, message):
    with pytest.raises(SceneError, match=message):
        write_bundle(tmp_path / "unit", make_meta(**change), *make_arrays())


def test_write_validates_colour_crf(tmp_path: Path):
    with pytest.raises(SceneError, match=r"colour_crf must be in \[0, 51\]"):
        write_bundle(tmp_path / "unit", make_meta(), *make_arrays(), colour_crf=60)


# ---------------------------------------------------------------------------------------------- atomic writes


def test_failure_mid_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    real_write = bundle_mod._write_video

    def failing_write(path: Path, images, *args, **kw) -> None:
        if path.name == DEPTH_FILE:
            real_write(path, list(images)[:1], *args, **kw)  # half-written, then the disk "fails"
            raise OSError(28, "No space left on device")
        real_write(path, images, *args, **kw)

    monkeypatch.setattr(bundle_mod, "_write_video", failing_write)
    with pytest.raises(OSError, match="No space left"):
        write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    assert listing(tmp_path) == []

    monkeypatch.setattr(bundle_mod, "_write_video", real_write)
    first = write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    monkeypatch.setattr(bundle_mod, "_write_video", failing_write)
    with pytest.raises(OSError):
        write_bundle(tmp_path / "unit", make_meta(title="new"), *make_arrays(), overwrite=True)
    assert listing(tmp_path) == ["unit"]  # the old bundle is untouched
    assert SceneBundle(tmp_path / "unit").meta == first.meta
    np.testing.assert_array_equal(SceneBundle(tmp_path / "unit").frames, make_arrays()[0])


def test_existing_destination_needs_overwrite(tmp_path: Path):
    write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    with pytest.raises(BundleExists, match="already exists"):
        write_bundle(tmp_path / "unit", make_meta(title="second"), *make_arrays())
    b = write_bundle(tmp_path / "unit", make_meta(title="second"), *make_arrays(), overwrite=True)
    assert SceneBundle(b.path).meta.title == "second"
    assert listing(tmp_path) == ["unit"]  # no trash or temp folder left


def test_writer_that_loses_the_race_gets_bundle_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Another process renames its bundle into place while this one writes: the rename refuses."""
    real_save = bundle_mod._save_bytes

    def save_and_race(path: Path, data: bytes) -> None:
        real_save(path, data)
        if path.name == "scene.json" and not (tmp_path / "unit").exists():
            (tmp_path / "unit").mkdir()
            (tmp_path / "unit" / "scene.json").write_text("{}")

    monkeypatch.setattr(bundle_mod, "_save_bytes", save_and_race)
    with pytest.raises(BundleExists, match="another writer"):
        write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    assert listing(tmp_path) == ["unit"]


def test_no_temp_folder_is_visible_as_a_scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    seen: list[list[str]] = []
    real_move = bundle_mod._move_into_place

    def spy(tmp: Path, dest: Path, overwrite: bool) -> None:
        seen.append(listing(tmp_path))
        real_move(tmp, dest, overwrite)

    monkeypatch.setattr(bundle_mod, "_move_into_place", spy)
    write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    assert len(seen[0]) == 1 and seen[0][0].startswith(TEMP_PREFIX)
    assert listing(tmp_path) == ["unit"]


# ---------------------------------------------------------------------------------------------- broken bundles


def write_scene_json(path: Path, change) -> None:
    doc = json.loads((path / "scene.json").read_text())
    change(doc)
    (path / "scene.json").write_text(json.dumps(doc))


def broken(path: Path, how: str) -> None:
    doc_path = path / "scene.json"
    if how == "no json":
        doc_path.unlink()
    elif how == "bad json":
        doc_path.write_text("{not json")
    elif how == "not object":
        doc_path.write_text("[1, 2]")
    elif how == "missing field":
        write_scene_json(path, lambda d: d.pop("fps"))
    elif how == "wrong type":
        write_scene_json(path, lambda d: d.update(frame_count="three"))
    elif how == "newer":
        write_scene_json(path, lambda d: d.update(format_version=99))
    elif how == "zero version":
        write_scene_json(path, lambda d: d.update(format_version=0))
    elif how == "bad value":
        write_scene_json(path, lambda d: d["intrinsics"].update(fx=-1))
    elif how == "no storage":
        write_scene_json(path, lambda d: d.pop("storage"))
    elif how == "unknown encoding":
        write_scene_json(path, lambda d: d["storage"]["depth"].update(encoding="zstd-f8"))
    elif how == "path in file name":
        write_scene_json(path, lambda d: d["storage"]["frames"].update(file="../x.mp4"))
    elif how == "no colour":
        (path / COLOUR_FILE).unlink()
    elif how == "truncated depth":
        data = (path / DEPTH_FILE).read_bytes()
        (path / DEPTH_FILE).write_bytes(data[: len(data) - 10])
    elif how == "wrong shape poses":
        np.save(path / POSES_FILE, np.zeros((2, 4, 4)))


@pytest.mark.parametrize(
    "how, message",
    [
        ("no json", "not a scene bundle: scene.json is missing"),
        ("bad json", "not valid JSON"),
        ("not object", "expected a JSON object"),
        ("missing field", "missing field 'fps'"),
        ("wrong type", "field 'frame_count' must be int, got str"),
        ("newer", "format_version 99 is newer"),
        ("zero version", "format_version 0 is not a scene bundle format"),
        ("bad value", "intrinsics.fx must be a finite number > 0"),
        ("no storage", "missing field 'storage'"),
        ("unknown encoding", "storage.depth.encoding 'zstd-f8' is not one this StarBridge reads"),
        ("path in file name", r"storage.frames.file '../x.mp4' is not a plain file name"),
        ("no colour", "colour.mp4 is missing"),
        ("truncated depth", r"depth.mkv is truncated \(\d+ bytes, scene.json says \d+\)"),
        ("wrong shape poses", r"poses.npy holds float64 \(2, 4, 4\), scene.json says float64 \(3, 4, 4\)"),
    ],
)
def test_reader_reports_broken_bundles(tmp_path: Path, how: str, message: str):
    write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    broken(tmp_path / "unit", how)
    with pytest.raises(SceneError, match=message):
        SceneBundle(tmp_path / "unit")


def test_undecodable_files_fail_at_load_naming_the_file(tmp_path: Path):
    b = write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    colour = b.path / COLOUR_FILE
    colour.write_bytes(b"\0garbage" * (colour.stat().st_size // 8) + b"\0" * (colour.stat().st_size % 8))
    opened = SceneBundle(b.path)  # same size: only decoding can tell
    with pytest.raises(SceneError, match="colour.mp4"):
        opened.load()

    # A video with fewer frames than scene.json says (sizes fixed up to match).
    c = write_bundle(tmp_path / "c", make_meta(scene_id="c"), *make_arrays())
    short = write_bundle(tmp_path / "short", make_meta(scene_id="short", frame_count=2),
                         *(a[:2] for a in make_arrays()))  # fmt: skip
    (c.path / DEPTH_FILE).write_bytes((short.path / DEPTH_FILE).read_bytes())
    write_scene_json(c.path, lambda d: d["storage"]["depth"].update(bytes=(c.path / DEPTH_FILE).stat().st_size))
    with pytest.raises(SceneError, match=r"depth.mkv holds 2 frames, scene.json says 3"):
        SceneBundle(c.path).depth  # noqa: B018


# ---------------------------------------------------------------------------------------------- format 1


def write_format1(dest: Path, frames: np.ndarray, depth: np.ndarray, poses: np.ndarray) -> None:
    """What the format-1 writer (StarBridge before format 2) put on disk: three .npy files and scene.json."""
    dest.mkdir(parents=True)
    np.save(dest / "frames.npy", frames, allow_pickle=False)
    np.save(dest / "depth.npy", depth.astype(np.float32), allow_pickle=False)
    np.save(dest / "poses.npy", poses.astype(np.float64), allow_pickle=False)
    k = Intrinsics.from_fov(60.0, W, H)
    doc = {
        "format_version": 1, "scene_id": dest.name, "title": "old", "fps": 10.0, "frame_count": len(frames),
        "width": W, "height": H, "intrinsics": {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy}, "scale": 0.2,
        "median_depth_m": 4.0, "source": "engine", "depth_source": "exact", "rotation_only": False,
        "created": "2025-01-31T12:00:00+00:00",
    }  # fmt: skip
    (dest / "scene.json").write_text(json.dumps(doc, indent=2))


def test_format1_bundles_still_load(tmp_path: Path):
    frames, depth, poses = make_arrays(depth_value=4.0)
    poses = np.linalg.inv(poses[0]) @ poses
    write_format1(tmp_path / "old", frames, depth, poses)
    b = SceneBundle(tmp_path / "old")
    assert b.meta.format_version == 1 and b.meta.capture is None
    assert b.meta.storage["frames"] == {"encoding": "npy", "file": "frames.npy"}
    assert isinstance(b.frames, np.memmap) and not b.frames.flags.writeable  # memory-mapped, as before
    np.testing.assert_array_equal(b.frames, frames)
    np.testing.assert_array_equal(b.depth, depth)
    np.testing.assert_array_equal(b.poses, poses)
    assert b.moving is None and b.meta.title == "old" and b.meta.scale == 0.2
    # Rewriting an old scene upgrades it to the current format.
    new = write_bundle(tmp_path / "new", replace_id(b.meta, "new"), b.frames, b.depth, b.poses, in_scene_units=True)
    assert SceneBundle(new.path).meta.format_version == FORMAT_VERSION
    np.testing.assert_array_equal(SceneBundle(new.path).frames, frames)


def replace_id(meta: SceneMeta, scene_id: str) -> SceneMeta:
    from dataclasses import replace

    return replace(meta, scene_id=scene_id, storage={})


@pytest.mark.parametrize(
    "how, message",
    [
        ("no frames", "frames.npy is missing"),
        ("truncated depth", "depth.npy is truncated"),
        ("wrong shape", r"poses.npy holds float64 \(2, 4, 4\), scene.json says float64 \(3, 4, 4\)"),
        ("garbage npy", "frames.npy is not a readable .npy"),
    ],
)
def test_format1_reader_reports_broken_bundles(tmp_path: Path, how: str, message: str):
    path = tmp_path / "old"
    write_format1(path, *make_arrays())
    if how == "no frames":
        (path / "frames.npy").unlink()
    elif how == "truncated depth":
        data = (path / "depth.npy").read_bytes()
        (path / "depth.npy").write_bytes(data[: len(data) - 10])
    elif how == "wrong shape":
        np.save(path / "poses.npy", np.zeros((2, 4, 4)))
    else:
        (path / "frames.npy").write_bytes(b"garbage")
    with pytest.raises(SceneError, match=message):
        SceneBundle(path)


# ---------------------------------------------------------------------------------------------- sharing


def test_bundles_of_one_folder_share_one_decoded_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    decodes: list[int] = []
    real_decode = SceneBundle._decode

    def counting(self: SceneBundle):
        decodes.append(1)
        return real_decode(self)

    monkeypatch.setattr(SceneBundle, "_decode", counting)
    bundles = [SceneBundle(tmp_path / "unit") for _ in range(4)]
    assert not any(b.loaded for b in bundles)
    threads = [threading.Thread(target=b.load) for b in bundles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(decodes) == 1
    assert all(b.frames is bundles[0].frames and b.depth is bundles[0].depth for b in bundles)
    # A replaced bundle at the same path is a different scene: decoded afresh.
    frames = make_arrays()[0][::-1].copy()
    write_bundle(tmp_path / "unit", make_meta(), frames, *make_arrays()[1:], overwrite=True)
    fresh = SceneBundle(tmp_path / "unit")
    np.testing.assert_array_equal(fresh.frames, frames)
    assert len(decodes) == 2 and fresh.frames is not bundles[0].frames


def test_recently_used_scenes_stay_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bundle_mod.drop_decoded()
    decodes: list[str] = []
    real_decode = SceneBundle._decode

    def counting(self: SceneBundle):
        decodes.append(self.meta.scene_id)
        return real_decode(self)

    monkeypatch.setattr(SceneBundle, "_decode", counting)
    monkeypatch.setattr(bundle_mod, "KEEP_DECODED", 2)
    for name in ("a", "b", "c"):
        write_bundle(tmp_path / name, make_meta(scene_id=name), *make_arrays())
    SceneBundle(tmp_path / "a").load()  # then closed: kept
    SceneBundle(tmp_path / "a").load()
    assert decodes == ["a"]
    SceneBundle(tmp_path / "b").load()
    SceneBundle(tmp_path / "c").load()  # "a" is now the least recently used of three: forgotten
    gc.collect()
    SceneBundle(tmp_path / "c").load()
    SceneBundle(tmp_path / "a").load()
    assert decodes == ["a", "b", "c", "a"]
    bundle_mod.drop_decoded()
    gc.collect()
    SceneBundle(tmp_path / "a").load()
    assert decodes == ["a", "b", "c", "a", "a"]


# ---------------------------------------------------------------------------------------------- the rest


def test_frame_index_is_nearest_and_loops(tmp_path: Path):
    b = write_bundle(tmp_path / "unit", make_meta(), *make_arrays())  # 3 frames at 10 fps
    assert [b.frame_index(t) for t in (0.0, 0.04, 0.06, 0.1, 0.2, 0.26, 0.3, 0.31, 1.0)] == [0, 0, 1, 1, 2, 0, 0, 0, 1]
    assert b.frame_index(-0.1) == 2
    with pytest.raises(InvalidArgument, match="scene_time_s must be finite"):
        b.frame_index(math.nan)


def test_size_bytes_counts_every_file(tmp_path: Path):
    b = write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    assert b.size_bytes() == sum(p.stat().st_size for p in b.path.iterdir())
    assert b.size_bytes() > N * H * W


def test_scene_ids():
    for ok in ("demo", "a", "harbour-sunset_2", "x" * 64):
        assert check_scene_id(ok) == ok
    for bad in ("", "Demo", "with space", "../up", "x" * 65, "dot.ted"):
        with pytest.raises(InvalidArgument, match="not a valid scene id"):
            check_scene_id(bad)


def test_a_format1_demo_is_rebuilt_in_the_current_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The store rebuilds a demo of the current demo version that an older StarBridge wrote as .npy arrays."""
    from starbridge.scenes import store as store_mod
    from starbridge.scenes.demo import DEMO_VERSION, DEMO_WORLD_FILE, DemoSceneConfig, build_demo_scene

    small = DemoSceneConfig(width=48, height=27, frame_count=3, fps=24.0)
    monkeypatch.setattr(store_mod, "build_demo_scene", lambda path, progress=None, overwrite=False:
                        build_demo_scene(path, small, progress, overwrite))  # fmt: skip
    store = store_mod.SceneStore(tmp_path / "scenes")
    old = store.root / "demo"
    write_format1(old, *make_arrays())
    (old / DEMO_WORLD_FILE).write_text(json.dumps({"demo_version": DEMO_VERSION}))
    assert SceneBundle(old).meta.format_version == 1
    demo = store.ensure_demo()
    assert demo.meta.format_version == FORMAT_VERSION and demo.meta.width == 48
    assert store.ensure_demo().meta == demo.meta  # not rebuilt again
