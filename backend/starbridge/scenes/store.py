"""The scene store: a folder of scene bundles, one sub-folder per scene id.

Default location: ``$STARBRIDGE_HOME/scenes`` when STARBRIDGE_HOME is set, else
``~/.local/share/starbridge/scenes``. Bundles are immutable once written (see bundle.py), so several
backend processes may share one store; writes and deletes go through hidden temporary folders and
renames, so readers never see half a scene, and two processes racing to build the demo are harmless.

Scenes in use are protected across processes by *leases* (`SceneStore.lease`): a shared OS lock a
backend session holds on the scene while it runs. Deleting a scene or importing over it takes the
exclusive lock without waiting and is refused (SceneInUse) while any process holds a lease.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument, SceneError, SceneInUse, UnknownScene
from .bundle import (
    FORMAT_VERSION,
    TEMP_PREFIX,
    TRASH_PREFIX,
    BundleExists,
    SceneBundle,
    SceneMeta,
    check_scene_id,
    read_meta,
)
from .demo import DEMO_SCENE_ID, DEMO_VERSION, ProgressFn, build_demo_scene, demo_version

try:
    import fcntl
except ImportError:  # Windows: leases only cover this process (see SceneLease)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: Environment variable naming StarBridge's data folder; the store is its `scenes` sub-folder.
HOME_ENV = "STARBRIDGE_HOME"
#: Temporary and trash folders older than this are left over from a crash and are removed at open.
STALE_TEMP_AGE_S = 3600.0


def default_store_root() -> Path:
    """``$STARBRIDGE_HOME/scenes``, or ``~/.local/share/starbridge/scenes`` when the variable is unset."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / "scenes"
    return Path.home() / ".local" / "share" / "starbridge" / "scenes"


# ---------------------------------------------------------------------------------------------- leases


def in_use_message(scene_id: str) -> str:
    return f"scene {scene_id!r} is in use by a running backend session; close it or stop the backend"


class _LocalLocks:
    """Shared/exclusive locks by folder path inside this process: what leases are where there is no flock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: dict[str, int] = {}
        self._exclusive: set[str] = set()

    def acquire(self, key: str, shared: bool) -> bool:
        with self._lock:
            if key in self._exclusive or (not shared and self._shared.get(key, 0)):
                return False
            if shared:
                self._shared[key] = self._shared.get(key, 0) + 1
            else:
                self._exclusive.add(key)
            return True

    def release(self, key: str, shared: bool) -> None:
        with self._lock:
            if not shared:
                self._exclusive.discard(key)
            elif self._shared.get(key, 0) > 1:
                self._shared[key] -= 1
            else:
                self._shared.pop(key, None)


_LOCAL_LOCKS = _LocalLocks()


class _FolderLock:
    """A shared or exclusive lock on one scene folder: `flock` on the folder itself (POSIX).

    The lock belongs to the folder (its inode), not to the path: a bundle renamed away by a delete or
    a replace keeps its locks, and a lock taken on a folder that was renamed away meanwhile is noticed
    (the path then names another inode, or nothing) and taken again. Nothing is written to the store.
    """

    def __init__(self, path: Path, shared: bool) -> None:
        self.path = path
        self.shared = shared
        self._fd: int | None = None
        self._key: str | None = None

    def try_acquire(self) -> bool | None:
        """True: locked. False: another holder conflicts. None: no folder at the path."""
        if fcntl is None:
            if not self.path.is_dir():
                return None
            key = str(self.path.resolve())
            if not _LOCAL_LOCKS.acquire(key, self.shared):
                return False
            self._key = key
            return True
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
        while True:
            try:
                fd = os.open(self.path, flags)
            except (FileNotFoundError, NotADirectoryError):
                return None
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            held = os.fstat(fd)
            try:
                now = os.stat(self.path)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                self._fd = fd
                return True
            os.close(fd)  # renamed away between open and lock (deleted or replaced): try what is there now
            if now is None:
                return None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops its flock
        key, self._key = self._key, None
        if key is not None:
            _LOCAL_LOCKS.release(key, self.shared)

    @property
    def held(self) -> bool:
        return self._fd is not None or self._key is not None


class SceneLease:
    """A running session's claim on a scene: while any process holds one, the scene cannot be deleted or
    replaced (`SceneStore.delete` and `import_video(..., overwrite=True)` raise SceneInUse).

    Get one from `SceneStore.lease`; give it back with `release()` (idempotent) or by leaving its `with`
    block. The OS drops it when the holding process exits, however it exits, so a crashed backend never
    leaves a scene locked. POSIX: a shared `flock` on the scene folder, across processes. Where flock is
    missing (Windows) a lease only protects the scene against deletes from the same process.
    """

    def __init__(self, scene_id: str, path: Path, lock: _FolderLock) -> None:
        self.scene_id = scene_id
        self.path = path
        self._lock = lock

    @property
    def released(self) -> bool:
        return not self._lock.held

    def release(self) -> None:
        """Give the lease back. Safe to call more than once."""
        self._lock.release()

    def __enter__(self) -> SceneLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        # A forgotten lease must not outlive its object (the descriptor would leak and keep the scene locked).
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    def __repr__(self) -> str:
        return f"SceneLease({self.scene_id!r}, {'released' if self.released else 'held'})"


class SceneStore:
    """Scene bundles under `root` (created if missing). Safe to share between processes."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_store_root()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SceneError(f"cannot create the scene store at {self.root}: {exc}") from exc
        self.remove_stale_temp()

    def __repr__(self) -> str:
        return f"SceneStore({str(self.root)!r})"

    def path_of(self, scene_id: str) -> Path:
        """Folder of a scene (validates the id; the folder may not exist)."""
        return self.root / check_scene_id(scene_id)

    def exists(self, scene_id: str) -> bool:
        return (self.path_of(scene_id) / "scene.json").is_file()

    def ids(self) -> list[str]:
        """Ids of the folders that look like scenes (not checked further), sorted."""
        return sorted(p.name for p in self.root.iterdir() if _is_scene_dir(p))

    def list(self) -> list[SceneMeta]:
        """Metadata of every readable scene, sorted by id. Broken bundles are logged and skipped."""
        metas = []
        for scene_id in self.ids():
            try:
                meta = read_meta(self.root / scene_id)
            except SceneError as exc:
                log.warning("skipping broken scene bundle %s: %s", self.root / scene_id, exc)
                continue
            if meta.scene_id != scene_id:
                log.warning("skipping %s: its scene.json says scene_id %r", self.root / scene_id, meta.scene_id)
                continue
            metas.append(meta)
        return metas

    def get(self, scene_id: str) -> SceneBundle:
        """Open a scene. UnknownScene (listing the available ids) when there is none by that id."""
        path = self.path_of(scene_id)
        if not path.is_dir():
            available = ", ".join(self.ids()) or "none"
            raise UnknownScene(
                f"unknown scene {scene_id!r} in {self.root}; available: {available} "
                "(import one with `starbridge scene import VIDEO`)",
                field="scene_id",
            )
        bundle = SceneBundle(path)
        if bundle.meta.scene_id != scene_id:
            raise SceneError(f"broken scene bundle {path}: its scene.json says scene_id {bundle.meta.scene_id!r}")
        return bundle

    def lease(self, scene_id: str, *, wait_s: float = 0.0) -> SceneLease:
        """Claim a scene for a running session, across processes; returns the SceneLease to release when the
        session ends (or use it as a context manager).

        While any lease on a scene is held, by this or another process, `delete` and an overwriting
        `import_video` refuse with SceneInUse. Leases do not exclude each other: any number of sessions, in any
        number of processes, may hold one on the same scene. Take the lease *before* opening the scene
        (`get`), so nothing can replace or remove it in between. Raises UnknownScene when there is no such
        scene, and SceneInUse when it is being deleted or replaced right now (after waiting up to `wait_s`
        seconds for that to finish; the default does not wait, so an event loop never blocks here).
        """
        path = self.path_of(scene_id)
        deadline = time.monotonic() + max(0.0, wait_s)
        lock = _FolderLock(path, shared=True)
        while True:
            got = lock.try_acquire()
            if got:
                return SceneLease(scene_id, path, lock)
            if got is None:
                self.get(scene_id)  # raises UnknownScene, listing the ids
                # a folder appeared meanwhile (an import finished): take the lease on it
            elif time.monotonic() >= deadline:
                raise SceneInUse(
                    f"scene {scene_id!r} is being deleted or replaced by another process; try again in a moment",
                    field="scene_id",
                )
            else:
                time.sleep(0.02)

    def in_use(self, scene_id: str) -> bool:
        """Whether any process holds a lease on the scene (or is deleting or replacing it) right now."""
        lock = _FolderLock(self.path_of(scene_id), shared=False)
        got = lock.try_acquire()
        lock.release()
        return got is False

    @contextlib.contextmanager
    def _exclusive(self, scene_id: str) -> Iterator[bool]:
        """Hold the scene's exclusive lock (no lease anywhere) for the block; SceneInUse at once if leased.

        Yields False when there is no scene folder to lock (nothing to protect)."""
        lock = _FolderLock(self.path_of(scene_id), shared=False)
        got = lock.try_acquire()
        if got is False:
            raise SceneInUse(in_use_message(scene_id), field="scene_id")
        try:
            yield bool(got)
        finally:
            lock.release()

    def delete(self, scene_id: str) -> None:
        """Remove a scene. Refused (SceneInUse) for the built-in demo scene and while any process holds a lease
        on it (`lease`). Atomic: the folder is renamed to a hidden trash name first, so the scene disappears at
        once, then removed."""
        path = self.path_of(scene_id)
        if scene_id == DEMO_SCENE_ID:
            raise SceneInUse(f"the {DEMO_SCENE_ID!r} scene is built in and cannot be deleted", field="scene_id")
        with self._exclusive(scene_id) as locked:
            if not locked:
                self.get(scene_id)  # raises UnknownScene with the list of ids
            trash = self.root / f"{TRASH_PREFIX}{scene_id}-{uuid.uuid4().hex[:12]}"
            try:
                os.rename(path, trash)
            except FileNotFoundError:
                self.get(scene_id)  # deleted by someone else meanwhile: UnknownScene
                raise
            except OSError as exc:
                raise SceneError(f"cannot delete scene {scene_id!r} at {path}: {exc}") from exc
        shutil.rmtree(trash, ignore_errors=True)
        log.info("deleted scene %s", scene_id)

    def ensure_demo(self, progress: ProgressFn | None = None) -> SceneBundle:
        """The demo scene, built first if it is missing, unreadable, or from an older demo version or bundle
        format (seconds).

        Two processes may race here: both build, the first rename wins, the other opens the winner's bundle.
        """
        path = self.path_of(DEMO_SCENE_ID)
        overwrite = False
        if path.is_dir():
            try:
                bundle = self.get(DEMO_SCENE_ID)
                if demo_version(bundle) == DEMO_VERSION and bundle.meta.format_version == FORMAT_VERSION:
                    return bundle
                log.info("rebuilding the demo scene: it was made by an older demo version or bundle format")
            except SceneError as exc:
                log.warning("rebuilding the demo scene: %s", exc)
            overwrite = True
        log.info("building the demo scene in %s", path)
        with contextlib.ExitStack() as stack:
            if overwrite:
                try:
                    stack.enter_context(self._exclusive(DEMO_SCENE_ID))
                except SceneInUse:
                    # Another process serves the old demo right now: keep serving it rather than pull it away.
                    log.warning("the demo scene is from an older version but in use: not rebuilding it now")
                    return self.get(DEMO_SCENE_ID)
            try:
                return build_demo_scene(path, progress=progress, overwrite=overwrite)
            except BundleExists:
                return self.get(DEMO_SCENE_ID)

    def import_video(
        self, video_path: Path | str, scene_id: str | None = None, *, overwrite: bool = False, **options: Any
    ) -> SceneBundle:
        """Import a video as a scene: `starbridge.scenes.importer.import_video` into this store.

        `options` are that function's other keyword arguments (depth_dir, depth_model, max_side, max_frames,
        vertical_fov_deg, progress), with its defaults. With `overwrite`, an existing scene of that id is
        replaced, unless a session holds a lease on it (SceneInUse, at once, before any decoding); it stays
        locked against new leases until the import ends.
        """
        from .importer import import_video, slug  # PyAV: only when a video is imported

        def run() -> SceneBundle:
            return import_video(self, video_path, scene_id=scene_id, overwrite=overwrite, **options)

        target = scene_id or slug(Path(video_path).stem)
        if not overwrite or target == DEMO_SCENE_ID:
            return run()  # nothing existing is replaced (the importer refuses the demo id itself)
        with self._exclusive(target):
            return run()

    def import_shots(
        self, video_path: Path | str, scene_id: str | None = None, *, overwrite: bool = False, **options: Any
    ) -> builtins.list[SceneBundle]:
        """Import every shot of a video as a scene of its own (`<id>-1`, `<id>-2`, ...):
        `starbridge.scenes.importer.import_shots` into this store, each replaced scene locked as `import_video`
        locks it."""
        from .importer import import_shots  # PyAV: only when a video is imported

        return import_shots(self, video_path, scene_id=scene_id, overwrite=overwrite, guard=self._exclusive, **options)

    def remove_stale_temp(self, max_age_s: float = STALE_TEMP_AGE_S) -> builtins.list[Path]:
        """Remove temporary and trash folders older than `max_age_s` (left over from a crash)."""
        removed: builtins.list[Path] = []
        now = time.time()
        for p in self.root.iterdir():
            if not p.name.startswith((TEMP_PREFIX, TRASH_PREFIX)):
                continue
            try:
                if now - p.stat().st_mtime > max_age_s:
                    if p.is_dir():
                        shutil.rmtree(p)
                    else:
                        p.unlink()
                    removed.append(p)
            except OSError as exc:  # another process removed or is removing it
                log.debug("could not remove stale %s: %s", p, exc)
        if removed:
            log.info("removed %d stale temporary folder(s) in %s", len(removed), self.root)
        return removed


def _is_scene_dir(p: Path) -> bool:
    if p.name.startswith(".") or not p.is_dir():
        return False
    try:
        check_scene_id(p.name)
    except InvalidArgument:  # not a scene id, e.g. a folder of the user's own
        return False
    return True
