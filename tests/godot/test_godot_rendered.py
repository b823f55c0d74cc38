"""The demo level rendered for real (Compatibility renderer, OpenGL on a virtual screen) with the
neural backdrop from a live `starbridge serve`, checked from the pixels of the screenshots:

- the backdrop fills the background behind the level and never covers its geometry;
- it is the frame the backend made for that camera, upright and not mirrored (compared with the
  backend's own render for the pose, and with the reprojection computed here in numpy);
- it stays locked to the world while the camera turns: a late frame reprojected to the turned camera
  matches a fresh frame for that camera better than the same late frame drawn without reprojection.

Screenshots stay in the test's tmp folder (tests/godot/drivers/render_driver.gd lists them).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import godot_expect as expect  # noqa: E402
import godot_tool as tool  # noqa: E402

Image = pytest.importorskip("PIL.Image", reason="Pillow reads the screenshots (pip install -e '.[test]')")

RESOLUTION = (640, 360)
MAGENTA = np.array([255, 0, 255])
RUN_TIMEOUT_S = 120


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.float64)


def _background(mask_shot: np.ndarray, erode: int = 2) -> np.ndarray:
    """Pixels where the flat magenta backdrop shows, minus a border next to the geometry."""
    mask = np.all(np.abs(mask_shot - MAGENTA) <= 3, axis=-1)
    for _ in range(erode):
        inner = mask.copy()
        inner[1:] &= mask[:-1]
        inner[:-1] &= mask[1:]
        inner[:, 1:] &= mask[:, :-1]
        inner[:, :-1] &= mask[:, 1:]
        mask = inner
    return mask


@pytest.fixture(scope="module")
def shots(godot, godot_project, xvfb_display, demo_store, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("godot-rendered")
    backend = tool.ServeProcess(demo_store, tool.free_port(), tool.free_port(), work / "serve.log").start()
    try:
        env = {**os.environ, "DISPLAY": xvfb_display}
        proc = tool.run_script(
            godot, godot_project, tool.TESTS_DIR / "drivers" / "render_driver.gd",
            [f"--endpoint={backend.endpoint}", f"--out={work}", "--size=320x180"],
            timeout=RUN_TIMEOUT_S, env=env, rendered=True, resolution=f"{RESOLUTION[0]}x{RESOLUTION[1]}",
        )  # fmt: skip
    finally:
        backend.stop()
    output = proc.stdout + proc.stderr
    assert (work / "report.json").exists(), f"no report (exit {proc.returncode}):\n{output[-4000:]}"
    report = tool.read_json(work / "report.json")
    assert report["ok"], report.get("failed", report)
    assert not tool.errors_in(output), tool.errors_in(output)
    print(f"\nscreenshots: {work}")
    return {"dir": work, "report": report, "store": demo_store}


def _frame(shots: dict, name: str) -> tuple[dict, np.ndarray]:
    return expect.load_dump(shots["dir"] / name)


def _predicted(shots: dict, frame_name: str, shot: str) -> tuple[np.ndarray, np.ndarray]:
    meta, pixels = _frame(shots, frame_name)
    report = shots["report"]
    aspect = meta["aspect"] or meta["width"] / meta["height"]
    return expect.reproject(
        pixels, np.array(meta["rotation"]), meta["fov"], aspect,
        np.array(report["shots"][shot]["rotation"]), report["camera_fov"], RESOLUTION,
    )  # fmt: skip


def test_screenshots_are_the_window_size(shots):
    assert shots["report"]["viewport"] == list(RESOLUTION)
    for name in ("a_fresh", "a_mask", "b_late_reprojected", "b_late_plain", "b_mask", "b_fresh", "turn_0"):
        assert _png(shots["dir"] / f"{name}.png").shape == (RESOLUTION[1], RESOLUTION[0], 3), name
    assert shots["report"]["textures_made"] == 1 and shots["report"]["uploads"] > 2


def test_frames_shown_are_the_backends_frames_for_the_pose(shots):
    for name in ("frame_a", "frame_b"):
        meta, pixels = _frame(shots, name)
        reference = expect.backend_frame(shots["store"], meta)
        error = expect.mean_abs(pixels, reference)
        assert error < 2.0, f"{name}: {error:.2f} levels from the backend's render of that pose"


def test_backdrop_fills_the_background_and_stays_behind_the_geometry(shots):
    fresh, mask_shot = _png(shots["dir"] / "a_fresh.png"), _png(shots["dir"] / "a_mask.png")
    background = _background(mask_shot, erode=0)
    share = background.mean()
    assert 0.3 < share < 0.95, f"the level should cover part of the view, the backdrop the rest ({share:.2f})"
    # Where the level is, the backdrop changes nothing: it is drawn behind all geometry.
    geometry = ~background
    for _ in range(2):  # keep away from anti-aliased silhouettes
        geometry[1:-1, 1:-1] &= geometry[:-2, 1:-1] & geometry[2:, 1:-1] & geometry[1:-1, :-2] & geometry[1:-1, 2:]
    assert np.abs(fresh - mask_shot)[geometry].mean() < 1.0
    # Where the background is, there is a picture: nothing magenta, nothing flat.
    assert not np.all(np.abs(fresh - MAGENTA) <= 3, axis=-1)[background].any()
    assert fresh[background].std(axis=0).mean() > 15


def test_backdrop_is_the_frame_upright_and_not_mirrored(shots):
    fresh = _png(shots["dir"] / "a_fresh.png")
    background = _background(_png(shots["dir"] / "a_mask.png"))
    predicted, inside = _predicted(shots, "frame_a", "a_fresh")
    region = background & inside
    error = np.abs(fresh - predicted).mean(axis=-1)[region].mean()
    meta, pixels = _frame(shots, "frame_a")
    flips = {}
    for label, flipped in (("upside down", pixels[::-1]), ("mirrored", pixels[:, ::-1])):
        wrong, _ = expect.reproject(
            flipped, np.array(meta["rotation"]), meta["fov"], meta["aspect"] or meta["width"] / meta["height"],
            np.array(shots["report"]["shots"]["a_fresh"]["rotation"]), shots["report"]["camera_fov"], RESOLUTION,
        )  # fmt: skip
        flips[label] = np.abs(fresh - wrong).mean(axis=-1)[region].mean()
    print(f"\nbackdrop vs frame: {error:.2f} levels; {flips}")
    assert error < 4.0, f"the backdrop differs from the frame by {error:.2f} levels on average"
    for label, wrong_error in flips.items():
        assert wrong_error > 3 * error + 5, f"{label} fits about as well ({wrong_error:.2f} vs {error:.2f})"


def test_reprojection_keeps_a_late_frame_locked_to_the_world(shots):
    late = _png(shots["dir"] / "b_late_reprojected.png")
    plain = _png(shots["dir"] / "b_late_plain.png")
    fresh = _png(shots["dir"] / "b_fresh.png")
    background = _background(_png(shots["dir"] / "b_mask.png"))
    # The GPU reprojection is the homography computed here.
    predicted, inside = _predicted(shots, "frame_a", "b_late_reprojected")
    shader_error = np.abs(late - predicted).mean(axis=-1)[background & inside].mean()
    assert shader_error < 4.0, f"the sky shader's reprojection is {shader_error:.2f} levels off"
    # The late frame, reprojected, matches the fresh frame far better than drawn as it is.
    reprojected_error = np.abs(late - fresh).mean(axis=-1)[background & inside].mean()
    plain_error = np.abs(plain - fresh).mean(axis=-1)[background & inside].mean()
    whole_reprojected = np.abs(late - fresh).mean(axis=-1)[background].mean()
    whole_plain = np.abs(plain - fresh).mean(axis=-1)[background].mean()
    print(
        f"\nlate frame vs fresh frame, background the late frame covers: reprojected {reprojected_error:.2f}, "
        f"plain {plain_error:.2f} levels; whole background: {whole_reprojected:.2f} vs {whole_plain:.2f}; "
        f"shader vs numpy {shader_error:.2f}"
    )
    assert reprojected_error < 0.5 * plain_error
    assert whole_reprojected < whole_plain
    assert reprojected_error < 8.0


def test_turning_camera_keeps_a_backdrop(shots):
    for k in range(4):
        shot = _png(shots["dir"] / f"turn_{k}.png")
        assert not np.all(np.abs(shot - MAGENTA) <= 3, axis=-1).any()
        assert shot[:40].std(axis=(0, 1)).mean() > 5, f"turn_{k}: the sky region is flat"
