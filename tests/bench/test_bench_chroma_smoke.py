"""bench/bench_chroma.py: at toy size, a clip decoded both ways (the rebuilt colour nearer the rendered frames)
and imported both ways on one tracking; bad arguments refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_chroma as bc  # noqa: E402
from starbridge.scenes import chroma  # noqa: E402


def test_plain_chroma_is_undone_on_the_way_out() -> None:
    original = chroma.rebuilds
    with pytest.raises(RuntimeError), bc.plain_chroma():
        assert chroma.rebuilds is not original
        raise RuntimeError
    assert chroma.rebuilds is original


@pytest.mark.parametrize("argv", [["--clips", "w0:spin"], ["--frames", "4"], ["--crf", "60"]])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        bc.main(argv)


@pytest.mark.slow
def test_both_decodes_on_one_tracking(tmp_path: Path) -> None:
    clip = bc.parse_clip("w0:handheld:160x90")
    report = bc.run(tmp_path, [clip], frames=12)
    row = report["clips"][clip.name]
    plain, rebuilt = row["frames"]["plain"], row["frames"]["rebuilt"]
    assert rebuilt["chroma"] > plain["chroma"] + 0.5 and rebuilt["rgb"] > plain["rgb"]
    # the same cameras under both decodes (to the bit), the frames' own colour apart
    assert row["plain"]["rotation_error_deg_median"] == row["rebuilt"]["rotation_error_deg_median"]
    assert row["plain"]["novel_psnr_exact_decoded_frames"] != row["rebuilt"]["novel_psnr_exact_decoded_frames"]
    on_disk = json.loads(next(tmp_path.glob("chroma-*.json")).read_text())
    assert on_disk["summary"]["rebuilt"]["clips"] == 1 and on_disk["machine"]["cpu_count"]
