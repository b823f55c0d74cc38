"""Training data for the layered condition (presets with ``condition="layered"``, e.g. star-world).

A procedural sample (scenes/procedural/samples.py) gives a reference clip and a novel camera path with ground
truth. For a layered preset the condition is made exactly as the runtime makes it (runtime/star.py
`LayeredCondition`): the reference clip is written as a scene bundle, an `ExplicitSession` on it draws each
novel frame from the same-time reference frame, the scene's fused world and the session's memory, the holes
are push-pull filled, and the fill is written into the memory (what the explicit generator does; at serving
time the memory holds the network's own output instead).

Out-of-view regions of realistic size: samples cycle through MOTIONS, from the small moves of the quality
benchmark's default paths to turns of up to 100 degrees and strafes of a metre and a half, so that every
kind of hole the roam benchmark shows (an out-of-view half frame, a disocclusion behind a near box) is in
the training data.

`layered_samples(..., workers=N)` renders samples in N processes (the GPU recipe: 16 cores make a few
hundred samples in well under a minute); the result is the same for any N.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..runtime.generator import FrameRequest
from ..runtime.memory import MemoryConfig
from ..runtime.star import LayeredCondition
from ..scenes.fused import FusedWorlds
from ..scenes.procedural.raycast import RENDER_VERSION
from ..scenes.procedural.samples import DATA_VERSION, Sample, SampleConfig, iter_samples, sample_to_bundle

#: Novel-path motion per sample, cycled by sample number: (max yaw degrees, max offset scene units). The first
#: is the quality benchmark's own (SampleConfig's defaults); the others open out-of-view regions up to most of
#: the frame.
MOTIONS: tuple[tuple[float, float], ...] = ((15.0, 0.6), (45.0, 1.0), (100.0, 0.8), (30.0, 1.6))


@dataclass(frozen=True, eq=False)
class LayeredSample:
    """What training reads of one sample: (N, H, W, 3) uint8 ref_frames, gt_frames and renders (the layered
    render, holes filled), (N, H, W) bool masks (True where a layer covered the pixel)."""

    name: str
    ref_frames: np.ndarray
    gt_frames: np.ndarray
    renders: np.ndarray
    masks: np.ndarray


def motion_config(k: int, base: SampleConfig) -> SampleConfig:
    """Sample k's config: `base` with the novel-path motion MOTIONS[k % len(MOTIONS)]."""
    yaw, offset = MOTIONS[k % len(MOTIONS)]
    return replace(base, max_yaw_deg=yaw, max_offset_m=offset)


def layered_render(sample: Sample, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """The layered renders (holes filled) and masks of a sample's novel path, in one session over its frames
    (so the memory of earlier frames is a layer of later ones), as runtime.star.LayeredCondition makes them."""
    scene = sample_to_bundle(sample, work / "scene")
    cond = LayeredCondition(scene, sample.config.width, sample.config.height, FusedWorlds(capacity=1), MemoryConfig())
    try:
        renders = np.empty_like(sample.gt_frames)
        masks = np.empty(sample.gt_frames.shape[:3], bool)
        for i, (c2w, t) in enumerate(zip(sample.novel_poses, sample.times, strict=True)):
            r, m, _ = cond.render([FrameRequest(c2w, sample.intrinsics, float(t))])
            cond.remember(r)  # the explicit generator's fill goes into the memory
            renders[i], masks[i] = r[0], m[0]
        return renders, masks
    finally:
        cond.close()


def _one(args: tuple[int, SampleConfig]) -> LayeredSample:
    k, base = args
    sample = next(iter_samples("train", 1, start=k, config=motion_config(k, base)))
    with tempfile.TemporaryDirectory(prefix="starbridge-train-") as tmp:
        renders, masks = layered_render(sample, Path(tmp))
    return LayeredSample(sample.name, sample.ref_frames, sample.gt_frames, renders, masks)


def layered_samples(
    count: int,
    start: int = 0,
    base: SampleConfig = SampleConfig(),  # noqa: B008 (frozen)
    workers: int = 1,
) -> list[LayeredSample]:
    """Training samples start .. start + count - 1, each with its layered render (see the module docstring)."""
    jobs: Sequence[tuple[int, SampleConfig]] = [(k, base) for k in range(start, start + count)]
    if workers <= 1 or count <= 1:
        return [_one(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_one, jobs, chunksize=max(1, count // (4 * workers))))


def cached_layered_samples(
    cache: Path | None,
    count: int,
    start: int = 0,
    base: SampleConfig = SampleConfig(),  # noqa: B008 (frozen)
    workers: int = 1,
) -> list[LayeredSample]:
    """`layered_samples`, read from the .npz `cache` when it holds these samples (same DATA_VERSION and
    RENDER_VERSION, range and size), else rendered and written there (atomically); no cache with None."""
    versions = [DATA_VERSION, RENDER_VERSION]
    key = np.array([*versions, start, count, base.width, base.height, *np.ravel(MOTIONS)], np.float64)
    if cache is not None and cache.exists():
        with np.load(cache) as z:
            if np.array_equal(z["key"], key):
                return [LayeredSample(str(n), *(z[f"{a}{k}"] for a in ("ref", "gt", "render", "mask")))
                        for k, n in enumerate(z["names"])]  # fmt: skip
    samples = layered_samples(count, start, base, workers)
    if cache is not None:
        arrays = {"key": key, "names": np.array([s.name for s in samples])}
        for k, s in enumerate(samples):
            arrays.update({f"ref{k}": s.ref_frames, f"gt{k}": s.gt_frames, f"render{k}": s.renders,
                           f"mask{k}": s.masks})  # fmt: skip
        tmp = cache.with_name(f".{cache.name}.tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # (numpy's stub types **kwds as its allow_pickle)
        tmp.replace(cache)
    return samples
