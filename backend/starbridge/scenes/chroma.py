"""A 4:2:0 video's colour rebuilt at its luma's resolution, guided by the luma.

Nearly every clip a phone, a camera or an editor writes (H.264, HEVC, VP9, AV1) stores its two chroma planes at
half the width and half the height of its luma: the picture's sharpness is in the luma, its colour is a quarter
as dense. A plain decoder interpolates the chroma between its samples, so every colour edge is two pixels soft
and a fine colour pattern (a window grid, a striped awning) bleeds; on our rendered clips encoded at CRF 16 the
decoded luma plane is within 41-43 dB of the truth but the RGB only 33-38 dB, the chroma's loss being most of it.

Where colour and brightness change together, which in real scenes is nearly everywhere, the luma tells where a
chroma edge lies. So each chroma window's colour is modelled as a linear function of the luma seen at the chroma
samples (a guided filter: He, Sun and Tang, "Guided Image Filtering", 2010, its coefficients averaged over the
windows), and that model is applied to the full-resolution luma: a colour edge follows the luma's edge. Where the
chroma does not follow the luma the model's slope goes to zero and the result is the plain interpolation.

Sitings: where each chroma sample lies among the luma samples it stands for. MPEG-2, H.264 and HEVC's default
("left") puts it level with the even luma columns and halfway between the two rows; JPEG's and swscale's
("center") in the middle of its 2x2 block. Files rarely say which; `estimate_siting` takes the one under which
the luma explains the chroma best.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np
from scipy.ndimage import uniform_filter

from ..errors import InvalidArgument

Siting = Literal["left", "center"]
SITINGS: tuple[Siting, ...] = ("left", "center")


@dataclass(frozen=True)
class ChromaConfig:
    #: half-width of the square window (in chroma samples) each local linear model is fitted over
    radius: int = 1
    #: the guided filter's regulariser, in squared 8-bit code values: a window whose luma varies by less than
    #: about its square root gets a flat colour (the plain interpolation) instead of a slope
    eps: float = 1.0

    def __post_init__(self) -> None:
        if self.radius < 1 or not self.eps > 0:
            raise InvalidArgument(f"ChromaConfig: need radius >= 1 and eps > 0, got {self.radius}, {self.eps}")


DEFAULT = ChromaConfig()


def _pad_even(luma: np.ndarray) -> np.ndarray:
    """The luma padded by its last row / column to even sides (a 4:2:0 plane of an odd side rounds up)."""
    h, w = luma.shape
    return np.pad(luma, ((0, h % 2), (0, w % 2)), mode="edge")


def luma_at_chroma(luma: np.ndarray, siting: Siting) -> np.ndarray:
    """The luma averaged as the chroma was subsampled: (ceil(H/2), ceil(W/2)) float32 from (H, W)."""
    y = _pad_even(np.asarray(luma, np.float32))
    rows = 0.5 * (y[0::2] + y[1::2])  # every siting here is halfway between two rows
    if siting == "center":
        return 0.5 * (rows[:, 0::2] + rows[:, 1::2])
    left = np.concatenate([rows[:, :1], rows[:, 1:-1:2]], axis=1)  # column 2j - 1 (the edge repeated at j = 0)
    return 0.25 * left + 0.5 * rows[:, 0::2] + 0.25 * rows[:, 1::2]


def _coefficients(guide: np.ndarray, chroma: np.ndarray, config: ChromaConfig) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter's per-sample (slope, offset), each averaged over the windows that hold the sample."""
    size = 2 * config.radius + 1

    def box(a: np.ndarray) -> np.ndarray:
        return uniform_filter(a, size, mode="nearest")

    mean_g, mean_c = box(guide), box(chroma)
    var_g = box(guide * guide) - mean_g * mean_g
    cov = box(guide * chroma) - mean_g * mean_c
    slope = cov / (var_g + config.eps)
    offset = mean_c - slope * mean_g
    return box(slope), box(offset)


def _upsample(plane: np.ndarray, height: int, width: int, siting: Siting) -> np.ndarray:
    """Bilinear from the chroma grid to the (height, width) luma grid, each luma pixel at its own position."""
    ch, cw = plane.shape
    ys = np.clip((np.arange(height) + 0.5) / 2 - 0.5, 0, ch - 1)
    xs = np.arange(width) / 2.0 if siting == "left" else (np.arange(width) + 0.5) / 2 - 0.5
    xs = np.clip(xs, 0, cw - 1)
    y0 = np.minimum(ys.astype(np.intp), max(ch - 2, 0))
    x0 = np.minimum(xs.astype(np.intp), max(cw - 2, 0))
    y1, x1 = np.minimum(y0 + 1, ch - 1), np.minimum(x0 + 1, cw - 1)
    fy = (ys - y0).astype(np.float32)[:, None]
    fx = (xs - x0).astype(np.float32)[None, :]
    top = plane[y0][:, x0] * (1 - fx) + plane[y0][:, x1] * fx
    bottom = plane[y1][:, x0] * (1 - fx) + plane[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def guided_chroma(luma: np.ndarray, chroma: np.ndarray, siting: Siting, config: ChromaConfig = DEFAULT) -> np.ndarray:
    """One chroma plane (ceil(H/2), ceil(W/2)) rebuilt at the luma's (H, W), as float32 code values in [0, 255]."""
    luma = np.asarray(luma, np.float32)
    chroma = np.asarray(chroma, np.float32)
    guide = luma_at_chroma(luma, siting)
    if guide.shape != chroma.shape:
        raise ValueError(f"a {luma.shape} luma has a {guide.shape} chroma plane in 4:2:0, not {chroma.shape}")
    slope, offset = _coefficients(guide, chroma, config)
    h, w = luma.shape
    full = _upsample(slope, h, w, siting) * luma + _upsample(offset, h, w, siting)
    return np.clip(full, 0.0, 255.0)


def siting_residuals(luma: np.ndarray, chroma: np.ndarray, config: ChromaConfig = DEFAULT) -> dict[Siting, float]:
    """Per siting, the mean squared residual of the chroma samples about their windows' luma models."""
    out: dict[Siting, float] = {}
    chroma = np.asarray(chroma, np.float32)
    for siting in SITINGS:
        guide = luma_at_chroma(luma, siting)
        slope, offset = _coefficients(guide, chroma, config)
        out[siting] = float(np.mean((slope * guide + offset - chroma) ** 2))
    return out


def estimate_siting(planes: list[tuple[np.ndarray, np.ndarray, np.ndarray]], config: ChromaConfig = DEFAULT) -> Siting:
    """The siting under which the luma explains both chroma planes of the given (Y, U, V) frames best."""
    totals = dict.fromkeys(SITINGS, 0.0)
    for y, u, v in planes:
        for plane in (u, v):
            for siting, r in siting_residuals(y, plane, config).items():
                totals[siting] += r
    return min(SITINGS, key=lambda s: totals[s])


# ------------------------------------------------------------------------------------------- decoded frames

#: The pixel formats rebuilt here (8-bit planar 4:2:0, limited and full range); any other is left to FFmpeg.
FORMATS = ("yuv420p", "yuvj420p")
#: How many of a clip's first frames `probe_siting` reads.
PROBE_FRAMES = 8


def planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A decoded 8-bit planar frame's (Y, U, V) planes as uint8 arrays (each plane's line padding cut off)."""
    out = []
    for plane in frame.planes[:3]:
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        out.append(rows[:, : plane.width])
    return out[0], out[1], out[2]


def rebuilds(frame: av.VideoFrame, size: tuple[int, int]) -> bool:
    """Whether a frame decoded to (width, height) `size` gains from its chroma rebuilt: an 8-bit 4:2:0 frame
    whose chroma planes have fewer columns or rows than the output (downscaled by 2 or more, the chroma is as
    fine as the output already)."""
    if frame.format.name not in FORMATS:
        return False
    return -(-frame.width // 2) < size[0] or -(-frame.height // 2) < size[1]


def probe_siting(frames: Iterable[av.VideoFrame], config: ChromaConfig = DEFAULT) -> Siting:
    """`estimate_siting` over the first PROBE_FRAMES of `frames` (decoded 8-bit 4:2:0 frames); "left", the
    MPEG default, when there are none or they are flat."""
    taken = [tuple(p.astype(np.float32) for p in planes(f)) for _, f in zip(range(PROBE_FRAMES), frames, strict=False)]
    if not taken:
        return "left"
    return estimate_siting(taken, config)  # type: ignore[arg-type]


def to_rgb(frame: av.VideoFrame, size: tuple[int, int], siting: Siting, config: ChromaConfig = DEFAULT) -> np.ndarray:
    """An 8-bit 4:2:0 frame as (height, width, 3) uint8 RGB at `size`, its chroma rebuilt at the luma's
    resolution first; the colour matrix, range and resampling (area) are FFmpeg's, as for any other frame."""
    y, u, v = planes(frame)
    luma = y.astype(np.float32)
    full = np.stack(
        [y, *(np.rint(guided_chroma(luma, c.astype(np.float32), siting, config)).astype(np.uint8) for c in (u, v))]
    )
    rebuilt = av.VideoFrame.from_ndarray(full, format="yuv444p")
    rebuilt.colorspace = frame.colorspace
    # yuvj420p is full range whatever the frame says; yuv444p carries it as a flag
    rebuilt.color_range = av.video.reformatter.ColorRange.JPEG if frame.format.name == "yuvj420p" else frame.color_range
    return rebuilt.reformat(width=size[0], height=size[1], format="rgb24", interpolation="AREA").to_ndarray()
