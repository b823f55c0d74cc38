"""Scene bundles: round trip, normalisation, validation errors, broken bundles, atomic writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from starbridge.errors import InvalidArgument, SceneError
from starbridge.geometry.camera import Intrinsics
from starbridge.geometry.conventions import pose_to_matrix
from starbridge.scenes import bundle as bundle_mod
from starbridge.scenes.bundle import (
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
    poses = np.stack(
        [
            pose_to_matrix([1.0 + i, 2.0, 3.0], [0.0, math.sin(0.1 * (i + 1)), 0.0, math.cos(0.1 * (i + 1))])
            for i in range(N)
        ]
    )
    return frames, depth, poses


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


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
    assert m.created
    np.testing.assert_array_equal(b.frames, frames)
    assert isinstance(b.frames, np.memmap) and not b.frames.flags.writeable
    assert b.depth.dtype == np.float32 and np.isinf(b.depth[:, 0]).all()
    np.testing.assert_allclose(b.depth[:, 1:], SCENE_MEDIAN_DEPTH_M)
    # Rebased: frame 0 is the identity and relative motion is kept, with positions scaled.
    np.testing.assert_array_equal(b.poses[0], np.eye(4))
    rel = np.linalg.inv(poses[0]) @ poses[2]
    np.testing.assert_allclose(b.poses[2][:3, :3], rel[:3, :3], atol=1e-12)
    np.testing.assert_allclose(b.poses[2][:3, 3], rel[:3, 3] * m.scale, atol=1e-12)
    assert listing(tmp_path) == ["unit"]  # no temporary folder left
    doc = json.loads((tmp_path / "unit" / "scene.json").read_text())
    assert doc["intrinsics"] == {"fx": m.intrinsics.fx, "fy": m.intrinsics.fy, "cx": W / 2, "cy": H / 2}
    assert doc["format_version"] == 1 and doc["rotation_only"] is False


def test_in_scene_units_keeps_depth_and_rotation_only_keeps_scale(tmp_path: Path):
    frames, depth, poses = make_arrays(depth_value=7.0)
    b = write_bundle(tmp_path / "a", make_meta(), frames, depth, poses, in_scene_units=True)
    assert b.meta.scale == 1.0 and b.meta.median_depth_m == pytest.approx(7.0)
    np.testing.assert_array_equal(b.poses[0], np.eye(4))
    inf = np.full((N, H, W), np.inf, dtype=np.float32)
    meta = make_meta(scene_id="b", depth_source="none", rotation_only=True)
    b = write_bundle(tmp_path / "b", meta, frames, inf, np.repeat(np.eye(4)[None], N, axis=0))
    assert (b.meta.scale, b.meta.median_depth_m, b.meta.rotation_only) == (1.0, 0.0, True)
    assert np.isinf(SceneBundle(tmp_path / "b").depth).all()


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
    with pytest.raises(SceneError, match="reserved"):
        write_bundle(tmp_path / "other", make_meta(), frames, depth, poses, {"depth.npy": b""})
    with pytest.raises(SceneError, match="reserved or not a plain"):
        write_bundle(tmp_path / "other", make_meta(), frames, depth, poses, {"../evil": b""})


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f, d, p: (f[:, :, :-1], d, p), r"frames must have shape \(3, 6, 8, 3\).*got \(3, 6, 7, 3\)"),
        (lambda f, d, p: (f.astype(np.float32), d, p), "frames must be uint8, got float32"),
        (lambda f, d, p: (f, d[:2], p), r"depth must have shape \(3, 6, 8\).*got \(2, 6, 8\)"),
        (lambda f, d, p: (f, np.ones(d.shape, np.int32), p), "depth must be a float dtype, got int32"),
        (lambda f, d, p: (f, np.where(d > 10, np.nan, d), p), "depth must be > 0 or \\+inf"),
        (lambda f, d, p: (f, -d, p), "depth must be > 0 or \\+inf"),
        (lambda f, d, p: (f, d, p[:, :3]), r"poses must have shape \(3, 4, 4\).*got \(3, 3, 4\)"),
        (lambda f, d, p: (f, d, p * 2.0), "poses must be rigid"),
        (lambda f, d, p: (f, d, np.where(np.isnan(p), 0, np.full_like(p, np.inf))), "poses must be finite"),
    ],
)
def test_write_validates_arrays(tmp_path: Path, change, message):
    frames, depth, poses = change(*make_arrays())
    with pytest.raises(SceneError, match=message):
        write_bundle(tmp_path / "unit", make_meta(), frames, depth, poses)
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


def test_failure_mid_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    real_save = bundle_mod._save_npy

    def failing_save(path: Path, arr: np.ndarray) -> None:
        if path.name == "depth.npy":
            real_save(path, arr[:1])  # half-written, then the disk "fails"
            raise OSError(28, "No space left on device")
        real_save(path, arr)

    monkeypatch.setattr(bundle_mod, "_save_npy", failing_save)
    with pytest.raises(OSError, match="No space left"):
        write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    assert listing(tmp_path) == []

    monkeypatch.setattr(bundle_mod, "_save_npy", real_save)
    first = write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    monkeypatch.setattr(bundle_mod, "_save_npy", failing_save)
    with pytest.raises(OSError):
        write_bundle(tmp_path / "unit", make_meta(title="new"), *make_arrays(), overwrite=True)
    assert listing(tmp_path) == ["unit"]  # the old bundle is untouched
    assert SceneBundle(tmp_path / "unit").meta == first.meta


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


def broken(path: Path, how: str) -> None:
    doc_path = path / "scene.json"
    doc = json.loads(doc_path.read_text())
    if how == "no json":
        doc_path.unlink()
    elif how == "bad json":
        doc_path.write_text("{not json")
    elif how == "not object":
        doc_path.write_text("[1, 2]")
    elif how == "missing field":
        del doc["fps"]
        doc_path.write_text(json.dumps(doc))
    elif how == "wrong type":
        doc["frame_count"] = "three"
        doc_path.write_text(json.dumps(doc))
    elif how == "newer":
        doc["format_version"] = 99
        doc_path.write_text(json.dumps(doc))
    elif how == "bad value":
        doc["intrinsics"]["fx"] = -1
        doc_path.write_text(json.dumps(doc))
    elif how == "no frames":
        (path / "frames.npy").unlink()
    elif how == "truncated depth":
        data = (path / "depth.npy").read_bytes()
        (path / "depth.npy").write_bytes(data[: len(data) - 10])
    elif how == "wrong shape":
        np.save(path / "poses.npy", np.zeros((2, 4, 4)))
    elif how == "garbage npy":
        (path / "frames.npy").write_bytes(b"garbage")


@pytest.mark.parametrize(
    "how, message",
    [
        ("no json", "not a scene bundle: scene.json is missing"),
        ("bad json", "not valid JSON"),
        ("not object", "expected a JSON object"),
        ("missing field", "missing field 'fps'"),
        ("wrong type", "field 'frame_count' must be int, got str"),
        ("newer", "format_version 99 is newer"),
        ("bad value", "intrinsics.fx must be a finite number > 0"),
        ("no frames", "frames.npy is missing"),
        ("truncated depth", "depth.npy is truncated"),
        ("wrong shape", r"poses.npy holds float64 \(2, 4, 4\), scene.json says float64 \(3, 4, 4\)"),
        ("garbage npy", "frames.npy is not a readable .npy"),
    ],
)
def test_reader_reports_broken_bundles(tmp_path: Path, how: str, message: str):
    write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    broken(tmp_path / "unit", how)
    with pytest.raises(SceneError, match=message):
        SceneBundle(tmp_path / "unit")


def test_frame_index_is_nearest_and_loops(tmp_path: Path):
    b = write_bundle(tmp_path / "unit", make_meta(), *make_arrays())  # 3 frames at 10 fps
    assert [b.frame_index(t) for t in (0.0, 0.04, 0.06, 0.1, 0.2, 0.26, 0.3, 0.31, 1.0)] == [0, 0, 1, 1, 2, 0, 0, 0, 1]
    assert b.frame_index(-0.1) == 2
    with pytest.raises(InvalidArgument, match="scene_time_s must be finite"):
        b.frame_index(math.nan)


def test_size_bytes_counts_every_file(tmp_path: Path):
    b = write_bundle(tmp_path / "unit", make_meta(), *make_arrays())
    assert b.size_bytes() == sum(p.stat().st_size for p in b.path.iterdir())
    assert b.size_bytes() > N * H * W * 3


def test_scene_ids():
    for ok in ("demo", "a", "harbour-sunset_2", "x" * 64):
        assert check_scene_id(ok) == ok
    for bad in ("", "Demo", "with space", "../up", "x" * 65, "dot.ted"):
        with pytest.raises(InvalidArgument, match="not a valid scene id"):
            check_scene_id(bad)


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
