"""Roam benchmark: generators against ground truth far beyond the reference frame (bench_quality --paths roam).

    python bench/bench_quality.py --paths roam [--samples 4] [--width 256 --height 144] [--poses 36]
                                  [--roam-paths turn-left,turn-back,...] [--model BUNDLE ...] [--strips 1] [--out DIR]

Worlds: held-out procedural samples (samples.iter_samples("heldout"): seeds and styles training never sees);
each sample's reference clip is written as a scene bundle, and ground truth at any pose and time is the
sample's world ray-cast there (samples.render_truth).

Camera paths (scenes/procedural/paths.py `roam_paths`; wire c2w, scene units, starting at the origin camera,
which is the reference video's first camera): turn 90 degrees left, 90 right, 180 and back, strafe to the
right and back, dolly forward and back, and a tour that comes back to earlier poses. Distances are layout
metres (the world's own metres; a scene unit is `sample.scale` of them, about 0.5) and every camera stays in
the world's free disc (2.2 m around (0, -0.6)): a 2.5 m dolly forward fits, a strafe to the side does not
(2.12 m is what fits; the JSON's settings say per world what was used).

Generators:

* ``explicit-fill``: today's explicit generator (runtime/explicit.py): the same-time reference frame, the
  scene's fused static world and the session's world memory, then push-pull fill;
* ``reference-only``: the explicit generator as it was before the fused world (the same-time reference frame
  splatted, push-pull fill, no memory; `ReferenceOnlyGenerator` reproduces it exactly);
* each STAR model bundle given (the sample size must be the bundle's, e.g. 256x144 for star-tiny), and extra
  generators passed by code, as in bench_quality.

Every path is flown twice per generator and world, each time in a fresh session (empty memory): with the
scene clock running (frame k at scene time (k mod clip length) / fps: image metrics, coverage, frames/s) and
with the clock frozen at 0 (a static scene: temporal error and revisit).

Metrics (per path, then the mean over worlds; "all paths" is the mean over paths):

* **regions**, from ground-truth geometry: each pixel of a ground-truth frame is unprojected with its true
  depth (sky: a direction) and projected into the same-time reference camera (reference frame i =
  scene.frame_index(t)). It is OUT-OF-VIEW when it lands behind that camera or outside its image; else
  VISIBLE when the reference frame sees it, i.e. its depth in the reference camera is at most (1 +
  DEPTH_TOL) times the largest reference depth in the 3 x 3 pixels around where it lands (a direction
  counts as seen only where the reference sees sky); else DISOCCLUDED (in the reference view, but hidden
  behind something nearer, moving objects included).
* **PSNR / SSIM** per region and over all pixels, as bench_quality: PSNR pools the 8-bit RGB squared error
  over the path's pixels of the region (capped at MAX_PSNR_DB); SSIM on luma, its map averaged over them.
* **coverage**: the fraction of pixels backed by content before hole filling, from the generator's own splat
  (`session.splat(request).mask`; only generators that expose it, else "-"), per pixel one of: FRAME (the
  same-time reference frame lands there), WORLD (else the fused world of the other reference frames),
  MEMORY (else the session's memory of what it showed before), NONE (filled this frame). "cover" counts
  all but NONE, "observed" FRAME and WORLD (what the video really saw), "memory" MEMORY.
* **revisit**: on the frozen clock, PSNR pooled over every pair of frames with the same pose where the
  path left that pose by at least REVISIT_MIN_TURN_DEG or REVISIT_MIN_MOVE_M in between (turn-back: each
  pose of the way out against the same pose on the way back; strafe, dolly and return likewise;
  MAX_PSNR_DB = identical). A generator without history (reference-only) makes identical frames for
  identical requests, so it scores MAX_PSNR_DB by construction; the number says how far a generator
  with history (the memory) departs from that.
* **temporal error** (bench_quality.temporal_error) on the frozen clock; **frames/s**: path frames over the
  seconds spent in generate_block (coverage probing excluded), running clock.

Pictures (for the first `strips` worlds): roam-<host>-strip-<k>-<path>.png, columns spread over the path:
ground truth, the regions (truth tinted: orange disoccluded, blue out-of-view), then each generator's output
and, for the generators with coverage, its output tinted by category (green FRAME, teal WORLD, amber
MEMORY, red NONE); and roam-<host>-topdown-<k>.png: the world seen from above, one panel per path and
generator with coverage: every ground-truth surface point the camera saw on the path (sky excluded) is
dropped onto the ground plane and its cell coloured by the category that covered it most often when the
camera looked there (grey: never seen); black dots: the reference cameras, dark line: the path, circle:
the free disc cameras stay in.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import machine_info  # noqa: E402
from bench.bench_quality import (  # noqa: E402
    BASELINE,
    MAX_PSNR_DB,
    SSIM_RADIUS,
    SSIM_SIGMA,
    SessionFactory,
    _font,
    _generators,
    _json_safe,
    _slug,
    generate,
    opened,
    psnr,
    squared_error,
    ssim_map,
    temporal_error,
)
from starbridge.geometry.camera import Intrinsics  # noqa: E402
from starbridge.geometry.conventions import wire_to_cv  # noqa: E402
from starbridge.geometry.fill import push_pull_fill  # noqa: E402
from starbridge.geometry.splat import SplatResult, SplatterCache, frame_points  # noqa: E402
from starbridge.runtime.generator import FrameRequest  # noqa: E402
from starbridge.runtime.memory import WorldMemory  # noqa: E402
from starbridge.scenes.procedural.paths import (  # noqa: E402
    CLEAR_RADIUS_M,
    ROAM_PATHS,
    roam_paths,
)
from starbridge.scenes.procedural.samples import (  # noqa: E402
    DATA_VERSION,
    Sample,
    SampleConfig,
    iter_samples,
    render_truth,
    sample_to_bundle,
)
from starbridge.scenes.procedural.styles import HELDOUT_STYLES  # noqa: E402
from starbridge.scenes.procedural.world import CLEAR_CENTRE_XZ  # noqa: E402

#: Today's explicit generator (fused world + memory) and the one from before the fused world.
EXPLICIT = BASELINE
REFERENCE_ONLY = "reference-only"
#: Poses per path.
ROAM_POSES = 36
#: Relative depth tolerance of "the reference frame sees this point" (regions).
DEPTH_TOL = 0.02
#: A revisit counts when the path left the pose by at least this much in between (degrees; layout metres).
REVISIT_MIN_TURN_DEG = 30.0
REVISIT_MIN_MOVE_M = 0.5
#: Requested strafe and dolly distances, layout metres (cut to what fits in the free disc).
STRAFE_M = 2.5
DOLLY_M = 2.5
#: Region codes.
VISIBLE, DISOCCLUDED, OUT_OF_VIEW = 0, 1, 2
REGIONS = {"visible": VISIBLE, "disoccluded": DISOCCLUDED, "out_of_view": OUT_OF_VIEW}
#: Coverage categories (uint8 per pixel).
FRAME, WORLD, MEMORY, NONE = 0, 1, 2, 3
CATEGORIES = ("frame", "world", "memory", "none")
CATEGORY_COLOURS = ((40, 170, 70), (40, 160, 190), (245, 170, 30), (215, 40, 40))
REGION_TINT = {DISOCCLUDED: (255, 140, 0), OUT_OF_VIEW: (40, 90, 230)}
UNSEEN = (228, 228, 228)
#: Top-down picture: half the side of the square shown (layout metres) and cells per side.
TOPDOWN_HALF_M = 16.0
TOPDOWN_CELLS = 128
TOPDOWN_CELL_PX = 2
#: Strip columns per path, and the widest tile (larger frames are shrunk for the picture).
STRIP_COLUMNS = 8
STRIP_MAX_TILE = 256


# ---------------------------------------------------------------------------------------------- the old generator


class ReferenceOnlySession:
    """The explicit generator before the fused world (git 6e74102~3): the same-time reference frame splatted
    into the requested camera, holes filled by push-pull; no memory, no history."""

    block_frames = 1

    def __init__(self, scene: Any, width: int, height: int) -> None:
        self.scene = scene
        self.width = width
        self.height = height
        self._splatters = SplatterCache(scene.meta.intrinsics)

    def splat(self, request: FrameRequest) -> SplatResult:
        i = self.scene.frame_index(request.scene_time_s)
        return self._splatters.get(request.intrinsics)(
            self.scene.frames[i], self.scene.depth[i], self.scene.poses[i], request.c2w
        )

    def render(self, request: FrameRequest) -> np.ndarray:
        result = self.splat(request)
        out = np.empty((self.height, self.width, 4), np.uint8)
        out[..., :3] = push_pull_fill(result.colour, result.mask)
        out[..., 3] = 255
        return out

    def generate_block(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        return [self.render(r) for r in requests]

    def reset(self) -> None:
        pass

    def close(self) -> None:
        self._splatters.clear()


class ReferenceOnlyGenerator:
    name = REFERENCE_ONLY
    execution_provider = "numpy"

    def open(self, scene: Any, width: int, height: int) -> ReferenceOnlySession:
        return ReferenceOnlySession(scene, width, height)


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


# ---------------------------------------------------------------------------------------------- coverage


class CoverageProbe:
    """Per-pixel coverage category (FRAME, WORLD, MEMORY, NONE) of a request, from the session's own splat,
    for sessions that have `splat(request) -> SplatResult` (None for others). Call before the request is
    generated (the memory must not yet hold that frame)."""

    def __init__(self, scene: Any) -> None:
        self.scene = scene
        self._frames = SplatterCache(scene.meta.intrinsics)

    def __call__(self, session: Any, request: FrameRequest) -> np.ndarray | None:
        splat = getattr(session, "splat", None)
        if not callable(splat):
            return None
        scene = self.scene
        i = scene.frame_index(request.scene_time_s)
        frame = self._frames.get(request.intrinsics)(scene.frames[i], scene.depth[i], scene.poses[i], request.c2w).mask
        full = splat(request).mask
        memory = getattr(session, "memory", None)
        if isinstance(memory, WorldMemory) and len(memory):
            session.memory = WorldMemory(memory.config)  # the same splat without the memory: what was observed
            try:
                observed = splat(request).mask
            finally:
                session.memory = memory
        else:
            observed = full
        cat = np.full(full.shape, NONE, np.uint8)
        cat[full] = MEMORY
        cat[observed] = WORLD
        cat[frame & observed] = FRAME
        return cat


def run_path(
    session: Any, requests: Sequence[FrameRequest], width: int, height: int, probe: CoverageProbe | None
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Frames of `requests` ((N, H, W, 3) uint8), their coverage categories ((N, H, W) uint8, or None when the
    session has no splat or makes blocks of more than one frame), and the seconds spent generating."""
    if probe is None or int(session.block_frames) != 1 or not callable(getattr(session, "splat", None)):
        frames, spent = generate(session, requests, width, height)
        return frames, None, spent
    frames, cats, spent = [], [], 0.0
    for r in requests:
        cat = probe(session, r)
        assert cat is not None  # the session has a splat
        cats.append(cat)
        f, s = generate(session, [r], width, height)
        frames.append(f[0])
        spent += s
    return np.stack(frames), np.stack(cats), spent


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


# ---------------------------------------------------------------------------------------------- metrics


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


# ---------------------------------------------------------------------------------------------- one path


def evaluate_path(
    factory: SessionFactory,
    scene: Any,
    sample: Sample,
    poses: np.ndarray,
    times: np.ndarray,
    truth: np.ndarray,
    codes: np.ndarray,
    still_truth: np.ndarray,
    pairs: Sequence[tuple[int, int]],
) -> tuple[dict[str, Any], np.ndarray, np.ndarray | None]:
    """Metrics of one generator on one path of one world (fresh sessions), its running-clock frames and their
    coverage categories."""
    intr, w, h = sample.intrinsics, sample.config.width, sample.config.height
    requests = [FrameRequest(p, intr, float(t)) for p, t in zip(poses, times, strict=True)]
    with opened(factory, scene, w, h) as session:
        out, cats, spent = run_path(session, requests, w, h, CoverageProbe(scene))
    record: dict[str, Any] = region_metrics(out, truth, codes)
    record["coverage"] = coverage_stats(cats, codes)
    record["fps"] = len(requests) / spent if spent > 0 else None
    t0 = float(sample.times[0])
    with opened(factory, scene, w, h) as session:
        still, _ = generate(session, [FrameRequest(p, intr, t0) for p in poses], w, h)
    record["temporal_error"] = temporal_error(still, still_truth)
    record["revisit_psnr_db"] = revisit_psnr(still, pairs)
    record["revisit_pairs"] = len(pairs)
    return record, out, cats


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


# ---------------------------------------------------------------------------------------------- report


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(summary: Mapping[str, Mapping[str, dict[str, Any]]], fractions: Mapping[str, dict[str, float]]) -> str:
    """One row per path and generator: coverage, PSNR per region, SSIM, revisit, temporal error, frames/s."""
    head = (
        f"{'path':11} {'generator':22} {'cover':>6} {'observ':>6} {'memory':>6} | {'PSNR vis':>8} {'dis':>6} "
        f"{'out':>6} {'all':>6} | {'SSIM all':>8} {'out':>6} | {'revisit':>7} {'temp err':>8} {'fps':>6}"
    )
    rows = [head, "-" * len(head)]
    for path, gens in summary.items():
        for g, (name, s) in enumerate(gens.items()):
            c = s["coverage"] or {}
            p, q = s["psnr"], s["ssim"]
            rows.append(
                f"{path if g == 0 else '':11} {name:22} {_fmt(c.get('cover'), '6.3f')} "
                f"{_fmt(c.get('observed'), '6.3f')} {_fmt(c.get('memory'), '6.3f')} | "
                f"{_fmt(p['visible'], '8.2f')} {_fmt(p['disoccluded'], '6.2f')} "
                f"{_fmt(p['out_of_view'], '6.2f')} {_fmt(p['all'], '6.2f')} | {_fmt(q['all'], '8.4f')} "
                f"{_fmt(q['out_of_view'], '6.3f')} | {_fmt(s['revisit_psnr_db'], '7.2f')} "
                f"{_fmt(s['temporal_error'], '8.3f')} {_fmt(s['fps'], '6.1f')}"
            )
        f = fractions.get(path)
        if f:
            rows.append(
                f"{'':11} (pixels: {100 * f['visible']:.1f} % visible, {100 * f['disoccluded']:.1f} % disoccluded, "
                f"{100 * f['out_of_view']:.1f} % out of view)"
            )
    rows.append(
        f"(cover: fraction of pixels backed by splatted content before filling, observ: by the reference video "
        f"(same-time frame or fused world), memory: by the session memory; PSNR dB; revisit {MAX_PSNR_DB:g} dB = "
        f"identical frames; temporal error in 8-bit levels)"
    )
    return "\n".join(rows)


def world_table(per_world: Sequence[dict[str, Any]], paths: Sequence[str], a: str, b: str) -> str:
    """Per world and path: coverage and PSNR (all pixels) of generator `a` / generator `b`."""
    width = 24
    head = f"{'world':28}" + "".join(f"{p:>{width}}" for p in paths)
    rows = [f"coverage and PSNR (all pixels), {a} / {b}:", head, "-" * len(head)]
    for world in per_world:
        cov, ps = [], []
        for p in paths:
            ra, rb = world["paths"][p]["generators"][a], world["paths"][p]["generators"][b]
            ca, cb = (r["coverage"]["cover"] if r["coverage"] else None for r in (ra, rb))
            cov.append(f"{_fmt(ca, '.2f')}/{_fmt(cb, '.2f')}")
            ps.append(f"{_fmt(ra['psnr']['all'], '.2f')}/{_fmt(rb['psnr']['all'], '.2f')} dB")
        rows.append(f"{world['world'] + ' cover':28}" + "".join(f"{c:>{width}}" for c in cov))
        rows.append(f"{world['world'] + ' PSNR':28}" + "".join(f"{c:>{width}}" for c in ps))
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------- pictures (Pillow)


def _tile(img: np.ndarray) -> np.ndarray:
    """Shrink a frame to at most STRIP_MAX_TILE wide (integer factor) for the strips."""
    h, w = img.shape[:2]
    k = -(-w // STRIP_MAX_TILE)
    return (
        img
        if k == 1
        else img[: h - h % k, : w - w % k].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3)).astype(np.uint8)
    )


def _tinted(
    frame: np.ndarray, labels: np.ndarray, colours: Mapping[int, tuple[int, int, int]], alpha: float
) -> np.ndarray:
    out = frame.astype(np.float32)
    for label, colour in colours.items():
        sel = labels == label
        out[sel] = (1 - alpha) * out[sel] + alpha * np.asarray(colour, np.float32)
    return out.clip(0, 255).astype(np.uint8)


def strip(
    title: str,
    truth: np.ndarray,
    codes: np.ndarray,
    outputs: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    columns: int = STRIP_COLUMNS,
):
    """PIL image: columns spread over the path; rows ground truth, regions, then per generator its output
    and (with coverage) the output tinted by coverage category."""
    from PIL import Image, ImageDraw

    n = len(truth)
    picks = sorted({round(k * (n - 1) / max(columns - 1, 1)) for k in range(min(columns, n))})
    rows: list[tuple[str, list[np.ndarray]]] = [
        ("ground truth", [truth[i] for i in picks]),
        ("regions", [_tinted(truth[i], codes[i], REGION_TINT, 0.55) for i in picks]),
    ]
    colours = dict(enumerate(CATEGORY_COLOURS))
    for name, (frames, cats) in outputs.items():
        rows.append((name, [frames[i] for i in picks]))
        if cats is not None:
            rows.append((f"{name}: coverage", [_tinted(frames[i], cats[i], colours, 0.5) for i in picks]))
    tiles = [[_tile(t) for t in ts] for _, ts in rows]
    th, tw = tiles[0][0].shape[:2]
    label_w, head, gap = 150, 36, 2
    font = _font(12)
    width = max(
        label_w + len(picks) * (tw + gap),
        int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=font)) + 8,
    )
    img = Image.new("RGB", (width, head + len(rows) * (th + gap)), "white")
    draw = ImageDraw.Draw(img)
    draw.text((4, 9), title, fill="black", font=font, anchor="lm")
    for c, i in enumerate(picks):
        draw.text((label_w + c * (tw + gap) + tw // 2, 27), f"pose {i}", fill=(90, 90, 90), font=font, anchor="mm")
    for r, ((label, _), row) in enumerate(zip(rows, tiles, strict=True)):
        y = head + r * (th + gap)
        words, line = label.split(" "), ""
        lines = []
        for word in words:  # wrap the label into the label column
            if line and draw.textlength(f"{line} {word}", font=font) > label_w - 8:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
        for k, text in enumerate(lines):
            draw.text((4, y + 4 + 14 * k), text, fill="black", font=font)
        for c, t in enumerate(row):
            img.paste(Image.fromarray(t), (label_w + c * (tw + gap), y))
    return img


def topdown(
    sample: Sample,
    flights: Mapping[str, tuple[np.ndarray, np.ndarray]],
    covers: Mapping[str, Mapping[str, np.ndarray]],
):
    """PIL image: one panel per path (columns) and generator with coverage (rows): the world from above, each
    cell coloured by the category that most often covered the surface points there (see the module
    docstring). `flights`: path -> (poses, ground-truth depth); `covers`: generator -> path -> categories."""
    from PIL import Image, ImageDraw

    half = TOPDOWN_HALF_M * sample.scale
    cells, px = TOPDOWN_CELLS, TOPDOWN_CELL_PX
    side = cells * px
    step, o = 2, 1
    intr = sample.intrinsics.subsampled(step)
    head, label_h, gap, legend_h = 18, 16, 6, 24
    paths, gens = list(flights), list(covers)
    img = Image.new("RGB", (len(paths) * (side + gap), head + len(gens) * (side + label_h + gap) + legend_h), "white")
    draw = ImageDraw.Draw(img)
    font = _font(12)
    draw.text(
        (4, head // 2),
        f"{sample.name}: seen from above ({2 * TOPDOWN_HALF_M:g} m square, ahead is up)",
        fill="black", font=font, anchor="lm",
    )  # fmt: skip

    def cell(x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ((x + half) / (2 * half) * cells).astype(np.intp), ((z + half) / (2 * half) * cells).astype(np.intp)

    def to_px(x: float, z: float, x0: int, y0: int) -> tuple[float, float]:
        return x0 + (x + half) / (2 * half) * side, y0 + (z + half) / (2 * half) * side

    for r, gen in enumerate(gens):
        for c, path in enumerate(paths):
            poses, depth = flights[path]
            cats = covers[gen].get(path)
            x0, y0 = c * (side + gap), head + r * (side + label_h + gap)
            draw.text((x0 + 2, y0 + label_h // 2), f"{path}: {gen}", fill="black", font=font, anchor="lm")
            y0 += label_h
            counts = np.zeros((len(CATEGORIES), cells, cells), np.int64)
            if cats is not None:
                for k in range(len(poses)):
                    d = depth[k][o::step, o::step]
                    pts = frame_points(d, intr, poses[k])
                    cat = cats[k][o::step, o::step][d > 0]
                    keep = (pts[:, 3] > 0) & (np.abs(pts[:, 0]) < half) & (np.abs(pts[:, 2]) < half)
                    ix, iz = cell(pts[keep, 0], pts[keep, 2])
                    np.add.at(counts, (cat[keep], np.clip(iz, 0, cells - 1), np.clip(ix, 0, cells - 1)), 1)
            rgb = np.empty((cells, cells, 3), np.uint8)
            rgb[:] = UNSEEN
            seen = counts.sum(axis=0) > 0
            rgb[seen] = np.asarray(CATEGORY_COLOURS, np.uint8)[counts.argmax(axis=0)[seen]]
            panel = np.repeat(np.repeat(rgb, px, axis=0), px, axis=1)
            img.paste(Image.fromarray(panel), (x0, y0))
            cx, cz = CLEAR_CENTRE_XZ[0] * sample.scale, CLEAR_CENTRE_XZ[1] * sample.scale
            rad = CLEAR_RADIUS_M * sample.scale / (2 * half) * side
            ccx, ccy = to_px(cx, cz, x0, y0)
            draw.ellipse([(ccx - rad, ccy - rad), (ccx + rad, ccy + rad)], outline=(120, 120, 120))
            line = [to_px(p[0, 3], p[2, 3], x0, y0) for p in poses]
            if len(line) > 1:
                draw.line(line, fill=(30, 30, 30), width=1)
            for p in poses[:: max(1, len(poses) // 6)]:  # where the camera looks, now and then
                ax, ay = to_px(p[0, 3], p[2, 3], x0, y0)
                fwd = -p[:3, 2]
                draw.line([(ax, ay), (ax + 14 * fwd[0], ay + 14 * fwd[2])], fill=(30, 30, 30), width=1)
            for p in sample.ref_poses:
                rx, ry = to_px(p[0, 3], p[2, 3], x0, y0)
                draw.ellipse([(rx - 2, ry - 2), (rx + 2, ry + 2)], fill="black")
    x, y = 4, img.height - legend_h // 2
    names = ("same-time frame", "fused world", "memory", "nothing (filled)", "never seen")
    for name, colour in zip(names, (*CATEGORY_COLOURS, UNSEEN), strict=True):
        draw.rectangle([(x, y - 6), (x + 12, y + 6)], fill=colour, outline=(80, 80, 80))
        draw.text((x + 16, y), name, fill="black", font=font, anchor="lm")
        x += 32 + int(draw.textlength(name, font=font))
    return img


# ---------------------------------------------------------------------------------------------- the run


def run(
    out_dir: Path | str,
    samples: int = 4,
    models: Sequence[Path | str] = (),
    extra_generators: Mapping[str, SessionFactory] | None = None,
    *,
    start: int = 0,
    poses: int = ROAM_POSES,
    paths: Sequence[str] = ROAM_PATHS,
    strips: int = 1,
    config: SampleConfig | None = None,
    prefer_cuda: bool = False,
) -> dict[str, Any]:
    """Fly every roaming path through held-out worlds start .. start + samples - 1 with every generator;
    print the tables, write the JSON and the pictures to `out_dir`. Returns the report (what the JSON holds)."""
    started = time.perf_counter()
    config = config or SampleConfig()
    unknown = [p for p in paths if p not in ROAM_PATHS]
    if unknown or not paths:
        raise ValueError(f"unknown roam paths {unknown}; paths: {', '.join(ROAM_PATHS)}")
    generators = _generators(models, None, prefer_cuda)
    generators = {EXPLICIT: generators.pop(EXPLICIT), REFERENCE_ONLY: ReferenceOnlyGenerator().open, **generators}
    for name, factory in (extra_generators or {}).items():
        if name in generators:
            raise ValueError(f"generator name {name!r} is taken; pick another for the extra generator")
        generators[name] = factory
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"
    per_world: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="starbridge-roam-") as tmp:
        for k, sample in enumerate(iter_samples("heldout", samples, start=start, config=config)):
            print(f"  world {k + 1}/{samples}: {sample.name} (scale {sample.scale:.3f}) ...", flush=True)
            scene = sample_to_bundle(sample, Path(tmp) / f"w{k}")
            flights = roam_paths(poses, sample.scale, sample.world.eye_height_m, strafe_m=STRAFE_M, dolly_m=DOLLY_M)
            world: dict[str, Any] = {
                "world": sample.name, "seed": sample.seed, "style": sample.style, "scale": sample.scale, "paths": {},
            }  # fmt: skip
            depths: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            covers: dict[str, dict[str, np.ndarray]] = {}
            for path in paths:
                flight, info = flights[path]
                n = len(flight)
                times = (np.arange(n) % sample.frame_count) / sample.config.fps
                truth, depth = render_truth(sample, flight, times)
                ref_index = [scene.frame_index(float(t)) for t in times]
                codes = regions(sample.intrinsics, sample.ref_poses, sample.ref_depth, ref_index, flight, depth)
                still_truth, _ = render_truth(sample, flight, np.full(n, float(sample.times[0])))
                pairs = revisit_pairs(flight, REVISIT_MIN_MOVE_M * sample.scale)
                shares = {name: float((codes == code).mean()) for name, code in REGIONS.items()}
                entry: dict[str, Any] = {
                    **info, "poses": n, "revisit_pairs": len(pairs), "region_fractions": shares, "generators": {},
                }  # fmt: skip
                outputs: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
                for name, factory in generators.items():
                    record, out, cats = evaluate_path(
                        factory, scene, sample, flight, times, truth, codes, still_truth, pairs
                    )
                    record["region_fractions"] = shares
                    entry["generators"][name] = record
                    outputs[name] = (out, cats)
                    if cats is not None:
                        covers.setdefault(name, {})[path] = cats
                world["paths"][path] = entry
                depths[path] = (flight, depth)
                if k < strips:
                    title = f"{sample.name}  {path}: {info['what']}"
                    strip(title, truth, codes, outputs).save(out_dir / f"roam-{host}-strip-{k}-{_slug(path)}.png")
            if k < strips and covers:
                topdown(sample, depths, covers).save(out_dir / f"roam-{host}-topdown-{k}.png")
            per_world.append(world)
    summary: dict[str, dict[str, Any]] = {}
    fractions: dict[str, dict[str, float]] = {}
    for path in paths:
        summary[path] = {
            name: summarise([w["paths"][path]["generators"][name] for w in per_world]) for name in generators
        }
        fractions[path] = summary[path][EXPLICIT]["region_fractions"]
    overall = {name: summarise([summary[p][name] for p in paths]) for name in generators}
    report = {
        "benchmark": "quality-roam",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": {"numpy": np.__version__},
        "settings": {
            "split": "heldout",
            "worlds": [w["world"] for w in per_world],
            "heldout_styles": list(HELDOUT_STYLES),
            "data_version": DATA_VERSION,
            "sample_config": asdict(config),
            "paths": list(paths),
            "poses_per_path": poses,
            "requested_m": {"strafe": STRAFE_M, "dolly": DOLLY_M},
            "clear_radius_m": CLEAR_RADIUS_M,
            "depth_tol": DEPTH_TOL,
            "revisit": {"min_turn_deg": REVISIT_MIN_TURN_DEG, "min_move_m": REVISIT_MIN_MOVE_M, "clock": "frozen"},
            "max_psnr_db": MAX_PSNR_DB,
            "ssim": {"sigma": SSIM_SIGMA, "radius": SSIM_RADIUS, "on": "BT.601 luma"},
            "generators": list(generators),
            "models": [str(m) for m in models],
            "definitions": {
                "visible": "the same-time reference frame sees the ground-truth surface point (depth within "
                f"{DEPTH_TOL:g} relative of its 3x3 farthest depth)",
                "disoccluded": "inside the reference camera's image but hidden behind something nearer",
                "out_of_view": "behind the reference camera or outside its image",
                "cover": "splat mask before hole filling: same-time frame, fused world or memory",
                "observed": "same-time frame or fused world (the video saw it)",
                "memory": "only the session memory (content shown before)",
            },
        },
        "summary": summary,
        "all_paths": overall,
        "per_world": per_world,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    report = _json_safe(report)
    print()
    print(table({**summary, "all paths": overall}, fractions))
    print()
    print(world_table(per_world, list(paths), EXPLICIT, REFERENCE_ONLY))
    json_path = out_dir / f"roam-{host}.json"
    tmp_path = json_path.with_suffix(".json.tmp")
    tmp_path.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp_path, json_path)
    print(f"wrote {json_path} and the strips and top-down pictures beside it")
    return report
