"""Roam benchmark pictures (Pillow): frame strips along a path (truth, regions, each generator's output and its
coverage) and the top-down coverage picture of a world (see bench/roam_quality.py's docstring)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.bench_quality import _font  # noqa: E402
from bench.roam_metrics import DISOCCLUDED, OUT_OF_VIEW  # noqa: E402
from bench.roam_sessions import CATEGORIES  # noqa: E402
from starbridge.geometry.splat import frame_points  # noqa: E402
from starbridge.scenes.procedural.paths import CLEAR_RADIUS_M  # noqa: E402
from starbridge.scenes.procedural.samples import Sample  # noqa: E402
from starbridge.scenes.procedural.world import CLEAR_CENTRE_XZ  # noqa: E402

#: Colours of the coverage categories (FRAME, WORLD, MEMORY, NONE) and of the regions' tints.
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
