"""The scene store: default root, list/get/delete, ids, the demo scene, stale temporary folders, races."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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
    (store.root / DEMO_SCENE_ID / "depth.mkv").unlink()
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


# ---------------------------------------------------------------------------------------------- leases

#: A second process that holds a lease: prints "held", releases on "release\n", exits on EOF.
LEASE_HOLDER = """
import sys
from starbridge.scenes.store import SceneStore
lease = SceneStore(sys.argv[1]).lease(sys.argv[2])
print("held", flush=True)
if sys.stdin.readline().strip() == "release":
    lease.release()
    print("released", flush=True)
    sys.stdin.readline()
"""


class LeaseHolder:
    """`starbridge` in another process, holding a lease on one scene of `root`."""

    def __init__(self, root: Path, scene_id: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LEASE_HOLDER, str(root), scene_id],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stdin is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "held", line + self.proc.stderr.read()  # type: ignore[union-attr]

    def release(self) -> None:
        self.proc.stdin.write("release\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        assert self.proc.stdout.readline().strip() == "released"  # type: ignore[union-attr]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def holders() -> Iterator[list[LeaseHolder]]:
    started: list[LeaseHolder] = []
    yield started
    for h in started:
        h.close()


def test_a_lease_in_another_process_blocks_delete_and_overwrite(store: SceneStore, holders, tmp_path: Path):
    add_scene(store, "clip")
    holder = LeaseHolder(store.root, "clip")
    holders.append(holder)
    assert store.in_use("clip")
    with pytest.raises(SceneInUse, match="scene 'clip' is in use by a running backend session; close it or stop"):
        store.delete("clip")
    # refused before any decoding: the video does not even exist
    with pytest.raises(SceneInUse, match="in use by a running backend session"):
        store.import_video(tmp_path / "missing.mp4", scene_id="clip", overwrite=True)
    # the CLI, a third process: one line, no traceback, exit 1
    cli = subprocess.run(
        [sys.executable, "-m", "starbridge.cli", "--store", str(store.root), "scene", "delete", "clip"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 1 and "in use by a running backend session" in cli.stderr, cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1 and "Traceback" not in cli.stderr
    assert store.get("clip").meta.scene_id == "clip"  # still there, untouched
    holder.release()
    assert not store.in_use("clip")
    store.delete("clip")
    assert not store.exists("clip")


def test_a_crashed_holder_frees_its_lease(store: SceneStore, holders):
    add_scene(store, "clip")
    holder = LeaseHolder(store.root, "clip")
    holders.append(holder)
    assert store.in_use("clip")
    holder.proc.kill()  # SIGKILL: no clean-up code runs; the OS drops the lock
    holder.proc.wait(10)
    store.delete("clip")
    assert not store.exists("clip")


def test_leases_share_and_release(store: SceneStore):
    add_scene(store, "clip")
    with store.lease("clip") as a:
        b = store.lease("clip")  # leases do not exclude each other
        assert not a.released and a.path == store.root / "clip" and "held" in repr(a)
        a.release()
        with pytest.raises(SceneInUse):
            store.delete("clip")  # b still holds it (same process: a different descriptor still conflicts)
        b.release()
        b.release()  # idempotent
        assert a.released and b.released
    store.delete("clip")
    with pytest.raises(UnknownScene, match="unknown scene 'clip'"):
        store.lease("clip")
    with pytest.raises(InvalidArgument, match="not a valid scene id"):
        store.lease("../x")


def test_a_forgotten_lease_is_released_with_its_object(store: SceneStore):
    add_scene(store, "clip")
    store.lease("clip")  # not kept: dropped at once
    gc.collect()
    store.delete("clip")


def test_a_lease_waits_for_or_refuses_a_running_delete(store: SceneStore):
    add_scene(store, "clip")
    with store._exclusive("clip"):  # what delete and an overwriting import hold while they work
        with pytest.raises(SceneInUse, match="being deleted or replaced"):
            store.lease("clip")
        started = time.monotonic()
        with pytest.raises(SceneInUse):
            store.lease("clip", wait_s=0.2)
        assert time.monotonic() - started >= 0.2
    lease = store.lease("clip", wait_s=0.2)
    lease.release()


def test_a_lease_follows_the_folder_not_the_path(store: SceneStore):
    """A scene replaced behind the lease's back (not through the store): the lease notices at once."""
    add_scene(store, "clip")
    with store.lease("clip"):
        os.rename(store.root / "clip", store.root / ".trash-clip-x")
        add_scene(store, "clip")  # a new folder at the same path: not leased
        assert not store.in_use("clip")
        store.delete("clip")


def test_leases_without_flock_cover_this_process(store: SceneStore, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(store_mod, "fcntl", None)
    add_scene(store, "clip")
    with store.lease("clip"), store.lease("clip"):
        with pytest.raises(SceneInUse, match="in use by a running backend session"):
            store.delete("clip")
    store.delete("clip")


def test_demo_rebuild_leaves_a_leased_demo_alone(store: SceneStore, small_demo_builds: list[Path], holders):
    store.ensure_demo()
    record = store.root / DEMO_SCENE_ID / "demo.json"
    record.write_text(record.read_text().replace(f'"demo_version": {DEMO_VERSION}', '"demo_version": 0'))
    holders.append(LeaseHolder(store.root, DEMO_SCENE_ID))
    assert store.ensure_demo().meta.scene_id == DEMO_SCENE_ID
    assert len(small_demo_builds) == 1  # not rebuilt under the other process's session
