"""Helpers of the viewer tests: a backend with its viewer on a free port, the clip's own camera pose, pixel diffs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from starbridge.server.app import Backend
from starbridge.server.config import ServerConfig

#: A page's pose message at the clip's first camera (the origin, looking down -Z), the demo's field of view.
POSE = {"type": "pose", "t_us": 0, "position": [0.0, 0.0, 0.0], "rotation": [0.0, 0.0, 0.0, 1.0], "fov": 60.0,
        "aspect": 0.0}  # fmt: skip


def viewer_backend(store: Path, **overrides) -> Backend:
    """A started backend whose viewer listens on a free port (or `viewer_port`); the caller stops it."""
    fields = dict(grpc_port=0, engine_port=0, viewer_port=0, store_root=store, heartbeat_timeout_s=2.0)
    return Backend(ServerConfig(**{**fields, **overrides})).start()


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
