"""The scene store: default root, list/get/delete, ids, the demo scene, stale temporary folders, races."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from starbridge.errors import InvalidArgument, SceneError, SceneInUse, UnknownScene
from starbridge.geometry.camera import Intrinsics
from starbridge.scenes import store as store_mod
from starbridge.scenes.bundle import SceneMeta, write_bundle
from starbridge.scenes.demo import DEMO_SCENE_ID, DEMO_VERSION, DemoSceneConfig, build_demo_scene
from starbridge.scenes.store import SceneStore, default_store_root


def add_scene(store: SceneStore, scene_id: str, title: str = "t") -> None:
    meta = SceneMeta(scene_id, title, 10.0, 2, Intrinsics.from_fov(60.0, 4, 2), source="engine")
    frames = np.zeros((2, 2, 4, 3), np.uint8)
    write_bundle(store.path_of(scene_id), meta, frames, np.ones((2, 2, 4), np.float32), np.stack([np.eye(4)] * 2))


@pytest.fixture
def small_demo_builds(monkeypatch: pytest.MonkeyPatch, small_demo: DemoSceneConfig) -> list[Path]:
    """Make ensure_demo build the small demo, and record each build."""
    builds: list[Path] = []

    def build(path, progress=None, overwrite=False):
        builds.append(path)
        return build_demo_scene(path, small_demo, progress, overwrite)

    monkeypatch.setattr(store_mod, "build_demo_scene", build)
    return builds


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("STARBRIDGE_HOME", str(tmp_path / "sb"))
    assert default_store_root() == tmp_path / "sb" / "scenes"
    assert SceneStore().root == tmp_path / "sb" / "scenes" and (tmp_path / "sb" / "scenes").is_dir()
    monkeypatch.delenv("STARBRIDGE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_store_root() == tmp_path / "user" / ".local" / "share" / "starbridge" / "scenes"


def test_list_get_delete(store: SceneStore):
    assert store.list() == []
    add_scene(store, "beta")
    add_scene(store, "alpha", title="first")
    assert [m.scene_id for m in store.list()] == ["alpha", "beta"]
    assert store.exists("alpha") and not store.exists("gamma")
    bundle = store.get("alpha")
    assert bundle.meta.title == "first" and bundle.path == store.root / "alpha"
    store.delete("alpha")
    assert [m.scene_id for m in store.list()] == ["beta"]
    assert sorted(p.name for p in store.root.iterdir()) == ["beta"]  # no trash left behind
    with pytest.raises(UnknownScene, match="unknown scene 'alpha'.*available: beta"):
        store.get("alpha")
    with pytest.raises(UnknownScene, match="unknown scene 'alpha'"):
        store.delete("alpha")


@pytest.mark.parametrize("bad", ["", "Bad", "a b", "../x", "x" * 65, "a/b"])
def test_bad_ids_are_refused(store: SceneStore, bad: str):
    for call in (store.get, store.delete, store.exists, store.path_of):
        with pytest.raises(InvalidArgument, match="not a valid scene id"):
            call(bad)


def test_list_skips_broken_bundles_temp_and_foreign_folders(store: SceneStore, caplog: pytest.LogCaptureFixture):
    add_scene(store, "good")
    add_scene(store, "broken")
    (store.root / "broken" / "scene.json").write_text("{oops")
    (store.root / ".tmp-new-123").mkdir()
    (store.root / "Not A Scene").mkdir()
    (store.root / "stray.txt").write_text("x")
    with caplog.at_level(logging.WARNING):
        assert [m.scene_id for m in store.list()] == ["good"]
    assert "skipping broken scene bundle" in caplog.text and "broken" in caplog.text
    with pytest.raises(SceneError, match="not valid JSON"):
        store.get("broken")
    store.delete("broken")  # a broken scene can still be removed
    assert not (store.root / "broken").exists()


def test_stale_temp_folders_are_removed_at_open(home: Path):
    root = home / "scenes"
    root.mkdir(parents=True)
    old, fresh, trash = root / ".tmp-demo-old", root / ".tmp-demo-fresh", root / ".trash-x-old"
    for p in (old, fresh, trash):
        p.mkdir()
        (p / "frames.npy").write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(trash, (two_hours_ago, two_hours_ago))
    SceneStore(root)
    assert sorted(p.name for p in root.iterdir()) == [".tmp-demo-fresh"]


def test_demo_is_built_once_and_cannot_be_deleted(store: SceneStore, small_demo_builds: list[Path]):
    bundle = store.ensure_demo()
    assert bundle.meta.scene_id == DEMO_SCENE_ID and bundle.meta.source == "demo"
    again = store.ensure_demo()
    assert again.meta == bundle.meta and len(small_demo_builds) == 1
    with pytest.raises(SceneInUse, match="built in"):
        store.delete(DEMO_SCENE_ID)
    assert store.exists(DEMO_SCENE_ID)


def test_broken_demo_is_rebuilt(store: SceneStore, small_demo_builds: list[Path]):
    store.ensure_demo()
    (store.root / DEMO_SCENE_ID / "depth.npy").unlink()
    assert store.ensure_demo().depth.shape[0] == 6
    assert len(small_demo_builds) == 2
    assert sorted(p.name for p in store.root.iterdir()) == [DEMO_SCENE_ID]


def test_racing_demo_builds_agree(home: Path, small_demo_builds: list[Path]):
    stores = [SceneStore(), SceneStore()]
    results: list[object] = [None, None]

    def run(i: int) -> None:
        try:
            results[i] = stores[i].ensure_demo()
        except BaseException as exc:  # reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(getattr(r, "meta", None) is not None for r in results), results
    assert sorted(p.name for p in stores[0].root.iterdir()) == [DEMO_SCENE_ID]


def test_loser_of_a_demo_race_opens_the_winner(store: SceneStore, monkeypatch: pytest.MonkeyPatch, small_demo):
    def build_late(path, progress=None, overwrite=False):
        build_demo_scene(path, small_demo)  # the other process finishes first
        return build_demo_scene(path, small_demo)  # this one's rename then finds the folder taken

    monkeypatch.setattr(store_mod, "build_demo_scene", build_late)
    bundle = store.ensure_demo()
    assert bundle.meta.scene_id == DEMO_SCENE_ID
    assert sorted(p.name for p in store.root.iterdir()) == [DEMO_SCENE_ID]


def test_demo_from_an_older_version_is_rebuilt(store: SceneStore, small_demo_builds: list[Path]):
    store.ensure_demo()
    record = store.root / DEMO_SCENE_ID / "demo.json"
    current = f'"demo_version": {DEMO_VERSION}'
    record.write_text(record.read_text().replace(current, '"demo_version": 0'))
    store.ensure_demo()
    assert len(small_demo_builds) == 2
    assert current in record.read_text()
