"""The same frames encode to the same bytes (scenes/video.py's X264_REPRODUCIBLE), for a clip written with
VideoWriter and a bundle's colour video, also when other encodes and decodes ran in between in the process.

Without the option libx264's assembly made the output vary from encode to encode (several different files out
of five for one clip), so a benchmark clip, and the camera tracking that reads it, changed from run to run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from starbridge.scenes import bundle as bundle_mod
from starbridge.scenes.procedural.clips import ClipConfig, render_clip
from starbridge.scenes.video import decode_video, write_video

av = pytest.importorskip("av")
pytestmark = pytest.mark.skipif("libx264" not in av.codecs_available, reason="this PyAV has no libx264")

ENCODES = 6


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return render_clip(ClipConfig(kind="dolly", frames=40, width=320, height=180, world_seed=2)).frames


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_clip_encodes_to_the_same_bytes_every_time(frames: np.ndarray, tmp_path: Path) -> None:
    digests = []
    for k in range(ENCODES):
        path = write_video(tmp_path / f"clip{k}.mp4", frames, 30.0, crf=16)
        decode_video(path, 320, 0, lambda *a: None)  # a decode between encodes (it made them differ)
        digests.append(_digest(path))
    assert len(set(digests)) == 1, f"{len(set(digests))} different files from {ENCODES} encodes of one clip"


@pytest.mark.skipif("libx264rgb" not in av.codecs_available, reason="this PyAV has no libx264rgb")
def test_a_bundles_colour_video_is_the_same_every_time(frames: np.ndarray, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "source.mp4", frames, 30.0)
    digests = []
    for k in range(ENCODES):
        folder = tmp_path / f"bundle{k}"
        folder.mkdir()
        meta = bundle_mod._write_colour(folder, frames, 30.0, lossless=False, crf=bundle_mod.COLOUR_CRF)
        decode_video(clip, 320, 0, lambda *a: None)
        digests.append(_digest(folder / meta["file"]))
    assert len(set(digests)) == 1, f"{len(set(digests))} different colour videos from {ENCODES} writes"
