"""Carrying moving masks along time (capture/dynamic_carry.py), on frames drawn here with known truth.

A plain red disc slides right and grows across a grey, striped background past a static blue disc; the
frame-to-frame votes would flag its leading crescent only (what they do on a plain mover that overlaps
itself), so the input masks are the whole disc in the first frame and a crescent after it. Carried, every
frame's disc is whole; the blue disc and the background are left alone. The procedural clips' numbers (true
depth, so only the masks are measured) are in test_capture_dynamic.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.scenes.capture.dynamic import DynamicConfig
from starbridge.scenes.capture.dynamic_carry import carry_masks

CFG = DynamicConfig()
SETTINGS = {"grow": CFG.carry_grow, "colour": CFG.carry_colour, "ratio": CFG.carry_ratio,
            "samples": CFG.carry_samples, "min_pixels": 20}  # fmt: skip

H, W, N = 90, 160, 8
RED, BLUE = (200, 30, 25), (40, 60, 200)


def _disc(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(frames, red-disc truth, flagged input, static blue disc)."""
    frames = np.empty((N, H, W, 3), np.uint8)
    truth = np.zeros((N, H, W), bool)
    flagged = np.zeros((N, H, W), bool)
    blue = _disc(112, 45, 12)
    stripes = (np.arange(H) // 3 % 2 == 0)[:, None] & np.ones((1, W), bool)
    for k in range(N):
        frames[k] = np.where(stripes[..., None], 120, 140)
        frames[k][blue] = BLUE
        red = _disc(40 + 3 * k, 45, 14 + k)
        frames[k][red] = RED
        truth[k] = red
        xx = np.arange(W)[None, :]
        flagged[k] = red if k == 0 else red & (xx > 40 + 3 * k + 0.5 * (14 + k))  # the leading crescent
    return frames, truth, flagged, blue


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_a_plain_mover_flagged_at_its_edge_is_carried_whole() -> None:
    frames, truth, flagged, blue = _scene()
    carried = carry_masks(frames, flagged, **SETTINGS)
    before = [_iou(flagged[k], truth[k]) for k in range(1, N)]
    after = [_iou(carried[k], truth[k]) for k in range(N)]
    assert max(before) < 0.4  # the crescents alone
    assert min(after) > 0.95
    assert not (carried & blue[None]).any()  # the static blue disc beside it is not the red object
    assert not (carried & ~truth).any()  # nor the background


def test_nothing_flagged_stays_nothing_and_flags_are_kept() -> None:
    frames, truth, flagged, _ = _scene()
    empty = np.zeros_like(flagged)
    assert not carry_masks(frames, empty, **SETTINGS).any()
    # an object flagged in one frame only is not carried into frames where it is not (the colour decides)
    one = np.zeros_like(flagged)
    one[3] = truth[3]
    frames_once = np.repeat(frames[:1], N, axis=0).copy()
    frames_once[:, truth[0]] = (130, 130, 130)  # the red disc exists in frame 3 only
    frames_once[3] = frames[3]
    carried = carry_masks(frames_once, one, **SETTINGS)
    assert (carried[3] == truth[3]).all() and not carried[[0, 1, 2, 4, 5, 6, 7]].any()


@pytest.mark.parametrize(
    "setting", [{"carry_grow": -0.1}, {"carry_colour": 0.0}, {"carry_ratio": 0.0}, {"carry_samples": 0}]
)
def test_bad_carry_settings_are_refused(setting: dict[str, float]) -> None:
    with pytest.raises(InvalidArgument):
        DynamicConfig(**setting)  # type: ignore[arg-type]
