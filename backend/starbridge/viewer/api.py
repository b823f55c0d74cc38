"""The viewer's small HTTP API: what the page needs before it opens a session.

GET /api/info    -> {"generators": [...], "default_scene", "default_width", "default_height", "default_fps",
                     "token_required"}
GET /api/scenes  -> {"scenes": [{"id", "title", "frames", "fps", "width", "height", "duration_s", "fov",
                                  "source", "depth", "summary"}]}

`summary` is the text `starbridge scene show` prints for the scene (its capture report included). The
scene's first reference camera sits at the origin looking down -Z (docs/architecture.md §3): the page
starts there with the scene's vertical field of view, so the first view is the clip's own.
"""

from __future__ import annotations

from typing import Any

from ..scenes.bundle import SceneMeta
from ..scenes.store import SceneStore
from ..server.config import ServerConfig


def scene_summary(meta: SceneMeta) -> str:
    """The lines `starbridge scene show` prints about a scene (without the path and size)."""
    from ..cli import capture_summary  # the CLI's wording, one place

    lines = [
        f"scene         {meta.scene_id} ({meta.title}): {meta.frame_count} frames {meta.width}x{meta.height} "
        f"@ {meta.fps:g} fps",
        f"source        {meta.source}; depth {meta.depth_source}{' (rotation-only)' if meta.rotation_only else ''}; "
        f"scale {meta.scale:g} (median depth {meta.median_depth_m:g} m)",
    ]
    if meta.capture:
        lines.append(capture_summary(meta.capture))
    return "\n".join(lines)


def scenes(store: SceneStore) -> dict[str, Any]:
    return {
        "scenes": [
            {
                "id": m.scene_id,
                "title": m.title,
                "frames": m.frame_count,
                "fps": m.fps,
                "width": m.width,
                "height": m.height,
                "duration_s": m.duration_s,
                "fov": round(m.intrinsics.vertical_fov_deg, 3),
                "source": m.source,
                "depth": m.depth_source,
                "summary": scene_summary(m),
            }
            for m in store.list()
        ]
    }


def info(config: ServerConfig, generator_names: list[str]) -> dict[str, Any]:
    return {
        "generators": generator_names,
        "default_scene": config.default_scene,
        "default_width": config.default_width,
        "default_height": config.default_height,
        "default_fps": config.default_fps,
        "token_required": bool(config.token),
    }
