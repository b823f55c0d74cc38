"""Roam benchmark: generators against ground truth far beyond the reference frame (bench_quality --paths roam).

    python bench/bench_quality.py --paths roam [--samples 4] [--width 256 --height 144] [--poses 36]
                                  [--roam-paths turn-left,turn-back,...] [--model BUNDLE ...] [--strips 1] [--out DIR]

This module flies the paths and reports; its parts: bench/roam_sessions.py (the reference-only generator, the
coverage probe), bench/roam_metrics.py (regions, coverage, PSNR / SSIM, revisit, means), bench/roam_pictures.py
(strips, top-down picture).

Worlds: held-out procedural samples (samples.iter_samples("heldout"): seeds and styles training never sees);
each sample's reference clip is written as a scene bundle with its exact moving-object masks (as the demo scene
has them; imported clips get theirs from capture), and ground truth at any pose and time is the sample's world
ray-cast there (samples.render_truth).

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
import os
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

from bench._machine import host_tag, machine_info  # noqa: E402
from bench.bench_quality import (  # noqa: E402
    BASELINE,
    MAX_PSNR_DB,
    SSIM_RADIUS,
    SSIM_SIGMA,
    SessionFactory,
    _generators,
    _json_safe,
    _slug,
    generate,
    opened,
    temporal_error,
)
from bench.roam_metrics import (  # noqa: E402
    DEPTH_TOL,
    OUT_OF_VIEW,
    REGIONS,
    REVISIT_MIN_MOVE_M,
    REVISIT_MIN_TURN_DEG,
    VISIBLE,
    coverage_stats,
    region_metrics,
    regions,
    revisit_pairs,
    revisit_psnr,
    summarise,
)
from bench.roam_pictures import strip, topdown  # noqa: E402
from bench.roam_sessions import REFERENCE_ONLY, CoverageProbe, ReferenceOnlyGenerator, run_path  # noqa: E402
from starbridge.runtime.generator import FrameRequest  # noqa: E402
from starbridge.scenes.procedural.paths import (  # noqa: E402
    CLEAR_RADIUS_M,
    ROAM_PATHS,
    roam_paths,
)
from starbridge.scenes.procedural.raycast import RENDER_VERSION  # noqa: E402
from starbridge.scenes.procedural.samples import (  # noqa: E402
    DATA_VERSION,
    Sample,
    SampleConfig,
    iter_samples,
    moving_masks,
    render_truth,
    sample_to_bundle,
)
from starbridge.scenes.procedural.styles import HELDOUT_STYLES  # noqa: E402

#: Today's explicit generator (fused world + memory); the one from before the fused world is REFERENCE_ONLY.
EXPLICIT = BASELINE
#: Poses per path.
ROAM_POSES = 36
#: Requested strafe and dolly distances, layout metres (cut to what fits in the free disc).
STRAFE_M = 2.5
DOLLY_M = 2.5
#: What the tests and callers use from the parts (the module splits them by job).
__all__ = [
    "EXPLICIT", "OUT_OF_VIEW", "REFERENCE_ONLY", "ROAM_POSES", "VISIBLE", "ReferenceOnlyGenerator", "evaluate_path",
    "regions", "revisit_pairs", "run", "table", "world_table",
]  # fmt: skip


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
    host = host_tag()
    per_world: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="starbridge-roam-") as tmp:
        for k, sample in enumerate(iter_samples("heldout", samples, start=start, config=config)):
            print(f"  world {k + 1}/{samples}: {sample.name} (scale {sample.scale:.3f}) ...", flush=True)
            scene = sample_to_bundle(sample, Path(tmp) / f"w{k}", moving=moving_masks(sample))  # as the demo has
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
            "render_version": RENDER_VERSION,
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
