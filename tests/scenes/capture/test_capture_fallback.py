"""A clip that cannot be tracked still imports, as a fixed camera at the assumed lens's field of view, and says so."""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.scenes.capture.pipeline import capture_video


@pytest.mark.parametrize(("size", "fov"), [((90, 160), 44.38), ((160, 90), 71.90)])
def test_an_untrackable_clip_is_a_fixed_camera_at_a_phone_lens(size: tuple[int, int], fov: float) -> None:
    frames = np.full((12, *size, 3), 40, np.uint8)  # nothing to track: blank and dark
    cap = capture_video(frames, fps=25.0)
    assert cap.rotation_only and np.isinf(cap.depth).all()
    assert cap.intrinsics.vertical_fov_deg == pytest.approx(fov, abs=0.01)  # landscape / portrait
    warning = cap.report["warnings"][0]
    assert "camera tracking failed" in warning and f"{fov:.1f} degrees (a 26 mm-equivalent lens" in warning
    # a given field of view is used as is, and no lens is mentioned
    given = capture_video(frames, fps=25.0, vertical_fov_deg=50.0)
    assert given.intrinsics.vertical_fov_deg == pytest.approx(50.0) and "lens" not in given.report["warnings"][0]
