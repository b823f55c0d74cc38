"""How well does a clip's camera motion measure the field of view, once tracking has refined its observations?

    python bench/bench_fov_valley.py [--kinds handheld,orbit,moving,dolly] [--fov 48] [--frames 40]
        [--width 320] [--height 180] [--lossless] [--seeds 8] [--out DIR]

For each ground-truth clip (scenes/procedural/clips.py, filmed at `--fov` degrees, through H.264 as
bench_capture.py does; `--lossless`: the rendered frames), the camera is tracked with the field of view
estimated (capture/tracking.py), then its refined observations (track_refine.py: every observation aligned
onto its point's middle patch) are adjusted again, every posed frame and point together (adjust_all):

* at fixed fields of view around the truth (`--offsets`): the adjustment's robust (Cauchy) cost over all
  observations and the median rotation error against the truth: the "valley" the motion leaves the focal
  length in (flat: the motion does not measure it);
* with the focal length free, from the tracked estimate: where it lands, with all frames, the keyframes only
  and every other frame (how much it wanders with the data);
* the observations against the truth (`truth_errors`): each tracked point placed where the true depth and
  cameras put its observations (their median), projected back into every frame that sees it: the observations'
  error in pixels, on horizontal surfaces (mostly the ground) and elsewhere; where the free focal length lands
  when those exact projections plus white noise of the observations' own spread replace them (`--seeds` draws:
  what this motion and these points could measure, mean and standard deviation) and when only the horizontal
  surfaces' observations are replaced by their exact projections (their share of the landing's error).

Diagnostic, not a target: track_fov.py quotes its numbers (why the search stays, and why tracking's last
measurement of the field of view, after the refinement, uses a tight robust loss).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pycolmap

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from scipy.spatial.transform import Rotation  # noqa: E402

from bench._machine import add_out_argument, host_tag, machine_info, out_dir, write_json  # noqa: E402
from starbridge import __version__  # noqa: E402
from starbridge.geometry.conventions import wire_to_cv  # noqa: E402
from starbridge.scenes.capture.track_mapping import focal_of, fov_of  # noqa: E402
from starbridge.scenes.capture.track_refine import RefineConfig, Refined, adjust_all  # noqa: E402
from starbridge.scenes.capture.tracking import TrackResult, track_camera  # noqa: E402
from starbridge.scenes.procedural.clips import ClipConfig, render_clip  # noqa: E402
from starbridge.scenes.video import decode_video  # noqa: E402

Observations = list[tuple[int, np.ndarray, np.ndarray]]


def _rotation_error(w2c: dict[int, np.ndarray], truth: np.ndarray) -> float:
    """Median angle (degrees) between the adjusted and the true camera orientations, both relative to the
    first posed frame."""
    frames = sorted(w2c)
    est = np.array([w2c[f][:, :3].T for f in frames])  # OpenCV camera-to-world rotations
    true = np.array([wire_to_cv(truth[f])[:3, :3] for f in frames])
    rel_est = np.einsum("ji,njk->nik", est[0], est)
    rel_true = np.einsum("ji,njk->nik", true[0], true)
    return float(np.median(np.degrees(Rotation.from_matrix(np.einsum("nji,njk->nik", rel_est, rel_true)).magnitude())))


def _cauchy_cost(model: Refined, obs: Observations, focal: float, size: tuple[int, int]) -> float:
    """Sum over every observation of log(1 + r^2), r its reprojection error in pixels (the adjustment's loss)."""
    w, h = size
    total = 0.0
    for frame, xy, rows in obs:
        pose = model.w2c[frame]
        cam = model.points[rows] @ pose[:, :3].T + pose[:, 3]
        ok = cam[:, 2] > 1e-9
        u = focal * cam[ok, 0] / cam[ok, 2] + w / 2
        v = focal * cam[ok, 1] / cam[ok, 2] + h / 2
        total += float(np.log1p((u - xy[ok, 0]) ** 2 + (v - xy[ok, 1]) ** 2).sum())
    return total


def _posed(result: TrackResult) -> tuple[dict[int, np.ndarray], Observations]:
    """The tracked frames' OpenCV world-to-camera poses and observations (input pixels = tracking pixels at
    the benchmark's sizes)."""
    frames = [i for i, s in enumerate(result.pose_sources) if s != "interpolated"]
    w2c = {i: np.linalg.inv(wire_to_cv(result.poses[i]))[:3] for i in frames}
    obs = []
    for i in frames:
        xy, ids = result.observations(i)
        obs.append((i, xy.astype(np.float64), ids.astype(np.int64)))
    return w2c, obs


#: A point's true position is trusted where the four pixel centres around an observation agree to this
#: fraction of their inverse depth (one surface; the bilinear inverse depth is exact on a plane).
ONE_SURFACE = 0.03
#: An observation is on a horizontal surface where the true normal is within about 25 degrees of vertical.
HORIZONTAL_NORMAL_Y = 0.9


def _true_points(clip: Any, obs: Observations, focal: float, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Every observation's position on the true surface (world, OpenCV axes; nan where the pixel straddles two
    surfaces or sees the sky) and whether that surface is horizontal."""
    w, h = size
    world, flat = [], []
    for frame, xy, _ in obs:
        inv = 1.0 / clip.depth[frame].astype(np.float64)  # 0 for the sky
        px = np.clip(xy[:, 0] - 0.5, 0, w - 1.001)
        py = np.clip(xy[:, 1] - 0.5, 0, h - 1.001)
        x0, y0 = px.astype(int), py.astype(int)
        ax, ay = px - x0, py - y0
        q = np.stack([inv[y0, x0], inv[y0, x0 + 1], inv[y0 + 1, x0], inv[y0 + 1, x0 + 1]], 1)
        iv = (1 - ay) * ((1 - ax) * q[:, 0] + ax * q[:, 1]) + ay * ((1 - ax) * q[:, 2] + ax * q[:, 3])
        one = (q.min(1) > 0) & (q.max(1) - q.min(1) < ONE_SURFACE * q.mean(1))
        z = np.where(one, 1.0 / np.maximum(iv, 1e-12), np.nan)
        c2w = wire_to_cv(clip.poses[frame])
        cam = np.stack([(xy[:, 0] - w / 2) / focal * z, (xy[:, 1] - h / 2) / focal * z, z], 1)
        world.append(cam @ c2w[:3, :3].T + c2w[:3, 3])
        # the true normal from the pixel's right and lower neighbours (their centres, their own depths)
        zz = clip.depth[frame].astype(np.float64)
        xi, yi = np.clip(x0, 0, w - 2), np.clip(y0, 0, h - 2)
        pts = []
        for dx, dy in ((0, 0), (1, 0), (0, 1)):
            d = zz[yi + dy, xi + dx]
            pts.append(np.stack([(xi + dx + 0.5 - w / 2) / focal * d, (yi + dy + 0.5 - h / 2) / focal * d, d], 1))
        with np.errstate(invalid="ignore", divide="ignore"):  # the sky's infinite depths: no normal
            normal = np.cross(pts[1] - pts[0], pts[2] - pts[0]) @ c2w[:3, :3].T
            # OpenCV world axes: y points down, so a horizontal surface's normal is along y
            flat.append(np.abs(normal[:, 1]) / np.linalg.norm(normal, axis=1) > HORIZONTAL_NORMAL_Y)
    return np.concatenate(world), np.concatenate(flat)


def _truth_errors(clip: Any, result: TrackResult, w2c: dict[int, np.ndarray], obs: Observations,
                  size: tuple[int, int], seeds: int) -> dict[str, Any]:  # fmt: skip
    """The observations against the truth and what they do to the free focal length (module docstring)."""
    w, h = size
    focal = focal_of(result.vertical_fov_deg, h)
    true_focal = focal_of(clip.intrinsics.vertical_fov_deg, h)
    world, flat = _true_points(clip, obs, true_focal, size)
    ids = np.concatenate([o[2] for o in obs])
    frames = np.concatenate([np.full(len(o[2]), o[0]) for o in obs])
    xy = np.concatenate([o[1] for o in obs])
    centre = np.full((len(result.points), 3), np.nan)
    for point in np.unique(ids):
        mine = world[(ids == point) & np.isfinite(world[:, 0])]
        if len(mine) >= 2:
            centre[point] = np.median(mine, axis=0)
    exact = np.full_like(xy, np.nan)
    for frame in np.unique(frames):
        sel = frames == frame
        w2c_true = np.linalg.inv(wire_to_cv(clip.poses[frame]))
        cam = centre[ids[sel]] @ w2c_true[:3, :3].T + w2c_true[:3, 3]
        exact[sel] = true_focal * cam[:, :2] / cam[:, 2:] + np.array([w / 2, h / 2])
    known = np.isfinite(exact[:, 0])
    err = xy - exact
    norm = np.hypot(err[:, 0], err[:, 1])

    def stats(sel: np.ndarray) -> dict[str, float]:
        return {"observations": int(sel.sum()), "median_px": float(np.median(norm[sel])),
                "p90_px": float(np.percentile(norm[sel], 90)),
                "median_x_px": float(np.median(np.abs(err[sel, 0]))),
                "median_y_px": float(np.median(np.abs(err[sel, 1])))} if sel.any() else {"observations": 0}  # fmt: skip

    def landing(positions: np.ndarray) -> float:
        grouped = [(f, positions[(frames == f) & known], ids[(frames == f) & known]) for f in np.unique(frames)]
        model = adjust_all(w2c, result.points, grouped, focal, size, RefineConfig(refine_focal=True))
        return fov_of(model.focal, h)

    sigma = 1.4826 * float(np.median(np.abs(err[known])))  # the errors' robust spread, per coordinate
    draws = [landing(exact + np.random.default_rng(seed).normal(0.0, sigma, exact.shape)) for seed in range(seeds)]
    return {
        "observations_with_truth": int(known.sum()), "observations": len(xy),
        "all": stats(known), "horizontal": stats(known & flat), "other": stats(known & ~flat),
        "free_focal_fov_real": landing(xy),
        "white_noise_px": sigma, "free_focal_fov_white_noise": {"mean": float(np.mean(draws)),
                                                               "sd": float(np.std(draws)), "draws": draws},
        "free_focal_fov_horizontal_exact": landing(np.where((known & flat)[:, None], exact, xy)),
    }  # fmt: skip


def measure(
    kind: str, fov: float, frames: int, width: int, height: int, offsets: list[float], work: Path, lossless: bool,
    seeds: int = 0,
) -> dict:  # fmt: skip
    clip = render_clip(ClipConfig(kind=kind, frames=frames, width=width, height=height, vertical_fov_deg=fov))
    decoded = (
        clip.frames
        if lossless
        else decode_video(clip.write_mp4(work / f"{kind}.mp4"), max(width, height), 0, lambda *a: None).frames
    )
    t0 = time.perf_counter()
    result = track_camera(decoded)
    seconds = time.perf_counter() - t0
    if result.rotation_only:
        return {"kind": kind, "rotation_only": True, "fov_estimated": result.vertical_fov_deg}
    w2c, obs = _posed(result)
    size = (width, height)
    valley = []
    for off in offsets:
        f = focal_of(fov + off, height)
        model = adjust_all(w2c, result.points, obs, f, size, RefineConfig(outlier_px=0.0))
        valley.append({"fov": fov + off, "cost": _cauchy_cost(model, obs, f, size),
                       "rotation_error_deg": _rotation_error(model.w2c, clip.poses)})  # fmt: skip
    start = focal_of(result.vertical_fov_deg, height)
    free_cfg = RefineConfig(refine_focal=True)
    keyframes = set(result.keyframes)
    subsets = {
        "all": (w2c, obs),
        "keyframes": ({k: v for k, v in w2c.items() if k in keyframes}, [o for o in obs if o[0] in keyframes]),
        "every_2nd": ({k: v for k, v in w2c.items() if k % 2 == 0}, [o for o in obs if o[0] % 2 == 0]),
    }
    out = {
        "kind": kind, "rotation_only": False, "fov_true": fov, "fov_estimated": result.vertical_fov_deg,
        "fov_source": result.fov_source, "tracking_s": round(seconds, 2),
        "rotation_error_deg_tracked": _rotation_error(w2c, clip.poses), "valley": valley,
    }  # fmt: skip
    quiet, pycolmap.logging.minloglevel = pycolmap.logging.minloglevel, 3  # a subset's lone points: solver warnings
    try:
        out["free_focal_fov"] = {name: fov_of(adjust_all(p, result.points, o, start, size, free_cfg).focal, height)
                                 for name, (p, o) in subsets.items()}  # fmt: skip
        if seeds:
            out["truth_errors"] = _truth_errors(clip, result, w2c, obs, size, seeds)
    finally:
        pycolmap.logging.minloglevel = quiet
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        if r["rotation_only"]:
            lines.append(f"{r['kind']:<9} rotation only (estimated {r['fov_estimated']:.2f}): not a free motion")
            continue
        best = min(r["valley"], key=lambda v: v["cost"])["cost"]
        valley = "  ".join(f"{v['fov']:.1f}:+{v['cost'] - best:.1f}/{v['rotation_error_deg']:.2f}" for v in r["valley"])
        free = ", ".join(f"{k} {v:.2f}" for k, v in r["free_focal_fov"].items())
        lines.append(
            f"{r['kind']:<9} true {r['fov_true']:g}, tracked {r['fov_estimated']:.2f} ({r['fov_source']}, "
            f"{r['tracking_s']:.0f} s)\n  fixed fov: cost above the lowest / rotation error deg: {valley}\n"
            f"  focal length free -> fov: {free}"
        )
        t = r.get("truth_errors")
        if t:
            parts = "; ".join(f"{k} {t[k]['median_px']:.3f} / {t[k]['p90_px']:.3f} (x {t[k]['median_x_px']:.3f}, "
                              f"y {t[k]['median_y_px']:.3f}; {t[k]['observations']})"
                              for k in ("all", "horizontal", "other") if t[k]["observations"])  # fmt: skip
            white = t["free_focal_fov_white_noise"]
            lines.append(
                f"  observations against the truth, median / p90 px: {parts}\n"
                f"  focal length free -> fov: the real observations {t['free_focal_fov_real']:.2f}; exact + white "
                f"noise {t['white_noise_px']:.2f} px {white['mean']:.2f} +- {white['sd']:.2f}; horizontal surfaces "
                f"exact {t['free_focal_fov_horizontal_exact']:.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--kinds", default="handheld,orbit,moving,dolly")
    p.add_argument("--fov", type=float, default=48.0)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=180)
    p.add_argument("--offsets", default="-3,-1.5,0,1.5,3", help="fixed fields of view: the truth plus these")
    p.add_argument("--lossless", action="store_true", help="track the rendered frames, not the H.264 clip's")
    p.add_argument("--seeds", type=int, default=8,
                   help="white-noise draws of the observations against the truth (0: not measured)")  # fmt: skip
    add_out_argument(p)
    args = p.parse_args(argv)
    out = out_dir(args.out)
    offsets = [float(x) for x in args.offsets.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="starbridge-fov-valley-") as tmp:
        for kind in args.kinds.split(","):
            rows.append(
                measure(
                    kind, args.fov, args.frames, args.width, args.height, offsets, Path(tmp), args.lossless, args.seeds
                )
            )
            print(_table(rows[-1:]), flush=True)
    report = {
        "benchmark": "fov_valley",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "kinds": args.kinds.split(","),
            "fov": args.fov,
            "frames": args.frames,
            "size": [args.width, args.height],
            "offsets": offsets,
            "lossless": args.lossless,
            "seeds": args.seeds,
        },  # fmt: skip
        "machine": machine_info(),
        "versions": {"starbridge": __version__},
        "provider": "CPU (numpy, pycolmap)",
        "clips": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = write_json(out / f"fov-valley-{host_tag()}.json", report)
    print(f"wrote {path}")
    return 0 if all(math.isfinite(r["fov_estimated"]) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
