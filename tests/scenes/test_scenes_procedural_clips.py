"""Ground-truth clips: known paths, exact depth that agrees between frames, moving masks, a real MP4."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.geometry.conventions import wire_to_cv
from starbridge.scenes.procedural.clips import CLIP_KINDS, ClipConfig, clip_path, render_clip


def test_every_path_starts_at_the_origin_and_only_the_pan_stays_there():
    for kind in CLIP_KINDS:
        poses = clip_path(ClipConfig(kind=kind, frames=20))
        assert np.allclose(poses[0], np.eye(4))
        moved = np.linalg.norm(poses[:, :3, 3], axis=1).max()
        assert (moved == 0.0) == (kind == "pan"), kind
    pan = clip_path(ClipConfig(kind="pan", frames=20))
    forward = pan[-1, :3, :3] @ np.array([0.0, 0.0, -1.0])
    assert forward == pytest.approx([-1.0, 0.0, 0.0], abs=1e-9)  # 90 degrees to the left


def test_depth_of_one_frame_lands_on_the_same_surface_in_another():
    """Unproject frame 0 with its depth, project into frame 5: the depths there agree (static pixels)."""
    clip = render_clip(ClipConfig(kind="handheld", frames=6, width=96, height=54, shake_m=0.0, shake_deg=0.0))
    intr = clip.intrinsics
    v, u = np.mgrid[0 : intr.height, 0 : intr.width]
    d = clip.depth[0]
    ok = np.isfinite(d) & ~clip.moving[0]
    x = (u + 0.5 - intr.cx) / intr.fx * d
    y = (v + 0.5 - intr.cy) / intr.fy * d
    pts_cv = np.stack([x[ok], y[ok], d[ok], np.ones(ok.sum())])
    c2w0, c2w5 = (wire_to_cv(p) for p in (clip.poses[0], clip.poses[5]))
    cam5 = np.linalg.inv(c2w5) @ c2w0 @ pts_cv
    z = cam5[2]
    pu = np.floor(cam5[0] / z * intr.fx + intr.cx).astype(int)
    pv = np.floor(cam5[1] / z * intr.fy + intr.cy).astype(int)
    inside = (z > 0) & (pu >= 0) & (pu < intr.width) & (pv >= 0) & (pv < intr.height)
    rel = np.abs(clip.depth[5][pv[inside], pu[inside]] - z[inside]) / z[inside]
    assert inside.mean() > 0.5 and np.median(rel) < 0.01


def test_moving_masks_mark_the_moving_objects_only():
    clip = render_clip(ClipConfig(kind="moving", frames=4, width=96, height=54))
    assert 0.0 < clip.moving.mean() < 0.2
    assert not clip.moving[:, : clip.intrinsics.height // 4].any()  # the sky band holds nothing that moves
    assert not (clip.moving & ~np.isfinite(clip.depth)).any()


def test_a_clip_encodes_to_a_real_mp4(tmp_path: Path):
    clip = render_clip(ClipConfig(kind="dolly", frames=8, width=96, height=54))
    path = clip.write_mp4(tmp_path / "dolly.mp4")
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 8 and decoded[0].shape == (54, 96, 3)
    got, truth = np.stack(decoded).astype(int), clip.frames.astype(int)
    err = np.abs(got - truth).mean()
    assert err < 8.0  # H.264 with 4:2:0 chroma on a tiny, detailed frame
    assert np.abs(got[:, ::-1] - truth).mean() > 2 * err and np.abs(got[:, :, ::-1] - truth).mean() > 2 * err
    assert not list(tmp_path.glob(".*tmp*"))


def test_bad_configs_are_refused():
    with pytest.raises(InvalidArgument, match="clip kind"):
        ClipConfig(kind="spin")
    with pytest.raises(InvalidArgument):
        ClipConfig(frames=1)
