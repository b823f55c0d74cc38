"""Quality benchmark: generated frames against ground truth on held-out procedural scenes (docs/architecture.md §7).

    python bench/bench_quality.py [--samples N] [--model BUNDLE ...] [--strips K] [--cuda] [--out DIR]
    python bench/bench_quality.py --paths roam [--samples N] [--width W --height H] [--poses N] [--out DIR]

Two sets of camera paths: ``--paths small`` (the default, everything below): each sample's novel path, small
moves around the reference camera; ``--paths roam``: turns of 90 and 180 degrees, strafes and dollies of a few
metres and returns to earlier poses, far beyond the reference frame, with coverage and an out-of-view region
(bench/roam_quality.py, whose docstring defines its metrics; JSON roam-<host>.json).

Held-out samples (starbridge.scenes.procedural.samples: seeds *and* styles training never sees). Each sample's
reference clip is written as a scene bundle and every generator opens sessions on it:

* ``explicit-fill``: the baseline (explicit render + push-pull fill), always;
* each STAR model bundle given (runtime.star.StarGenerator, ONNX Runtime);
* extra generators passed by code, ``name -> factory(scene_bundle, width, height)``, returning an object with
  ``block_frames`` and ``generate_block(requests) -> list of (H, W, 4) uint8`` (e.g. the PyTorch teacher).

Metrics, per sample, then the mean over samples:

* **novel path**: the novel camera path is requested in blocks (scene clock running) and compared with
  ground truth: PSNR and SSIM over VISIBLE pixels (mask True: the explicit render has a reference point
  there), DISOCCLUDED pixels (mask False: holes, and what the reference view never saw) and ALL pixels.
  PSNR pools the squared error (8-bit RGB) over the sample's frames, capped at MAX_PSNR_DB. SSIM: Gaussian
  window (sigma 1.5, 11 taps) on BT.601 luma, C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 255, the map averaged
  over the pixels of each kind.
* **revisit**: scene clock frozen; in one session the camera holds pose A, moves to B (REVISIT_OFFSET_M to
  the right, turned REVISIT_YAW_DEG to the right) and comes back to A; PSNR between the frames made at A
  before and after (higher is more consistent; identical frames give MAX_PSNR_DB).
* **flicker**: scene clock frozen (a static scene) while the camera follows the novel path: mean |frame i+1 -
  frame i| of the output minus the same for ground truth, 8-bit levels (0: changes exactly as much as the
  world does; above 0: flicker; lower is better). Below 0 means smoother than the world (e.g. a blurry
  output), so the JSON also has **temporal_error**: mean |(output i+1 - output i) - (truth i+1 - truth i)|,
  which counts both against a generator.

Writes out_dir/quality-<host>.json (with machine info), bar charts quality-<host>-psnr.png, -ssim.png and
-consistency.png, and frame strips quality-<host>-strip-<generator>-<k>.png (render | mask | output | ground
truth, one row per frame) for the first `strips` samples.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import math
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir, write_json  # noqa: E402
from starbridge.runtime.generator import FrameRequest  # noqa: E402
from starbridge.scenes.procedural.paths import pose  # noqa: E402
from starbridge.scenes.procedural.raycast import RENDER_VERSION  # noqa: E402
from starbridge.scenes.procedural.samples import (  # noqa: E402
    DATA_VERSION,
    Sample,
    SampleConfig,
    iter_samples,
    render_truth,
    sample_to_bundle,
)
from starbridge.scenes.procedural.styles import HELDOUT_STYLES  # noqa: E402

#: PSNR of identical images (and the cap of any PSNR), dB.
MAX_PSNR_DB = 100.0
#: SSIM: Gaussian window sigma and radius (11 taps), and its constants for 8-bit values.
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
SSIM_C1 = (0.01 * 255) ** 2
SSIM_C2 = (0.03 * 255) ** 2
#: Revisit: pose B is A moved this far to the right (scene units) and turned this far to the right (degrees).
REVISIT_OFFSET_M = 0.5
REVISIT_YAW_DEG = 25.0
#: Revisit: frames held at A (and at B), and frames of each move between them (rounded up to whole blocks).
REVISIT_HOLD_FRAMES = 2
REVISIT_RAMP_FRAMES = 4
BASELINE = "explicit-fill"

#: What the bench asks of a session (GeneratorSession without reset/close, which are used when present).
SessionFactory = Callable[[Any, int, int], Any]


# ---------------------------------------------------------------------------------------------- metrics


def psnr(mse: float) -> float:
    """PSNR in dB of a mean squared error of 8-bit values, capped at MAX_PSNR_DB."""
    return MAX_PSNR_DB if mse <= 255.0**2 * 10 ** (-MAX_PSNR_DB / 10) else 10.0 * math.log10(255.0**2 / mse)


def squared_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., H, W) per-pixel squared error summed over RGB / 3, of uint8 (..., H, W, 3) images."""
    d = a.astype(np.float32) - b.astype(np.float32)
    return np.einsum("...c,...c->...", d, d) / np.float32(3.0)


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float64 BT.601 luma of an (H, W, 3) uint8 sRGB image, in [0, 255]."""
    return rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _gaussian_blur(x: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter (SSIM_SIGMA, SSIM_RADIUS) of an (H, W) array, edges reflected."""
    k = np.exp(-0.5 * (np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1) / SSIM_SIGMA) ** 2)
    k /= k.sum()
    r = SSIM_RADIUS
    p = np.pad(x, r, mode="reflect")
    h, w = x.shape
    rows = sum(k[i] * p[i : i + h, :] for i in range(2 * r + 1))
    return sum(k[i] * rows[:, i : i + w] for i in range(2 * r + 1))


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W) SSIM map of two (H, W, 3) uint8 images on luma (Wang et al. 2004, Gaussian window)."""
    x, y = luma(a), luma(b)
    mx, my = _gaussian_blur(x), _gaussian_blur(y)
    sxx = _gaussian_blur(x * x) - mx * mx
    syy = _gaussian_blur(y * y) - my * my
    sxy = _gaussian_blur(x * y) - mx * my
    return ((2 * mx * my + SSIM_C1) * (2 * sxy + SSIM_C2)) / ((mx * mx + my * my + SSIM_C1) * (sxx + syy + SSIM_C2))


def image_metrics(out: np.ndarray, truth: np.ndarray, masks: np.ndarray) -> dict[str, Any]:
    """PSNR and SSIM of (N, H, W, 3) outputs against truth over visible (mask), disoccluded (~mask) and all
    pixels; None for a kind with no pixel."""
    err = squared_error(out, truth)
    ssim = np.stack([ssim_map(o, t) for o, t in zip(out, truth, strict=True)])
    kinds = {"visible": masks, "disoccluded": ~masks, "all": np.ones_like(masks)}
    result: dict[str, Any] = {"psnr": {}, "ssim": {}}
    for kind, sel in kinds.items():
        any_pixel = bool(sel.any())
        result["psnr"][kind] = psnr(float(err[sel].mean())) if any_pixel else None
        result["ssim"][kind] = float(ssim[sel].mean()) if any_pixel else None
    result["disoccluded_fraction"] = float((~masks).mean())
    return result


def temporal_error(frames: np.ndarray, truth: np.ndarray) -> float:
    """Mean |(frame i+1 - frame i) - (truth i+1 - truth i)|, 8-bit levels: like flicker, but over-smoothing
    (changing less than the world does) counts against a generator too."""
    f, t = frames.astype(np.float32), truth.astype(np.float32)
    return float(np.abs((f[1:] - f[:-1]) - (t[1:] - t[:-1])).mean()) if len(f) > 1 else 0.0


def mean_abs_step(frames: np.ndarray) -> float:
    """Mean |frame i+1 - frame i| over pixels, channels and consecutive pairs, 8-bit levels."""
    f = frames.astype(np.float32)
    return float(np.abs(f[1:] - f[:-1]).mean()) if len(f) > 1 else 0.0


# ---------------------------------------------------------------------------------------------- generators


@contextlib.contextmanager
def opened(factory: SessionFactory, scene: Any, width: int, height: int) -> Iterator[Any]:
    """A session of `factory` on `scene`, closed afterwards (when it has a close method)."""
    session = factory(scene, width, height)
    try:
        yield session
    finally:
        close = getattr(session, "close", None)
        if callable(close):
            close()


def generate(session: Any, requests: Sequence[FrameRequest], width: int, height: int) -> tuple[np.ndarray, float]:
    """Make the frames of `requests` in blocks of session.block_frames (the last block padded by repeating its
    last request). Returns ((N, H, W, 3) uint8 frames, seconds spent in generate_block)."""
    bf = int(session.block_frames)
    padded = list(requests) + [requests[-1]] * (-len(requests) % bf)
    frames: list[np.ndarray] = []
    spent = 0.0
    for b in range(0, len(padded), bf):
        t0 = time.perf_counter()
        block = session.generate_block(padded[b : b + bf])
        spent += time.perf_counter() - t0
        for f in block:
            f = np.asarray(f)
            if f.ndim != 3 or f.shape[:2] != (height, width) or f.shape[2] not in (3, 4) or f.dtype != np.uint8:
                raise ValueError(
                    f"a generator returned a frame of shape {f.shape} {f.dtype}, expected ({height}, {width}, 4) uint8"
                )
            frames.append(f[..., :3])
    return np.stack(frames[: len(requests)]), spent


def _generators(
    models: Sequence[Path | str],
    extra: Mapping[str, SessionFactory] | None,
    prefer_cuda: bool,
    composite: bool = False,
) -> dict[str, SessionFactory]:
    from starbridge.runtime.explicit import ExplicitGenerator

    out: dict[str, SessionFactory] = {BASELINE: ExplicitGenerator().open}
    for path in models:
        from starbridge.runtime.star import StarGenerator

        gen = StarGenerator(path, prefer_cuda=prefer_cuda)
        name = gen.name if gen.name not in out else f"{gen.name}@{Path(path).name}"
        out[name] = gen.open
        if composite:  # the same model serving the render's valid pixels and its own output in the holes
            both = StarGenerator(path, prefer_cuda=prefer_cuda, composite=not gen.composite_visible)
            out[f"{name} ({'composited' if both.composite_visible else 'raw'})"] = both.open
    for name, factory in (extra or {}).items():
        if name in out:
            raise ValueError(f"generator name {name!r} is taken; pick another for the extra generator")
        out[name] = factory
    return out


# ---------------------------------------------------------------------------------------------- one sample


def _offset(yaw_deg: float, right_m: float) -> np.ndarray:
    """Camera-local (4, 4): move `right_m` along the camera's +X, turn `yaw_deg` about +Y (positive: left)."""
    return pose(yaw_deg, 0.0, (right_m, 0.0, 0.0))


def revisit_poses(a: np.ndarray, bf: int) -> tuple[np.ndarray, int]:
    """Poses A (hold), A -> B, B (hold), B -> A, A (hold), each part a whole number of blocks of `bf` frames.
    Returns ((M, 4, 4) poses, frames per hold)."""
    hold = -(-REVISIT_HOLD_FRAMES // bf) * bf
    ramp = -(-REVISIT_RAMP_FRAMES // bf) * bf
    out = [a] * hold
    for k in range(ramp):
        s = (k + 1) / ramp
        out.append(a @ _offset(-REVISIT_YAW_DEG * s, REVISIT_OFFSET_M * s))
    out += [out[-1]] * hold
    for k in range(ramp):
        s = 1.0 - (k + 1) / ramp
        out.append(a @ _offset(-REVISIT_YAW_DEG * s, REVISIT_OFFSET_M * s))
    out += [a] * hold
    return np.stack(out), hold


def evaluate(
    factory: SessionFactory, sample: Sample, scene: Any, still_truth: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics of one generator on one sample (a fresh session per test), and its novel-path frames."""
    intr, w, h = sample.intrinsics, sample.config.width, sample.config.height
    record: dict[str, Any] = {"sample": sample.name, "seed": sample.seed, "style": sample.style}
    # 1. novel path, scene clock running
    requests = [FrameRequest(p, intr, float(t)) for p, t in zip(sample.novel_poses, sample.times, strict=True)]
    with opened(factory, scene, w, h) as session:
        out, spent = generate(session, requests, w, h)
    record.update(image_metrics(out, sample.gt_frames, sample.masks))
    record["ms_per_frame"] = 1000.0 * spent / len(requests)
    # 2. revisit: A, away to B, back to A, in one session (its history matters), scene clock frozen
    t0 = float(sample.times[0])
    with opened(factory, scene, w, h) as session:
        poses, hold = revisit_poses(sample.novel_poses[0], int(session.block_frames))
        frames, _ = generate(session, [FrameRequest(p, intr, t0) for p in poses], w, h)
    before, after = frames[:hold], frames[-hold:]
    record["revisit_psnr_db"] = psnr(float(squared_error(before, after).mean()))
    truth_a = np.broadcast_to(sample.gt_frames[0], before.shape)
    record["revisit_truth_psnr_db"] = {
        "before": psnr(float(squared_error(before, truth_a).mean())),
        "after": psnr(float(squared_error(after, truth_a).mean())),
    }
    # 3. flicker: a static scene (clock frozen) while the camera follows the novel path
    with opened(factory, scene, w, h) as session:
        still, _ = generate(session, [FrameRequest(p, intr, t0) for p in sample.novel_poses], w, h)
    record["flicker_output"] = mean_abs_step(still)
    record["flicker_truth"] = mean_abs_step(still_truth)
    record["flicker"] = record["flicker_output"] - record["flicker_truth"]
    record["temporal_error"] = temporal_error(still, still_truth)
    return record, out


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(values: list[float | None]) -> float | None:
        vals = [v for v in values if v is not None]
        return float(np.mean(vals)) if vals else None

    out: dict[str, Any] = {"samples": len(records)}
    for metric in ("psnr", "ssim"):
        out[metric] = {kind: mean([r[metric][kind] for r in records]) for kind in ("visible", "disoccluded", "all")}
    keys = ("disoccluded_fraction", "revisit_psnr_db", "flicker", "flicker_output", "flicker_truth", "temporal_error")
    for key in (*keys, "ms_per_frame"):
        out[key] = mean([r[key] for r in records])
    return out


def _deltas(summary: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """summary - baseline for PSNR, SSIM, revisit and flicker (None where either is missing)."""

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    out: dict[str, Any] = {}
    for metric in ("psnr", "ssim"):
        out[metric] = {k: diff(summary[metric][k], base[metric][k]) for k in summary[metric]}
    for key in ("revisit_psnr_db", "flicker", "temporal_error"):
        out[key] = diff(summary[key], base[key])
    return out


# ---------------------------------------------------------------------------------------------- report


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(summaries: Mapping[str, dict[str, Any]]) -> str:
    """One row per generator, the metrics side by side."""
    head = (
        f"{'generator':22} {'PSNR vis':>8} {'PSNR dis':>8} {'PSNR all':>8} {'SSIM vis':>8} {'SSIM dis':>8} "
        f"{'SSIM all':>8} {'revisit dB':>10} {'flicker':>8} {'temp err':>8} {'ms/frame':>8}"
    )
    rows = [head, "-" * len(head)]
    for name, s in summaries.items():
        p, q = s["psnr"], s["ssim"]
        rows.append(
            f"{name:22} {_fmt(p['visible'], '8.2f')} {_fmt(p['disoccluded'], '8.2f')} "
            f"{_fmt(p['all'], '8.2f')} {_fmt(q['visible'], '8.4f')} {_fmt(q['disoccluded'], '8.4f')} "
            f"{_fmt(q['all'], '8.4f')} {_fmt(s['revisit_psnr_db'], '10.2f')} {_fmt(s['flicker'], '8.3f')} "
            f"{_fmt(s['temporal_error'], '8.3f')} {_fmt(s['ms_per_frame'], '8.1f')}"
        )
    frac = next(iter(summaries.values()))["disoccluded_fraction"]
    rows.append(
        f"(disoccluded pixels: {100 * (frac or 0):.1f} % of the novel-path frames; PSNR dB, SSIM on luma, "
        f"flicker and temporal error in 8-bit levels; revisit {MAX_PSNR_DB:g} dB = identical)"
    )
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------- pictures (Pillow)

#: Bar colours, one per generator in order (baseline first).
COLOURS = ((120, 120, 120), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))
_HEADER_PX = 18


def _font(size: int = 13):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _nice_step(span: float) -> float:
    raw = span / 5.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def bar_chart(
    title: str,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    unit: str,
    size: tuple[int, int] = (720, 420),
    top: float | None = None,
):
    """A grouped bar chart as a PIL image: one group per entry of `groups`, one bar per series (generator)."""
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(14), _font(11)
    left, right, y_top, y_bottom = 64, w - 16, 44, h - 78
    values = [v for vs in series.values() for v in vs if v is not None]
    lo, hi = min([0.0, *values]), max([0.0, *values])
    pad = 0.12 * max(hi - lo, 1e-6)
    lo = lo - pad if lo < 0 else lo
    hi = top if top is not None else hi + pad
    step = _nice_step(hi - lo)
    lo = math.floor(lo / step) * step
    hi = max(hi, lo + step)

    def y_of(v: float) -> float:
        return y_bottom - (v - lo) / (hi - lo) * (y_bottom - y_top)

    draw.text((w / 2, 14), title, fill="black", font=font, anchor="mt")
    tick = lo
    while tick <= hi + 1e-9:
        y = y_of(tick)
        draw.line([(left, y), (right, y)], fill=(225, 225, 225))
        draw.text((left - 6, y), f"{tick:g}", fill="black", font=small, anchor="rm")
        tick += step
    draw.text((12, y_top - 22), unit, fill="black", font=small)
    n_series = max(len(series), 1)
    group_w = (right - left) / max(len(groups), 1)
    bar_w = 0.8 * group_w / n_series
    for g, group in enumerate(groups):
        x0 = left + g * group_w + 0.1 * group_w
        draw.text((left + (g + 0.5) * group_w, y_bottom + 8), group, fill="black", font=font, anchor="mt")
        for s, vals in enumerate(series.values()):
            v = vals[g]
            if v is None:
                continue
            xa, xb = x0 + s * bar_w + 2, x0 + (s + 1) * bar_w - 2
            ya, yb = sorted((y_of(v), y_of(0.0)))
            draw.rectangle([(xa, ya), (xb, max(yb, ya + 1))], fill=COLOURS[s % len(COLOURS)])
            if v >= 0:
                draw.text(((xa + xb) / 2, y_of(v) - 3), f"{v:.3g}", fill="black", font=small, anchor="mb")
            else:
                draw.text(((xa + xb) / 2, y_of(v) + 3), f"{v:.3g}", fill="black", font=small, anchor="mt")
    draw.line([(left, y_of(0.0)), (right, y_of(0.0))], fill="black")
    x = left
    for s, name in enumerate(series):  # legend
        draw.rectangle([(x, h - 30), (x + 12, h - 18)], fill=COLOURS[s % len(COLOURS)])
        draw.text((x + 16, h - 24), name, fill="black", font=small, anchor="lm")
        x += 28 + int(draw.textlength(name, font=small))
    return img


def charts(summaries: Mapping[str, dict[str, Any]], max_psnr: float) -> dict[str, Any]:
    """{'psnr', 'ssim', 'consistency'} -> PIL images comparing the generators."""
    from PIL import Image

    kinds = ("visible", "disoccluded", "all")
    out = {
        "psnr": bar_chart(
            "PSNR against ground truth, held-out scenes (higher is better)",
            kinds,
            {n: [s["psnr"][k] for k in kinds] for n, s in summaries.items()},
            "dB",
        ),
        "ssim": bar_chart(
            "SSIM against ground truth, luma (higher is better)",
            kinds,
            {n: [s["ssim"][k] for k in kinds] for n, s in summaries.items()},
            "SSIM",
            top=1.0,
        ),
    }
    revisit = bar_chart(
        f"revisit PSNR, A before vs after ({max_psnr:g} = identical)",
        ["revisit"],
        {n: [s["revisit_psnr_db"]] for n, s in summaries.items()},
        "dB",
        size=(420, 420),
    )
    flicker = bar_chart(
        "flicker over ground truth (lower is better)",
        ["static scene"],
        {n: [s["flicker"]] for n, s in summaries.items()},
        "8-bit levels",
        size=(420, 420),
    )
    temporal = bar_chart(
        "temporal error (lower is better)",
        ["static scene"],
        {n: [s["temporal_error"]] for n, s in summaries.items()},
        "8-bit levels",
        size=(420, 420),
    )
    panels = Image.new("RGB", (1260, 420), "white")
    for k, panel in enumerate((revisit, flicker, temporal)):
        panels.paste(panel, (420 * k, 0))
    out["consistency"] = panels
    return out


def strip(sample: Sample, out: np.ndarray, name: str):
    """PIL image: one row per frame of the novel path, render | mask | output | ground truth."""
    from PIL import Image, ImageDraw

    n, h, w = sample.masks.shape
    gap = 2
    mask_rgb = np.repeat((sample.masks * 255).astype(np.uint8)[..., None], 3, axis=-1)
    width = 4 * w + 3 * gap
    canvas = np.full((_HEADER_PX + n * (h + gap), width, 3), 255, np.uint8)
    for i in range(n):
        y = _HEADER_PX + i * (h + gap)
        for c, panel in enumerate((sample.renders[i], mask_rgb[i], out[i], sample.gt_frames[i])):
            canvas[y : y + h, c * (w + gap) : c * (w + gap) + w] = panel
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    font = _font(12)
    for c, label in enumerate(("render (holes black)", "mask (white: visible)", name, "ground truth")):
        draw.text((c * (w + gap) + 4, _HEADER_PX // 2), label, fill="black", font=font, anchor="lm")
    draw.text((width - 4, _HEADER_PX // 2), sample.name, fill=(90, 90, 90), font=font, anchor="rm")
    return img


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def run(
    out_dir: Path | str,
    samples: int = 8,
    models: Sequence[Path | str] = (),
    extra_generators: Mapping[str, SessionFactory] | None = None,
    *,
    start: int = 0,
    strips: int = 2,
    config: SampleConfig | None = None,
    prefer_cuda: bool = False,
    composite: bool = False,
) -> dict[str, Any]:
    """Evaluate every generator on held-out samples start .. start + samples - 1; print the table, write the
    JSON, the charts and the strips to `out_dir`. Returns the report (what the JSON holds)."""
    started = time.perf_counter()
    config = config or SampleConfig()
    generators = _generators(models, extra_generators, prefer_cuda, composite)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    host = host_tag()
    records: dict[str, list[dict[str, Any]]] = {name: [] for name in generators}
    names: list[str] = []
    with tempfile.TemporaryDirectory(prefix="starbridge-quality-") as tmp:
        for k, sample in enumerate(iter_samples("heldout", samples, start=start, config=config)):
            names.append(sample.name)
            print(f"  sample {k + 1}/{samples}: {sample.name} ...", flush=True)
            scene = sample_to_bundle(sample, Path(tmp) / f"s{k}")
            still_truth, _ = render_truth(sample, sample.novel_poses, np.full(sample.frame_count, sample.times[0]))
            for name, factory in generators.items():
                record, out = evaluate(factory, sample, scene, still_truth)
                records[name].append(record)
                if k < strips:
                    strip(sample, out, name).save(out_dir / f"quality-{host}-strip-{_slug(name)}-{k}.png")
    summaries = {name: _summary(recs) for name, recs in records.items()}
    report = {
        "benchmark": "quality",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": {
            "numpy": np.__version__,
            **({"torch": sys.modules["torch"].__version__} if "torch" in sys.modules else {}),
        },
        "settings": {
            "split": "heldout",
            "samples": names,
            "heldout_styles": list(HELDOUT_STYLES),
            "data_version": DATA_VERSION,
            "render_version": RENDER_VERSION,
            "sample_config": asdict(config),
            "revisit": {
                "offset_m": REVISIT_OFFSET_M,
                "yaw_deg": REVISIT_YAW_DEG,
                "hold_frames": REVISIT_HOLD_FRAMES,
                "ramp_frames": REVISIT_RAMP_FRAMES,
            },
            "max_psnr_db": MAX_PSNR_DB,
            "ssim": {"sigma": SSIM_SIGMA, "radius": SSIM_RADIUS, "on": "BT.601 luma"},
            "baseline": BASELINE,
            "models": [str(m) for m in models],
        },
        "summary": summaries,
        "vs_baseline": {n: _deltas(s, summaries[BASELINE]) for n, s in summaries.items() if n != BASELINE},
        "per_sample": records,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    report = _json_safe(report)
    print()
    print(table(summaries))
    path = out_dir / f"quality-{host}.json"
    write_json(path, report)
    for suffix, image in charts(summaries, MAX_PSNR_DB).items():
        image.save(out_dir / f"quality-{host}-{suffix}.png")
    print(f"wrote {path} and the charts and strips beside it")
    return report


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--paths", choices=("small", "roam"), default="small",
        help="small: each sample's novel path (default); roam: turns, strafes, dollies and returns (roam_quality.py)",
    )  # fmt: skip
    p.add_argument("--samples", type=int, default=None, help="held-out samples (worlds) to rate (default 8; roam 4)")
    p.add_argument("--width", type=int, default=None, help="frame width (default 256; a model bundle needs its own)")
    p.add_argument("--height", type=int, default=None, help="frame height (default 144)")
    p.add_argument("--poses", type=int, default=None, help="roam: poses per path (default 36)")
    p.add_argument("--roam-paths", default=None, help="roam: comma-separated subset of the roaming paths")
    p.add_argument("--start", type=int, default=0, help="first held-out sample")
    p.add_argument("--model", type=Path, action="append", default=[], help="a STAR model bundle (repeatable)")
    p.add_argument("--strips", type=int, default=2, help="samples to draw frame strips for")
    p.add_argument("--cuda", action="store_true", help="run model bundles on CUDA when it loads")
    p.add_argument("--composite", action="store_true", help="also rate each model with the other compositing setting")
    p.add_argument("--teacher", type=Path, default=None, help="a `starbridge train` folder: also rate its teacher")
    add_out_argument(p)
    a = p.parse_args(argv)
    config = None
    if a.width is not None or a.height is not None:
        base = SampleConfig()
        config = SampleConfig(width=a.width or base.width, height=a.height or base.height)
    if a.paths == "small" and (a.poses is not None or a.roam_paths is not None):
        p.error("--poses and --roam-paths go with --paths roam")
    extra = None
    with tempfile.TemporaryDirectory(prefix="starbridge-teacher-") as work:
        if a.teacher is not None:
            from starbridge.train.evaluate import teacher_factory

            extra = {"teacher": teacher_factory(a.teacher, Path(work))}
        if a.paths == "roam":
            from bench import roam_quality

            if a.composite:
                p.error("--composite goes with --paths small")
            kwargs: dict[str, Any] = {"start": a.start, "strips": a.strips, "config": config, "prefer_cuda": a.cuda}
            if a.poses is not None:
                kwargs["poses"] = a.poses
            if a.roam_paths is not None:
                kwargs["paths"] = [s.strip() for s in a.roam_paths.split(",") if s.strip()]
            samples = 4 if a.samples is None else a.samples
            roam_quality.run(out_dir(a.out), samples, tuple(a.model), extra, **kwargs)
            return 0
        samples = 8 if a.samples is None else a.samples
        run(out_dir(a.out), samples, tuple(a.model), extra, start=a.start, strips=a.strips, config=config,
            prefer_cuda=a.cuda, composite=a.composite)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
