"""Reading model bundles: model.json checks, clear errors, packaged names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from starbridge.errors import InvalidArgument
from starbridge.runtime.bundle import GRAPHS, MODEL_JSON, packaged_models, read_model, resolve_model


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A copy of the shipped star-tiny's model.json with empty graph files (read_model does not load them)."""
    shipped = packaged_models()["star-tiny"]
    out = tmp_path / "b"
    out.mkdir()
    shutil.copy(shipped / MODEL_JSON, out / MODEL_JSON)
    doc = json.loads((out / MODEL_JSON).read_text())
    for g in GRAPHS:
        (out / doc["graphs"][g]).write_bytes(b"")
    return out


def test_reads_the_layout(bundle: Path):
    info = read_model(bundle)
    assert info.name == "star-tiny" and (info.width, info.height) == (256, 144)
    assert info.frames_per_block == info.latent_frames * info.temporal_stride
    assert info.sigmas == pytest.approx((1.0, 0.9375, 0.8333333, 0.625))


def test_not_a_bundle(tmp_path: Path):
    with pytest.raises(InvalidArgument, match="not a model bundle"):
        read_model(tmp_path)


def test_other_format_version(bundle: Path):
    doc = json.loads((bundle / MODEL_JSON).read_text())
    doc["format_version"] = 99
    (bundle / MODEL_JSON).write_text(json.dumps(doc))
    with pytest.raises(InvalidArgument, match="format_version 99"):
        read_model(bundle)


def test_missing_key_and_missing_graph(bundle: Path):
    doc = json.loads((bundle / MODEL_JSON).read_text())
    (bundle / doc["graphs"]["step"]).unlink()
    with pytest.raises(InvalidArgument, match="lacks step"):
        read_model(bundle)
    del doc["latent"]
    (bundle / MODEL_JSON).write_text(json.dumps(doc))
    with pytest.raises(InvalidArgument, match="not a valid model.json"):
        read_model(bundle)


def test_resolve_by_path_or_packaged_name(bundle: Path):
    assert resolve_model(bundle) == bundle
    assert resolve_model("star-tiny") == packaged_models()["star-tiny"]
    with pytest.raises(InvalidArgument, match="packaged: star-tiny"):
        resolve_model("no-such-model")
