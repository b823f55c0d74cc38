"""bench/bench_capture_variants.py: settings parsed with clear errors, and at toy size every variant imported on
the one tracking of its clip."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_capture_variants as bcv  # noqa: E402
from starbridge.errors import InvalidArgument  # noqa: E402


def test_variants_and_clips_are_parsed() -> None:
    name, config, settings = bcv.parse_variant(
        'few=depth.source_views=2;depth.forward_best_views=2;depth.regions="off"'
    )
    assert name == "few" and config.depth.source_views == 2 and config.depth.regions == "off"
    assert settings == {"depth.source_views": 2, "depth.forward_best_views": 2, "depth.regions": "off"}
    assert config.tracking == bcv.CaptureConfig().tracking
    _, config, _ = bcv.parse_variant("pct=depth.region_percentiles=(10, 90)")
    assert config.depth.region_percentiles == (10, 90)
    _, config, settings = bcv.parse_variant('p=moving_depth.ground.precision_rounds=3;moving_depth.no_contact="stereo"')
    assert config.moving_depth.ground.precision_rounds == 3 and config.moving_depth.no_contact == "stereo"
    assert config.moving_depth.ground.plane_tol == bcv.CaptureConfig().moving_depth.ground.plane_tol  # the rest kept
    assert settings == {"moving_depth.ground.precision_rounds": 3, "moving_depth.no_contact": "stereo"}
    assert bcv.parse_clip("w2:dolly:512x288") == bcv.Clip(2, "dolly", 512, 288)
    assert bcv.parse_clip("w1:orbit").name == "w1:orbit" and len(bcv.ALL_CLIPS) == 16


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("nothing", "expected NAME="),
        ("x=depth", "not SECTION.KEY=VALUE"),
        ("x=optics.fov=3", "SECTION one of"),
        ("x=depth.no_such=1", "has no setting 'no_such'"),
        ("x=moving_depth.ground.no_such=1", "GroundSearch has no setting 'no_such'"),
        ("x=moving_depth.no_contact.deeper=1", "has no setting 'deeper'"),
        ("x=moving_depth.ground.precision_rounds=-1", "GroundSearch: a setting is out of range"),
        ("x=depth.regions=off", "not a Python literal"),
        ('x=depth.regions="sometimes"', "regions must be one of"),
        ("defaults=depth.source_views=2", "the defaults' own"),
        ("a/b=depth.source_views=2", "letters, digits"),
    ],
)
def test_a_bad_variant_says_what_is_wrong(text: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        bcv.parse_variant(text)


def test_encodes_are_parsed_and_bad_ones_refused() -> None:
    assert bcv.parse_crfs("16") == (16,) and bcv.parse_crfs("15, 16,17") == (15, 16, 17)
    for text, match in (("x", "CRF values"), ("52", "CRF values"), ("-1", "CRF values"), ("16,16", "each value")):
        with pytest.raises(InvalidArgument, match=match):
            bcv.parse_crfs(text)
    with pytest.raises(SystemExit):
        bcv.main(["--crfs", "16,abc"])


@pytest.mark.parametrize("text", ["w0", "x0:orbit", "w0:spin", "w0:orbit:big", "w0:orbit:16x9"])
def test_a_bad_clip_says_what_is_wrong(text: str) -> None:
    with pytest.raises(InvalidArgument, match="clip"):
        bcv.parse_clip(text)
    with pytest.raises(SystemExit):
        bcv.main(["--clips", text])


@pytest.mark.slow
def test_every_variant_gets_the_clips_one_tracking(tmp_path: Path) -> None:
    """A toy clip under the defaults and one variant of the depth stage: the tracking ran once (both imports have
    the same camera rotations, to the bit), the variant's depth is its own, and the JSON holds both with a summary."""
    clip = bcv.parse_clip("w0:handheld:160x90")
    variant = bcv.parse_variant("two=depth.source_views=2;depth.best_views=1;depth.forward_best_views=1")
    report = bcv.run(tmp_path, [clip], [variant], frames=16)
    assert report["tracking_runs"] == 1
    base, two = report["clips"][clip.name]["defaults"], report["clips"][clip.name]["two"]
    assert base["rotation_error_deg_median"] == two["rotation_error_deg_median"]
    # the bundle's unit follows the depth (the scene convention), so the path agrees up to the similarity's rounding
    assert base["translation_error_rel"] == pytest.approx(two["translation_error_rel"], rel=1e-9)
    assert base["depth_absrel"] != two["depth_absrel"]
    on_disk = json.loads(next(tmp_path.glob("capture-variants-*.json")).read_text())
    assert [s["variant"] for s in on_disk["summary"]] == ["defaults", "two"]
    assert on_disk["settings"]["variants"]["two"]["depth.source_views"] == 2
    assert on_disk["machine"]["cpu_count"]


@pytest.mark.slow
def test_several_encodes_give_the_noise_floor(tmp_path: Path) -> None:
    """Two encodes of a toy clip, the defaults and a variant: each encode tracked once and shared by both, rows
    per encode, and the encodes' summary (means per CRF, their spread, the clips moved the same way on each)."""
    clip = bcv.parse_clip("w0:handheld:160x90")
    variant = bcv.parse_variant("two=depth.source_views=2;depth.best_views=1;depth.forward_best_views=1")
    report = bcv.run(tmp_path, [clip], [variant], frames=16, crfs=(14, 24))
    assert report["tracking_runs"] == 2 and report["settings"]["crfs"] == [14, 24]
    low, high = report["clips"]["w0:handheld:160x90@crf14"], report["clips"]["w0:handheld:160x90@crf24"]
    assert low["defaults"]["crf"] == 14 and high["defaults"]["crf"] == 24
    assert low["defaults"]["mp4_bytes"] > high["defaults"]["mp4_bytes"]  # really two encodes
    assert low["two"]["rotation_error_deg_median"] == low["defaults"]["rotation_error_deg_median"]
    encodes = {e["variant"]: e for e in report["encodes"]}
    base = encodes["defaults"]
    gaps = [low["defaults"]["novel_psnr_gap_db"], high["defaults"]["novel_psnr_gap_db"]]
    assert base["mean_gap_db_by_crf"] == {"14": gaps[0], "24": gaps[1]}
    assert base["spread_db"] == pytest.approx(abs(gaps[0] - gaps[1]))
    assert base["better_every_encode"] == base["worse_every_encode"] == 0  # the defaults against themselves
    diffs = [r["two"]["novel_psnr_gap_db"] - r["defaults"]["novel_psnr_gap_db"] for r in (low, high)]
    assert encodes["two"]["better_every_encode"] == int(all(d < -0.01 for d in diffs))
    assert encodes["two"]["worse_every_encode"] == int(all(d > 0.01 for d in diffs))
