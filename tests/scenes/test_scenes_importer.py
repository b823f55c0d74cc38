"""Importing a real video: rotation-only, depth files, an ONNX depth model; and every bad file refused cleanly."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from starbridge.errors import InvalidArgument, SceneError, SceneInUse
from starbridge.scenes import bundle as bundle_mod
from starbridge.scenes.bundle import SCENE_MEDIAN_DEPTH_M, BundleExists
from starbridge.scenes.capture.user_depth import disparity_to_depth, dynamic_model_size
from starbridge.scenes.importer import output_size, slug
from starbridge.scenes.store import SceneStore

FRAMES, SIDE = 8, 128  # 1280x720 -> 128x72


def leftovers(store: SceneStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir())


def make_depth_model(path: Path, height: int | str, width: int | str, seed: int = 0) -> Path:
    """A tiny random-weight 'depth model': image (1, 3, H, W) -> conv 3x3 -> softplus -> (1, H, W) disparity."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(0, 0.5, (1, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(np.array([0.1], np.float32), "b")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [
        helper.make_node("Conv", ["image", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Softplus", ["conv"], ["soft"]),
        helper.make_node("Squeeze", ["soft", "axes"], ["disparity"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_depth",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("disparity", TensorProto.FLOAT, [1, height, width])],
        initializer=[weight, bias, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_rotation_only_import(store: SceneStore, sample_video: Path):
    calls: list[tuple[str, int, int]] = []
    bundle = store.import_video(sample_video, max_frames=FRAMES, max_side=SIDE, progress=lambda *a: calls.append(a))
    m = bundle.meta
    assert (m.scene_id, m.title, m.source) == ("bigbuckbunny", "bigbuckbunny", "video:bigbuckbunny.mp4")
    assert (m.frame_count, m.width, m.height, m.fps) == (FRAMES, 128, 72, 25.0)
    assert (m.depth_source, m.rotation_only, m.median_depth_m, m.scale) == ("none", True, 0.0, 1.0)
    assert 20.0 < m.intrinsics.vertical_fov_deg < 120.0
    assert bundle.frames.shape == (FRAMES, 72, 128, 3) and np.isinf(bundle.depth).all()
    # these 8 frames are a nearly still camera: tracked as rotation only, with its real (small) rotations
    assert m.capture is not None and m.capture["tracking"] in ("rotation only", "failed")
    np.testing.assert_array_equal(bundle.poses[:, :3, 3], 0.0)
    np.testing.assert_allclose(bundle.poses[0], np.eye(4))
    for pose in bundle.poses:
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-5)
    assert 40 < bundle.frames.mean() < 220 and bundle.frames[..., 1].mean() > bundle.frames[..., 2].mean()  # grass
    assert ("decode", 1, FRAMES) in calls and calls[-1] == ("write", 1, 1)
    assert [s.scene_id for s in store.list()] == ["bigbuckbunny"]
    assert leftovers(store) == ["bigbuckbunny"]


def test_import_with_depth_files(store: SceneStore, sample_video: Path, tmp_path: Path):
    folder = tmp_path / "depth"
    folder.mkdir()
    for i in range(FRAMES):
        d = np.linspace(100.0, 300.0, 36 * 64, dtype=np.float32).reshape(36, 64) + i  # any unit: centimetres
        d[0, :] = 0.0  # "no depth" here
        np.save(folder / f"frame_{i:04d}.npy", d[None] if i % 2 else d)  # (1, H, W) is accepted too
    bundle = store.import_video(sample_video, scene_id="with-depth", depth_dir=folder, max_frames=FRAMES, max_side=SIDE)
    m = bundle.meta
    assert (m.depth_source, m.rotation_only) == ("depth-files", False)
    assert m.median_depth_m == pytest.approx(SCENE_MEDIAN_DEPTH_M, rel=1e-3)
    assert bundle.depth.shape == (FRAMES, 72, 128)
    assert np.isinf(bundle.depth[:, :2]).all() and np.isfinite(bundle.depth[:, 2:]).all()
    assert m.scale == pytest.approx(SCENE_MEDIAN_DEPTH_M / 200.0, rel=0.05)


def test_depth_file_problems(store: SceneStore, sample_video: Path, tmp_path: Path):
    folder = tmp_path / "depth"
    folder.mkdir()
    for i in range(5):
        np.save(folder / f"{i}.npy", np.ones((9, 16), np.float32))
    with pytest.raises(SceneError, match="has 5 .npy file.*8 frame"):
        store.import_video(sample_video, depth_dir=folder, max_frames=FRAMES, max_side=SIDE)
    for i in range(5, 10):
        np.save(folder / f"{i}.npy", np.ones((9, 16), np.float32))
    # 10 files, 8 frames kept because of max_frames: the first 8 are used.
    assert store.import_video(sample_video, depth_dir=folder, max_frames=FRAMES, max_side=SIDE).meta.frame_count == 8
    np.save(folder / "0.npy", np.ones((2, 9, 16), np.float32))
    with pytest.raises(SceneError, match=r"depth file 0.npy: expected a 2D numeric depth map.*\(2, 9, 16\)"):
        store.import_video(sample_video, scene_id="x", depth_dir=folder, max_frames=FRAMES, max_side=SIDE)
    with pytest.raises(SceneError, match="does not exist or is not a folder"):
        store.import_video(sample_video, scene_id="x", depth_dir=tmp_path / "nope", max_frames=FRAMES, max_side=SIDE)
    assert leftovers(store) == ["bigbuckbunny"]


@pytest.mark.parametrize("shape", [(56, 98), ("height", "width")], ids=["fixed-input", "dynamic-input"])
def test_import_with_onnx_depth_model(store: SceneStore, sample_video: Path, tmp_path: Path, shape):
    model = make_depth_model(tmp_path / "tiny_depth.onnx", *shape)
    bundle = store.import_video(sample_video, depth_model=model, max_frames=4, max_side=SIDE)
    m = bundle.meta
    assert (m.depth_source, m.rotation_only) == ("depth-model:tiny_depth.onnx", False)
    assert bundle.depth.shape == (4, 72, 128) and np.isfinite(bundle.depth).all() and (bundle.depth > 0).all()
    assert m.median_depth_m == pytest.approx(SCENE_MEDIAN_DEPTH_M, rel=1e-3)
    assert bundle.depth[0].std() > 0  # it depends on the image


def test_bad_depth_model(store: SceneStore, sample_video: Path, tmp_path: Path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model" * 10)
    with pytest.raises(SceneError, match="depth model junk.onnx: cannot load it"):
        store.import_video(sample_video, depth_model=junk, max_frames=2, max_side=SIDE)
    with pytest.raises(SceneError, match="does not exist"):
        store.import_video(sample_video, depth_model=tmp_path / "missing.onnx", max_frames=2, max_side=SIDE)
    assert leftovers(store) == []


def faststart_copy(src: Path, dst: Path) -> Path:
    """Remux with the index (moov) first, so a truncated copy still opens and decodes its first frames."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is not None:
                packet.stream = copy
                out.mux(packet)
    return dst


def bad_file(kind: str, sample: Path, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.mp4"
    data = sample.read_bytes()
    if kind == "missing":
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 10])
    elif kind == "text":
        path.write_text("this is not a video\n" * 100)
    elif kind == "truncated-faststart":
        full = faststart_copy(sample, tmp_path / "full.mp4").read_bytes()
        path.write_bytes(full[: len(full) // 2])
    elif kind == "audio-only":
        with av.open(str(path), "w") as out:
            stream = out.add_stream("aac", rate=16000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "does not exist"),
        ("empty", "file is empty"),
        ("random", "not a video FFmpeg can read"),
        ("truncated", "not a video FFmpeg can read"),  # the index (moov) is at the end of this mp4
        ("text", "not a video FFmpeg can read"),
        ("truncated-faststart", r"truncated: decoded \d+ of the 132 frames"),
        ("audio-only", "no video stream"),
    ],
)
def test_bad_videos_are_refused_and_leave_nothing(store: SceneStore, sample_video: Path, tmp_path: Path, kind, message):
    path = bad_file(kind, sample_video, tmp_path)
    with pytest.raises(SceneError, match=message) as info:
        store.import_video(path, max_side=SIDE)
    assert path.name in info.value.message or str(path) in info.value.message
    assert leftovers(store) == []


def test_failure_while_writing_leaves_nothing(store: SceneStore, sample_video: Path, monkeypatch: pytest.MonkeyPatch):
    def fail(path: Path, arr: np.ndarray) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle_mod, "_save_npy", fail)
    with pytest.raises(OSError, match="No space left"):
        store.import_video(sample_video, max_frames=2, max_side=SIDE)
    assert leftovers(store) == []


def test_ids_overwrite_and_arguments(store: SceneStore, sample_video: Path, tmp_path: Path):
    store.import_video(sample_video, scene_id="clip", max_frames=2, max_side=SIDE)
    with pytest.raises(BundleExists, match="already exists"):
        store.import_video(sample_video, scene_id="clip", max_frames=2, max_side=SIDE)
    again = store.import_video(sample_video, scene_id="clip", max_frames=3, max_side=SIDE, overwrite=True)
    assert again.meta.frame_count == 3 and leftovers(store) == ["clip"]
    with pytest.raises(SceneInUse, match="built-in demo"):
        store.import_video(sample_video, scene_id="demo", max_frames=2, max_side=SIDE)
    with pytest.raises(InvalidArgument, match="not a valid scene id"):
        store.import_video(sample_video, scene_id="Big Buck", max_frames=2)
    with pytest.raises(InvalidArgument, match="max_side must be in"):
        store.import_video(sample_video, max_side=4)
    with pytest.raises(InvalidArgument, match="max_frames must be >= 0"):
        store.import_video(sample_video, max_frames=-1)
    with pytest.raises(InvalidArgument, match="vertical_fov_deg"):
        store.import_video(sample_video, vertical_fov_deg=0.0)
    with pytest.raises(InvalidArgument, match="not both"):
        store.import_video(sample_video, depth_dir=tmp_path, depth_model=tmp_path / "m.onnx")
    with pytest.raises(InvalidArgument, match="vertical_fov_deg or lens_mm, not both"):
        store.import_video(sample_video, vertical_fov_deg=50.0, lens_mm=26.0)
    for bad in (0.0, 2.0, float("nan"), 5000.0):
        with pytest.raises(InvalidArgument, match=r"lens_mm \(a 35 mm-equivalent focal length\) must be in"):
            store.import_video(sample_video, lens_mm=bad)


def test_a_known_lens_gives_the_field_of_view_for_the_clips_frame(store: SceneStore, sample_video: Path):
    """`lens_mm`: the 35 mm-equivalent focal length a user reads off a spec sheet, turned into the vertical field
    of view of the clip's own frame (16:9 here: 26 mm is 44.4 degrees, 50 mm 24.0) and used as given."""
    for lens, fov in ((26.0, 44.38), (50.0, 23.95)):
        m = store.import_video(sample_video, scene_id=f"lens{lens:g}", max_frames=FRAMES, max_side=SIDE,
                               lens_mm=lens).meta  # fmt: skip
        assert (m.width, m.height) == (128, 72)
        assert m.intrinsics.vertical_fov_deg == pytest.approx(fov, abs=0.01)
        assert m.capture is not None and m.capture["fov_source"] == "given", m.capture
        got = m.intrinsics.vertical_fov_deg
        note = f"given as a {lens:g} mm-equivalent lens: {got:.1f} degrees over this 128x72 frame"
        assert m.capture["fov_note"] == note, m.capture["fov_note"]


def test_helpers():
    assert output_size(1280, 720, 512) == (512, 288)
    assert output_size(1280, 720, 128) == (128, 72)
    assert output_size(100, 50, 512) == (100, 50)  # never upscaled
    w, h = output_size(101, 51, 512)
    assert w % 2 == 0 and h % 2 == 0 and abs(w - 101) == 1 and abs(h - 51) == 1  # even sizes
    assert output_size(720, 1280, 100) == (56, 100)
    assert dynamic_model_size((72, 128)) == (518, 924)
    assert all(s % 14 == 0 for s in dynamic_model_size((288, 512)))
    assert slug("My Holiday (2024).MP4") == "my-holiday-2024-mp4"
    assert slug("???") == "scene"
    depth = disparity_to_depth(np.array([[1.0, 2.0], [4.0, 0.0]]))
    assert np.isfinite(depth).all() and np.median(depth) == pytest.approx(SCENE_MEDIAN_DEPTH_M)
    assert depth[0, 0] == pytest.approx(2 * depth[0, 1])  # depth is inverse disparity
