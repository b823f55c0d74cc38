"""User depth: every bad depth folder (and model) is refused from real files, naming the file and the
problem, before any video is decoded; good ones load in frame order with 0 and +inf as no surface."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from starbridge.errors import SceneError
from starbridge.scenes.capture import user_depth as ud
from starbridge.scenes.capture.user_depth import (
    DepthFolder,
    check_depth_dir,
    check_frame_count,
    load_depth_dir,
    load_depth_model,
    natural_key,
    probe_video,
    run_depth_model,
)
from starbridge.scenes.video import write_video

VIDEO = (64, 36)  # (width, height) of the "video" the folders are checked against
STORED = (18, 32)  # (height, width) the frames are stored at (e.g. --max-side 32)


def save_npy(folder: Path, name: str, arr: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    np.save(path, arr, allow_pickle=False)
    return path


def good_map(value: float = 2.0, size: tuple[int, int] = (36, 64)) -> np.ndarray:
    d = np.full(size, value, np.float32)
    d[0] = 0.0  # "no measurement"
    d[1] = np.inf  # sky
    return d


def depth_folder(tmp_path: Path, count: int = 4, name: str = "d{i}.npy") -> Path:
    folder = tmp_path / "depth"
    for i in range(count):
        save_npy(folder, name.format(i=i), good_map(1.0 + i))
    return folder


def refused(folder: Path, message: str, count: int = 4, **kw) -> SceneError:
    with pytest.raises(SceneError, match=message) as info:
        depth = check_depth_dir(folder, VIDEO, count, **kw)
        load_depth_dir(depth, STORED)
    assert info.value.field == "depth_dir"
    return info.value


# ---------------------------------------------------------------------------------------------- good folders


def test_a_good_folder_loads_in_natural_order(tmp_path: Path):
    folder = tmp_path / "depth"
    for i in range(12):  # 0.npy .. 11.npy: "10" after "9", not after "1"
        d = good_map(1.0 + i)
        save_npy(folder, f"{i}.npy", d[None] if i % 2 else d)  # (1, H, W) is accepted too
    (folder / "notes.txt").write_text("ignored")
    (folder / ".hidden.npy").write_bytes(b"ignored")
    (folder / "sub").mkdir()
    depth = check_depth_dir(folder, VIDEO, 12)
    assert [f.path.name for f in depth.files] == [f"{i}.npy" for i in range(12)]
    assert len(depth) == 12 and depth.shape == (36, 64)
    out = load_depth_dir(depth, STORED)
    assert out.shape == (12, *STORED) and out.dtype == np.float32
    assert np.isinf(out[:, 0]).all()  # rows 0 (zero) and 1 (+inf) of 36 -> row 0 of 18: no surface
    np.testing.assert_array_equal(out[:, 5, 5], np.arange(1.0, 13.0))
    assert load_depth_dir(depth, STORED, count=3).shape == (3, *STORED)


@pytest.mark.parametrize("size", [(36, 64), (18, 32), (9, 16), (37, 66), (518, 924)], ids=str)
def test_sizes_with_the_frames_aspect_are_accepted(tmp_path: Path, size: tuple[int, int]):
    folder = tmp_path / "depth"
    for i in range(2):
        save_npy(folder, f"{i}.npy", good_map(3.0, size))
    out = load_depth_dir(check_depth_dir(folder, VIDEO, 2), STORED)
    assert out.shape == (2, *STORED) and np.isfinite(out[:, 5:]).all()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.uint16, np.int32])
def test_numeric_dtypes_are_accepted(tmp_path: Path, dtype):
    folder = tmp_path / "depth"
    save_npy(folder, "0.npy", np.full((36, 64), 1500, dtype))
    out = load_depth_dir(check_depth_dir(folder, VIDEO, 1), STORED)
    assert out.dtype == np.float32 and np.isfinite(out).all() and (out > 0).all()


def test_sixteen_bit_pngs_are_read(tmp_path: Path):
    folder = tmp_path / "depth"
    folder.mkdir()
    for i in range(3):
        mm = np.full((36, 64), 1000 * (i + 1), np.uint16)
        mm[:2] = 0  # no measurement
        Image.fromarray(mm).save(folder / f"frame_{i:03d}.png")
    depth = check_depth_dir(folder, VIDEO, 3)
    out = load_depth_dir(depth, STORED)
    np.testing.assert_array_equal(out[:, 5, 5], [1000.0, 2000.0, 3000.0])
    assert np.isinf(out[:, 0]).all()


def test_extra_files_are_fine_when_the_video_was_cut(tmp_path: Path):
    folder = depth_folder(tmp_path, count=6)
    depth = check_depth_dir(folder, VIDEO, 4, allow_extra=True)
    assert load_depth_dir(depth, STORED, count=4).shape == (4, *STORED)
    refused(folder, r"has 6 .npy files but the video has 4 frame\(s\): 2 too many \(the first extra one is d4.npy\)")


def test_the_count_can_be_checked_after_decoding(tmp_path: Path):
    depth = check_depth_dir(depth_folder(tmp_path, count=4), VIDEO)  # frame count unknown from the header
    check_frame_count(depth, 4)
    with pytest.raises(SceneError, match=r"has 4 .npy file\(s\) but the video has 5 frame\(s\): 1 missing"):
        check_frame_count(depth, 5)


# ---------------------------------------------------------------------------------------------- bad folders


def test_not_a_folder(tmp_path: Path):
    refused(tmp_path / "nope", "depth folder .*nope does not exist or is not a folder")
    (tmp_path / "file").write_text("x")
    refused(tmp_path / "file", "does not exist or is not a folder")


def test_no_depth_files(tmp_path: Path):
    folder = tmp_path / "depth"
    folder.mkdir()
    refused(folder, r"has no depth files \(one .npy or 16-bit .png per frame\); found nothing")
    for i in range(3):
        (folder / f"{i}.exr").write_bytes(b"\x76\x2f\x31\x01")
    refused(folder, "found 3 .exr")
    np.savez(folder / "all.npz", a=np.ones((36, 64)))
    refused(folder, "save one .npy per frame")


def test_mixed_kinds(tmp_path: Path):
    folder = depth_folder(tmp_path, count=2)
    Image.fromarray(np.full((36, 64), 9, np.uint16)).save(folder / "d2.png")
    refused(folder, r"mixes .npy and .png files \(2, 1\)")


@pytest.mark.parametrize(
    "size, message",
    [
        ((36, 60), r"depth file d0.npy: 60x36 \(aspect 1.667\) does not match the video's 64x36 \(aspect 1.778\)"),
        ((64, 36), r"36x64 .*\(it looks transposed: save \(height, width\) arrays\)"),
        ((36, 36), r"36x36 \(aspect 1.000\)"),
    ],
)
def test_wrong_size(tmp_path: Path, size, message):
    folder = tmp_path / "depth"
    for i in range(4):
        save_npy(folder, f"d{i}.npy", good_map(2.0, size))
    refused(folder, message)


def test_sizes_that_differ(tmp_path: Path):
    folder = depth_folder(tmp_path, count=4)
    save_npy(folder, "d2.npy", good_map(2.0, (18, 32)))
    refused(folder, "depth file d2.npy: 32x18, but d0.npy is 64x36; every depth map must have the same size")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: np.zeros_like(d), "depth file d2.npy: all zero; is it the right file"),
        (lambda d: np.where(d > 0, np.inf, 0).astype(np.float32), r"d2.npy: no finite depth > 0 \(only 0 and \+inf\)"),
        (lambda d: np.where(np.arange(64) == 7, np.nan, d).astype(np.float32),
         r"d2.npy: 36 NaN value\(s\), the first at row 0, column 7"),
        (lambda d: np.where(np.arange(64) == 3, -np.inf, d).astype(np.float32), r"d2.npy: 36 -inf value\(s\)"),
        (lambda d: np.where(np.arange(64) == 3, -0.5, d).astype(np.float32),
         r"d2.npy: 36 negative value\(s\) \(min -0.5\), the first at row 0, column 3"),
        (lambda d: np.full(d.shape, -4, np.int16), r"d2.npy: 2304 negative value\(s\)"),
    ],
    ids=["all-zero", "all-sky", "nan", "neg-inf", "negative", "negative-int"],
)  # fmt: skip
def test_bad_values(tmp_path: Path, make, message):
    folder = depth_folder(tmp_path)
    save_npy(folder, "d2.npy", make(good_map()))
    error = refused(folder, message)
    assert "d2.npy" in error.message


def test_infinity_is_sky_and_allowed(tmp_path: Path):
    folder = depth_folder(tmp_path, count=1)
    d = good_map()
    d[10:] = np.inf
    save_npy(folder, "d0.npy", d)
    out = load_depth_dir(check_depth_dir(folder, VIDEO, 1), STORED)
    assert np.isinf(out[0, 6:]).all() and np.isfinite(out[0, 1:5]).all()


@pytest.mark.parametrize(
    "arr, message",
    [
        (np.ones((36, 64), bool), "dtype bool is not a depth dtype"),
        (np.ones((36, 64), np.complex64), "dtype complex64 is not a depth dtype"),
        (np.full((36, 64), "abc"), "dtype <U3 is not a depth dtype"),
        (np.ones((36, 64), np.uint8), r"8-bit values \(uint8\) look like an image, not depth"),
        (np.zeros((36, 64), [("a", np.float32), ("b", np.float32)]), r"dtype \[.*\] is not a depth dtype"),
        (np.ones((2, 36, 64), np.float32), r"expected a 2D numeric depth map \(H, W\), got float32 \(2, 36, 64\)"),
        (np.ones((0, 64), np.float32), r"an empty array \(0, 64\)"),
    ],
    ids=["bool", "complex", "str", "uint8", "structured", "3d", "empty"],
)
def test_wrong_dtype_or_shape(tmp_path: Path, arr, message):
    folder = depth_folder(tmp_path)
    save_npy(folder, "d1.npy", arr)
    refused(folder, f"depth file d1.npy: {message}")


class _Evil:
    """Unpickling this would create a file: proof that nothing is ever unpickled."""

    marker: Path

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickles_are_refused_never_loaded(tmp_path: Path):
    folder = depth_folder(tmp_path)
    marker = tmp_path / "pwned"
    _Evil.marker = marker
    np.save(folder / "d1.npy", np.array([_Evil()], dtype=object), allow_pickle=True)
    refused(folder, "depth file d1.npy: holds Python objects \\(a pickle\\), which are never loaded")
    (folder / "d1.npy").write_bytes(pickle.dumps(_Evil()))  # a bare pickle named .npy
    refused(folder, r"depth file d1.npy: not a .npy array")
    assert not marker.exists()


def test_non_array_and_truncated_files(tmp_path: Path):
    folder = depth_folder(tmp_path)
    (folder / "d3.npy").write_text("depth,values\n1,2\n")
    refused(folder, r"depth file d3.npy: not a .npy array \(")
    data = (folder / "d2.npy").read_bytes()
    save_npy(folder, "d3.npy", good_map())
    (folder / "d2.npy").write_bytes(data[:-100])
    refused(folder, r"depth file d2.npy: truncated \(\d+ of \d+ bytes\)")


def test_bad_pngs(tmp_path: Path):
    folder = tmp_path / "depth"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((36, 64), 500, np.uint16)).save(folder / f"{i}.png")
    Image.fromarray(np.full((36, 64), 50, np.uint8)).save(folder / "1.png")
    refused(folder, r"depth file 1.png: a PNG of mode L \(8-bit or colour\) looks like an image")
    Image.fromarray(np.zeros((36, 64, 3), np.uint8)).save(folder / "1.png")
    refused(folder, "depth file 1.png: a PNG of mode RGB")
    Image.fromarray(np.zeros((36, 64, 3), np.uint8)).save(folder / "1.png", format="JPEG")
    refused(folder, "depth file 1.png: a JPEG image named .png")
    (folder / "1.png").write_bytes(b"not a png")
    refused(folder, "depth file 1.png: not a readable PNG")
    Image.fromarray(np.full((36, 64), 500, np.uint16)).save(folder / "1.png")
    data = (folder / "1.png").read_bytes()
    (folder / "1.png").write_bytes(data[: len(data) // 2])
    refused(folder, "depth file 1.png: cannot read it")


def test_missing_frames_are_named(tmp_path: Path):
    folder = tmp_path / "depth"
    for i in (1, 2, 4, 5, 7):
        save_npy(folder, f"frame_{i:04d}.npy", good_map())
    refused(folder, r"has 5 .npy file\(s\) but the video has 7 frame\(s\): 2 missing \(frame numbers 3, 6 have no "
                    r"file, counting from 1\)", count=7)  # fmt: skip
    refused(folder, r"has 5 .npy file\(s\) but the video has 8 frame\(s\): 3 missing \(frame numbers 3, 6, 8", count=8)
    unnumbered = tmp_path / "plain"
    for name in ("a", "b"):
        save_npy(unnumbered, f"{name}.npy", good_map())
    error = refused(unnumbered, r"has 2 .npy file\(s\) but the video has 3 frame\(s\): 1 missing; give one", count=3)
    assert "frame numbers" not in error.message


def test_two_files_for_one_frame(tmp_path: Path):
    folder = depth_folder(tmp_path, count=3)
    save_npy(folder, "d01.npy", good_map())
    refused(folder, "depth folder .*: d01.npy and d1.npy are both frame 1")


def test_natural_key():
    names = ["f10.npy", "f2.npy", "f1.npy", "f002.npy", "a.npy"]
    assert sorted(names, key=natural_key) == ["a.npy", "f1.npy", "f002.npy", "f2.npy", "f10.npy"]


# ---------------------------------------------------------------------------------------------- before decoding


def test_a_bad_folder_fails_from_headers_before_the_video_is_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The importer's order: probe the video's header, check the folder; nothing is decoded or loaded."""
    video = write_video(tmp_path / "clip.mp4", np.zeros((5, 36, 64, 3), np.uint8), 10.0)
    header = probe_video(video)
    assert (header.size, header.frame_count, header.fps) == (VIDEO, 5, 10.0)
    folder = tmp_path / "depth"
    for i in range(200):
        save_npy(folder, f"{i:04d}.npy", np.ones((36, 64), np.float32))
    save_npy(folder, "0199.npy", np.ones((36, 64), np.uint8))  # the last file is wrong

    def no_loading(*a, **kw):
        raise AssertionError("a header check must not load arrays")

    monkeypatch.setattr(np, "load", no_loading)
    start = time.perf_counter()
    with pytest.raises(SceneError, match="depth file 0199.npy: 8-bit values"):
        check_depth_dir(folder, header.size, header.frame_count)
    assert time.perf_counter() - start < 2.0  # 200 headers: milliseconds on an idle machine


def test_probe_video_refuses_what_is_not_a_video(tmp_path: Path):
    with pytest.raises(SceneError, match="does not exist or is not a file"):
        probe_video(tmp_path / "none.mp4")
    (tmp_path / "text.mp4").write_text("hello")
    with pytest.raises(SceneError, match="text.mp4: not a video FFmpeg can read"):
        probe_video(tmp_path / "text.mp4")


# ---------------------------------------------------------------------------------------------- depth model


def make_model(path: Path, *, channels: int = 3, dtype: str = "float", out: str = "disparity",
               height: int | str = "h", width: int | str = "w") -> Path:  # fmt: skip
    """A tiny ONNX 'depth model': image (1, C, H, W) -> conv -> softplus [-> Neg | Log(Neg)] -> (1, H, W)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    init = [
        numpy_helper.from_array(rng.normal(0, 0.5, (1, channels, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([0.1], np.float32), "b"),
        numpy_helper.from_array(np.array([1], np.int64), "axes"),
    ]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Softplus", ["conv"], ["soft"])]  # fmt: skip
    last = "soft"
    if out in ("negative", "nan"):
        nodes.append(helper.make_node("Neg", [last], ["neg"]))
        last = "neg"
    if out == "nan":
        nodes.append(helper.make_node("Log", [last], ["log"]))
        last = "log"
    inp_name = "image"
    if dtype != "float":
        nodes.insert(0, helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT))
    else:
        nodes.insert(0, helper.make_node("Identity", ["image"], ["x"]))
    out_shape: list = [1, height, width]
    if out == "rank2":
        nodes.append(helper.make_node("Squeeze", [last, "axes"], ["sq"]))
        init.append(numpy_helper.from_array(np.array([0], np.int64), "axes0"))
        nodes.append(helper.make_node("Squeeze", ["sq", "axes0"], ["disparity"]))
        out_shape = [height, width]
    else:
        nodes.append(helper.make_node("Squeeze", [last, "axes"], ["disparity"]))
    elem = TensorProto.FLOAT if dtype == "float" else TensorProto.UINT8
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info(inp_name, elem, [1, channels, height, width])],
        [helper.make_tensor_value_info("disparity", TensorProto.FLOAT, out_shape)], initializer=init,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


FRAMES = np.random.default_rng(2).integers(0, 256, (2, 18, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("fixed", [False, True], ids=["dynamic", "fixed"])
def test_a_good_model_runs(tmp_path: Path, fixed: bool):
    size = dict(height=28, width=42) if fixed else {}
    model = load_depth_model(make_model(tmp_path / "m.onnx", **size))
    assert model.fixed_size == ((28, 42) if fixed else None)
    calls: list[tuple] = []
    depth = run_depth_model(model, FRAMES, lambda *a: calls.append(a))
    assert depth.shape == (2, 18, 32) and np.isfinite(depth).all() and (depth > 0).all()
    np.testing.assert_allclose(np.median(depth, axis=(1, 2)), ud.SCENE_MEDIAN_DEPTH_M, rtol=1e-3)
    assert calls[-1] == ("depth", 2, 2)


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(channels=1), r"input 'image' must be NCHW with 3 channels, got shape \[1, 1, 'h', 'w'\]"),
        (dict(dtype="uint8"), r"input 'image' must be float32 \(tensor\(float\)\), got tensor\(uint8\)"),
        (dict(out="rank2"), r"output must be \(1, H, W\) or \(1, 1, H, W\) disparity, declared \['h', 'w'\]"),
    ],
)
def test_bad_models_are_refused_at_load(tmp_path: Path, kw, message):
    with pytest.raises(SceneError, match=f"depth model m.onnx: {message}") as info:
        load_depth_model(make_model(tmp_path / "m.onnx", **kw))
    assert info.value.field == "depth_model"


def test_models_that_are_not_models(tmp_path: Path):
    with pytest.raises(SceneError, match="does not exist or is not a file"):
        load_depth_model(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    with pytest.raises(SceneError, match="depth model junk.onnx: cannot load it"):
        load_depth_model(tmp_path / "junk.onnx")


@pytest.mark.parametrize(
    "out, message",
    [
        ("nan", r"output for frame 0 has \d+ NaN or infinite value\(s\)"),
        ("negative", r"output for frame 0 has no positive disparity \(all <= 0\)"),
    ],
)
def test_bad_model_outputs_name_the_frame(tmp_path: Path, out: str, message: str):
    model = load_depth_model(make_model(tmp_path / "m.onnx", out=out))
    with pytest.raises(SceneError, match=f"depth model m.onnx: {message}"):
        run_depth_model(model, FRAMES)


def test_depth_folder_type_is_what_check_returns(tmp_path: Path):
    assert isinstance(check_depth_dir(depth_folder(tmp_path), VIDEO, 4), DepthFolder)
