"""The star-tiny bundle that ships in the package: it loads, serves a block, and says what it is."""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.geometry.camera import Intrinsics
from starbridge.runtime.bundle import packaged_models, read_model
from starbridge.runtime.generator import FrameRequest
from starbridge.runtime.star import StarGenerator
from starbridge.scenes.store import SceneStore


def test_packaged_star_tiny(demo_store):
    models = packaged_models()
    if "star-tiny" not in models:
        pytest.fail("the package must ship models/star-tiny (issue 5)")
    info = read_model(models["star-tiny"])
    assert info.weights.startswith("trained") and (info.width, info.height) == (256, 144)
    size = sum(p.stat().st_size for p in models["star-tiny"].iterdir())
    assert size <= 25 * 2**20
    generator = StarGenerator(models["star-tiny"], prefer_cuda=False)
    assert generator.composite_visible  # measured better overall composited (bench/results/quality-*.json)
    session = generator.open(SceneStore(demo_store).get("demo"), 256, 144)
    intr = Intrinsics.from_fov(60, 256, 144)
    frames = session.generate_block([FrameRequest(np.eye(4), intr, t / 24) for t in range(2)])
    image = frames[0][..., :3].astype(float)
    assert image.std() > 10  # a picture, not a flat fill
    top, bottom = image[:20].mean(axis=(0, 1)), image[-20:].mean(axis=(0, 1))
    assert top[2] > top[0] and top.mean() > bottom.mean()  # sky above, upright
