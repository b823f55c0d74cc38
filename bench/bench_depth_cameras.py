"""The depth stage on the tracked cameras and on the true ones: how much of a clip's depth error is the tracking's.

    python bench/bench_depth_cameras.py [--clips w2:moving,w0:moving,w0:dolly,w0:handheld] [--frames 40]
        [--crf 16] [--out DIR]

Each clip is filmed in the procedural world (48 degrees), encoded to H.264 and decoded as `scene import` does,
and tracked with its field of view given (`track_camera`). Then the depth stage (`estimate_depth`, multi-view
stereo, fill and regions; not the later stages of the import: moving objects, planes, ground fill) runs twice
on the same decoded frames:

* ``tracked``: the tracked cameras, sparse points and keyframes, as the import runs it; its depth brought to
  metres by the scale of the similarity that aligns the tracked camera path with the true one;
* ``true``: the true cameras, and the tracked sparse points brought to metres by that scale (both worlds are
  anchored at the first frame's camera; so both runs sweep about the same depth range), the same keyframes.

Measured on the static pixels with a finite true depth and a finite estimate: AbsRel (each pixel's error capped
at 1, bench_capture's), that by true distance (0-8, 8-25, 25-60, 60+ m: each range's share of the mean, and its
median ratio of estimated to true depth), and the **inverse-depth offset**: the median of estimated minus true
inverse depth (1/km) on the confident pixels 8-60 m away. An error in the cameras' relative rotations that
grows with their distance apart (the yaw rate of a camera walking sideways, docs/capture-measurements.md)
turns every stereo pair's inverse depth by about the same amount, so it shows as an offset there (negative:
placed too far), where the true cameras give about 0. Written: out/depth-cameras-<hostname>.json. About 90 s
a clip on two cores.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir, write_json  # noqa: E402
from bench.bench_capture import _capped_error, _similarity_error, rotation_errors  # noqa: E402
from bench.bench_capture_variants import Clip, parse_clip  # noqa: E402
from starbridge import __version__  # noqa: E402
from starbridge.errors import InvalidArgument  # noqa: E402
from starbridge.scenes.capture.depth import estimate_depth  # noqa: E402
from starbridge.scenes.capture.tracking import track_camera  # noqa: E402
from starbridge.scenes.procedural.clips import ClipConfig, render_clip  # noqa: E402
from starbridge.scenes.video import decode_video  # noqa: E402

DEFAULT_CLIPS = "w2:moving,w0:moving,w0:dolly,w0:handheld"
FOV_DEG = 48.0
#: True distances (metres) the error is split by.
RANGES_M = ((0.0, 8.0), (8.0, 25.0), (25.0, 60.0), (60.0, float("inf")))
#: The confident pixels whose inverse-depth offset is reported lie this far away (metres).
OFFSET_RANGE_M = (8.0, 60.0)


def depth_errors(est: np.ndarray, confident: np.ndarray, truth: np.ndarray, moving: np.ndarray) -> dict[str, Any]:
    """AbsRel and its split by distance, and the inverse-depth offset (module docstring), of (N, H, W) depth
    `est` in metres (+inf at infinity) against `truth`; `confident` the estimate's matched pixels, `moving` the
    truly moving pixels (left out)."""
    both = np.isfinite(truth) & ~moving & np.isfinite(est) & (est > 0)
    if not both.any():
        raise ValueError("no static pixel with a finite depth in both the estimate and the truth")
    ratio = est[both] / truth[both]
    err = _capped_error(ratio)
    true_depth = truth[both]
    by_range = []
    for lo, hi in RANGES_M:
        sel = (true_depth >= lo) & (true_depth < hi)
        if sel.any():
            by_range.append({
                "from_m": lo, "to_m": hi if np.isfinite(hi) else None, "share": float(sel.mean()),
                "contribution": float(err[sel].sum() / err.size), "median_ratio": float(np.median(ratio[sel])),
            })  # fmt: skip
    lo, hi = OFFSET_RANGE_M
    sel = both & confident & (truth >= lo) & (truth < hi)
    offset = float(np.median(1.0 / est[sel] - 1.0 / truth[sel])) * 1000.0 if sel.any() else None
    return {"absrel": float(err.mean()), "by_range": by_range, "inverse_offset_per_km": offset,
            "offset_pixels": int(sel.sum())}  # fmt: skip


def measure(clip_spec: Clip, frames: int, crf: int, work: Path) -> dict[str, Any]:
    """One clip: tracked, then its depth on the tracked and on the true cameras (module docstring)."""
    filming = ClipConfig(kind=clip_spec.kind, frames=frames, width=clip_spec.width, height=clip_spec.height,
                         vertical_fov_deg=FOV_DEG, world_seed=clip_spec.world)  # fmt: skip
    clip = render_clip(filming)
    mp4 = clip.write_mp4(work / f"{clip_spec.name}.mp4".replace(":", "-"), crf=crf)
    decoded = decode_video(mp4, max(clip_spec.width, clip_spec.height), 0, lambda *a: None).frames
    track = track_camera(decoded, vertical_fov_deg=FOV_DEG)
    if track.rotation_only:
        raise InvalidArgument(f"clip {clip_spec.name}: tracked as rotation only, no depth to compare")
    scale = _similarity_error(track.poses, clip.poses)[1]  # metres per tracked unit
    if scale <= 0:
        raise InvalidArgument(f"clip {clip_spec.name}: the camera path has no length")
    runs: dict[str, Any] = {}
    # both worlds are anchored at the first frame's camera (the identity), so the scale alone carries the points
    # across (a similarity fitted to the centres leaves a straight path free to turn about itself)
    points_true = scale * np.asarray(track.points, np.float64)
    for name, poses, points, unit in (
        ("tracked", track.poses, track.points, scale),
        ("true", clip.poses, points_true, 1.0),
    ):
        result = estimate_depth(decoded, clip.intrinsics, poses, keyframes=track.keyframes, sparse_points=points)
        runs[name] = depth_errors(result.depth * unit, result.confident, clip.depth, clip.moving)
        runs[name]["seconds"] = round(result.seconds, 1)
    return {
        "clip": clip_spec.name, "frames": frames, "size": [clip_spec.width, clip_spec.height], "crf": crf,
        "rotation_error_deg_median": float(np.median(rotation_errors(track.poses, clip.poses))),
        "keyframes": len(track.keyframes), "runs": runs,
    }  # fmt: skip


def _table(rows: list[dict[str, Any]]) -> str:
    head = "clip | cameras | AbsRel | <8 m | 8-25 m | 25-60 m | >60 m | offset 1/km (8-60 m, confident)"
    lines = [head, "-" * len(head)]
    for row in rows:
        for name, run in row["runs"].items():
            parts = {(r["from_m"], r["to_m"]): r for r in run["by_range"]}
            cells = []
            for lo, hi in RANGES_M:
                r = parts.get((lo, hi if np.isfinite(hi) else None))
                cells.append(f"{r['contribution']:.3f} (x{r['median_ratio']:.2f})" if r else "-")
            offset = run["inverse_offset_per_km"]
            said = "-" if offset is None else f"{offset:+.2f}"
            lines.append(f"{row['clip']} | {name} | {run['absrel']:.3f} | " + " | ".join(cells) + f" | {said}")
    return "\n".join(lines)


def run(out: Path, clips: list[Clip], frames: int = 40, crf: int = 16) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="starbridge-depth-cameras-") as tmp:
        for spec in clips:
            print(f"{spec.name}: tracking and two depth runs ...", flush=True)
            rows.append(measure(spec, frames, crf, Path(tmp)))
    print(_table(rows))
    report = {
        "benchmark": "depth_cameras", "version": __version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine_info(),
        "fov_deg": FOV_DEG, "clips": rows,
    }  # fmt: skip
    path = write_json(out / f"depth-cameras-{host_tag()}.json", report)
    print(f"wrote {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--clips", default=DEFAULT_CLIPS, help="w<world>:<kind>[:<W>x<H>],... (default %(default)s)")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--crf", type=int, default=16, help="H.264 quality (lower is better; default %(default)s)")
    add_out_argument(p)
    args = p.parse_args(argv)
    try:
        clips = [parse_clip(c) for c in args.clips.split(",")]
    except InvalidArgument as exc:
        p.error(str(exc))
    if any(c.kind == "pan" for c in clips):
        p.error("a tripod pan has no depth to compare (rotation only)")
    if args.frames < 8:
        p.error(f"--frames must be at least 8, got {args.frames}")
    if not 0 <= args.crf <= 51:
        p.error(f"--crf must be in [0, 51], got {args.crf}")
    run(out_dir(args.out), clips, args.frames, args.crf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
