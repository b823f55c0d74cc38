"""Roam benchmark metrics (bench/roam_quality.py defines them in its docstring): ground-truth regions
(visible, disoccluded, out of view), coverage statistics, PSNR / SSIM per region, revisit consistency, and the
mean over worlds or paths."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.bench_quality import psnr, squared_error, ssim_map  # noqa: E402
from bench.roam_sessions import FRAME, MEMORY, NONE, WORLD  # noqa: E402
from starbridge.geometry.camera import Intrinsics  # noqa: E402
from starbridge.geometry.conventions import wire_to_cv  # noqa: E402
from starbridge.geometry.splat import frame_points  # noqa: E402

#: Relative depth tolerance of "the reference frame sees this point" (regions).
DEPTH_TOL = 0.02
#: A revisit counts when the path left the pose by at least this much in between (degrees; layout metres).
REVISIT_MIN_TURN_DEG = 30.0
REVISIT_MIN_MOVE_M = 0.5
#: Region codes.
VISIBLE, DISOCCLUDED, OUT_OF_VIEW = 0, 1, 2
REGIONS = {"visible": VISIBLE, "disoccluded": DISOCCLUDED, "out_of_view": OUT_OF_VIEW}


# ---------------------------------------------------------------------------------------------- ground truth regions


def _max3x3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return np.max(np.stack([p[i : i + h, j : j + w] for i in range(3) for j in range(3)]), axis=0)


def regions(
    intrinsics: Intrinsics,
    ref_poses: np.ndarray,
    ref_depth: np.ndarray,
    ref_index: Sequence[int],
    poses: np.ndarray,
    gt_depth: np.ndarray,
    tol: float = DEPTH_TOL,
) -> np.ndarray:
    """(N, H, W) uint8 region codes (VISIBLE, DISOCCLUDED, OUT_OF_VIEW; see the module docstring) of frames
    at `poses` with ground-truth z-depth `gt_depth`, against reference frames `ref_index` (one per frame)
    of a clip (`ref_poses`, `ref_depth`; same intrinsics as the frames)."""
    n, h, w = gt_depth.shape
    out = np.empty((n, h, w), np.uint8)
    widest: dict[int, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k in range(n):
            i = int(ref_index[k])
            if i not in widest:
                widest[i] = _max3x3(ref_depth[i])
            pts = frame_points(gt_depth[k], intrinsics, poses[k]).astype(np.float64)
            if len(pts) != h * w:
                raise ValueError("ground-truth depth must be > 0 (or +inf) at every pixel")
            cam = (np.linalg.inv(wire_to_cv(ref_poses[i])) @ pts.T)[:3]  # OpenCV camera of the reference
            finite = pts[:, 3] > 0
            z = cam[2]
            ahead = np.where(finite, z > 1e-6, z > 0)
            u = intrinsics.fx * cam[0] / z + intrinsics.cx
            v = intrinsics.fy * cam[1] / z + intrinsics.cy
            inview = ahead & (u >= 0) & (u < w) & (v >= 0) & (v < h)
            iu = np.clip(np.where(inview, u, 0), 0, w - 1).astype(np.intp)
            iv = np.clip(np.where(inview, v, 0), 0, h - 1).astype(np.intp)
            seen_depth = widest[i][iv, iu]
            key = np.where(finite, z, np.inf)
            hidden = key > (1.0 + tol) * seen_depth
            code = np.where(inview, np.where(hidden, DISOCCLUDED, VISIBLE), OUT_OF_VIEW)
            out[k] = code.reshape(h, w)
    return out


# ---------------------------------------------------------------------------------------------- coverage, image metrics


def coverage_stats(cats: np.ndarray | None, codes: np.ndarray) -> dict[str, Any] | None:
    if cats is None:
        return None
    out: dict[str, Any] = {
        "cover": float((cats != NONE).mean()),
        "observed": float((cats <= WORLD).mean()),
        "frame": float((cats == FRAME).mean()),
        "world": float((cats == WORLD).mean()),
        "memory": float((cats == MEMORY).mean()),
    }
    for name, code in REGIONS.items():  # what backs each region (None where the region has no pixel)
        sel = codes == code
        out[f"observed_{name}"] = float((cats[sel] <= WORLD).mean()) if sel.any() else None
        out[f"cover_{name}"] = float((cats[sel] != NONE).mean()) if sel.any() else None
    return out


def region_metrics(out: np.ndarray, truth: np.ndarray, codes: np.ndarray) -> dict[str, Any]:
    """PSNR and SSIM of (N, H, W, 3) frames against truth per region and over all pixels (None: no pixel)."""
    err = squared_error(out, truth)
    ssim = np.stack([ssim_map(o, t) for o, t in zip(out, truth, strict=True)])
    kinds = {name: codes == code for name, code in REGIONS.items()}
    kinds["all"] = np.ones(codes.shape, bool)
    result: dict[str, Any] = {"psnr": {}, "ssim": {}}
    for kind, sel in kinds.items():
        any_pixel = bool(sel.any())
        result["psnr"][kind] = psnr(float(err[sel].mean())) if any_pixel else None
        result["ssim"][kind] = float(ssim[sel].mean()) if any_pixel else None
    return result


def _turn_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = (np.trace(a[:3, :3].T @ b[:3, :3]) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def revisit_pairs(
    poses: np.ndarray, min_move: float, min_turn_deg: float = REVISIT_MIN_TURN_DEG
) -> list[tuple[int, int]]:
    """(i, j), i < j: frame j has frame i's pose (the earliest such) and the path in between left it by at
    least `min_move` (scene units) or `min_turn_deg`."""
    out = []
    for j in range(len(poses)):
        for i in range(j - 1):
            if not np.allclose(poses[i], poses[j], atol=1e-9):
                continue
            between = poses[i + 1 : j]
            move = max(float(np.linalg.norm(p[:3, 3] - poses[i][:3, 3])) for p in between)
            turn = max(_turn_deg(p, poses[i]) for p in between)
            if move >= min_move or turn >= min_turn_deg:
                out.append((i, j))
                break
    return out


def revisit_psnr(frames: np.ndarray, pairs: Sequence[tuple[int, int]]) -> float | None:
    if not pairs:
        return None
    a = np.stack([frames[i] for i, _ in pairs])
    b = np.stack([frames[j] for _, j in pairs])
    return psnr(float(squared_error(a, b).mean()))


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean over worlds (or paths) of every metric of `records` (None where all are None)."""
    out: dict[str, Any] = {}
    for metric in ("psnr", "ssim"):
        out[metric] = {k: _mean([r[metric][k] for r in records]) for k in (*REGIONS, "all")}
    covers = [r["coverage"] for r in records if r["coverage"] is not None]
    out["coverage"] = {k: _mean([c[k] for c in covers]) for k in covers[0]} if covers else None
    for key in ("fps", "temporal_error", "revisit_psnr_db"):
        out[key] = _mean([r[key] for r in records])
    if "region_fractions" in records[0]:
        out["region_fractions"] = {k: _mean([r["region_fractions"][k] for r in records]) for k in REGIONS}
    return out
