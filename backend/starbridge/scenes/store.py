"""The scene store: a folder of scene bundles, one sub-folder per scene id.

Default location: ``$STARBRIDGE_HOME/scenes`` when STARBRIDGE_HOME is set, else
``~/.local/share/starbridge/scenes``. Bundles are immutable once written (see bundle.py), so several
backend processes may share one store; writes and deletes go through hidden temporary folders and
renames, so readers never see half a scene, and two processes racing to build the demo are harmless.
"""

from __future__ import annotations

import builtins
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from ..errors import InvalidArgument, SceneError, SceneInUse, UnknownScene
from .bundle import TEMP_PREFIX, TRASH_PREFIX, BundleExists, SceneBundle, SceneMeta, check_scene_id, read_meta
from .demo import DEMO_SCENE_ID, DEMO_VERSION, ProgressFn, build_demo_scene, demo_version

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

    def delete(self, scene_id: str) -> None:
        """Remove a scene. The demo scene is built in and refused (SceneInUse). Atomic: the folder is renamed
        to a hidden trash name first, so the scene disappears at once, then removed."""
        path = self.path_of(scene_id)
        if scene_id == DEMO_SCENE_ID:
            raise SceneInUse(f"the {DEMO_SCENE_ID!r} scene is built in and cannot be deleted", field="scene_id")
        if not path.is_dir():
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
        """The demo scene, built first if it is missing, unreadable, or from an older demo version (seconds).

        Two processes may race here: both build, the first rename wins, the other opens the winner's bundle.
        """
        path = self.path_of(DEMO_SCENE_ID)
        overwrite = False
        if path.is_dir():
            try:
                bundle = self.get(DEMO_SCENE_ID)
                if demo_version(bundle) == DEMO_VERSION:
                    return bundle
                log.info("rebuilding the demo scene: it was made by an older demo version")
            except SceneError as exc:
                log.warning("rebuilding the demo scene: %s", exc)
            overwrite = True
        log.info("building the demo scene in %s", path)
        try:
            return build_demo_scene(path, progress=progress, overwrite=overwrite)
        except BundleExists:
            return self.get(DEMO_SCENE_ID)

    def import_video(
        self,
        video_path: Path | str,
        scene_id: str | None = None,
        depth_dir: Path | str | None = None,
        depth_model: Path | str | None = None,
        max_side: int = 512,
        max_frames: int = 0,
        vertical_fov_deg: float = 60.0,
        overwrite: bool = False,
        progress: ProgressFn | None = None,
    ) -> SceneBundle:
        """Import a video as a scene; see `starbridge.scenes.importer.import_video` for the arguments."""
        from .importer import import_video

        return import_video(
            self,
            video_path,
            scene_id=scene_id,
            depth_dir=depth_dir,
            depth_model=depth_model,
            max_side=max_side,
            max_frames=max_frames,
            vertical_fov_deg=vertical_fov_deg,
            overwrite=overwrite,
            progress=progress,
        )

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
