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
    assert bcv.parse_clip("w2:dolly:512x288") == bcv.Clip(2, "dolly", 512, 288)
    assert bcv.parse_clip("w1:orbit").name == "w1:orbit" and len(bcv.ALL_CLIPS) == 16


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("nothing", "expected NAME="),
        ("x=depth", "not SECTION.KEY=VALUE"),
        ("x=optics.fov=3", "SECTION one of"),
        ("x=depth.no_such=1", "has no setting 'no_such'"),
        ("x=depth.regions=off", "not a Python literal"),
        ('x=depth.regions="sometimes"', "regions must be one of"),
        ("defaults=depth.source_views=2", "the defaults' own"),
        ("a/b=depth.source_views=2", "letters, digits"),
    ],
)
def test_a_bad_variant_says_what_is_wrong(text: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        bcv.parse_variant(text)


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
