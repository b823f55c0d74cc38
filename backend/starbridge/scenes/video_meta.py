"""What a video file says about its own picture: which way is up, and the lens it was filmed through.

**Orientation.** A phone filming in portrait (or upside down) stores its frames as the sensor reads them,
landscape, and a *display matrix* in the file (MP4/MOV `tkhd`; FFmpeg gives it as the decoded frame's
DISPLAYMATRIX side data) that players apply to show the picture upright. FFmpeg's libraries do not apply it
(its command-line tool does, with a filter): without this step a portrait clip imports lying on its side, its
world turned 90 degrees. The matrix is 3x3 (16.16 fixed point in its first two columns), applied to row
vectors [x y 1] with x right and y down: [x' y'] = [x y] [[a b] [c d]]. Here only its quarter turns and
mirrors are applied (every phone and camera writes those); any other angle is left as decoded, with a warning.

**Pixel shape.** Some files store non-square pixels (DV and DVD-era footage, anamorphic modes: 720x480 shown
as 4:3 or 16:9) and a *sample aspect ratio* saying how wide each is; decoded as square, the picture comes out
squeezed and every angle in it wrong. The frames are resampled to square pixels (`square_size`).

**Timing.** A phone in low light, a screen recorder (a frame only when the screen changes) and some editors
write frames at irregular times: variable frame rate. A scene's frame k stands at k / fps seconds, so such a
clip's frames are resampled to a steady rate (`steady_frames`): for every tick of the clip's usual frame
interval, the frame shown at that moment (the nearest in time); frames fall in gaps, double frames go. A clip
whose intervals all lie within half and one and a half of the usual one is steady and kept as decoded.

**Lens.** Apple devices write the lens's 35 mm-equivalent focal length into the file's metadata
(`com.apple.quicktime.camera.focal_length.35mm_equivalent`, a QuickTime `mdta` key, as text or a number;
FFmpeg reads it into the container's metadata). It is what the camera reports for its lens; what the video
frame shows can be a few per cent narrower (a 16:9 crop of a 4:3 sensor, stabilisation), so the capture takes
it as a prior for the field of view rather than a given one (TrackingConfig.from_lens).
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..geometry.camera import MAX_EQUIVALENT_FOCAL_MM, MIN_EQUIVALENT_FOCAL_MM

log = logging.getLogger(__name__)

#: Metadata keys that carry the lens's 35 mm-equivalent focal length, millimetres (first found wins).
LENS_KEYS = ("com.apple.quicktime.camera.focal_length.35mm_equivalent",)
#: The display matrix's rotation/mirror entries are 16.16 fixed point.
_FIXED_ONE = 65536.0


@dataclass(frozen=True)
class Orientation:
    """A quarter-turn rotation and/or mirror that stands a decoded frame upright: the display matrix's 2x2
    part rounded to -1 / 0 / 1 (`swap`: x and y exchange roles, the 90 and 270 degree turns)."""

    swap: bool = False
    flip_columns: bool = False
    flip_rows: bool = False

    @property
    def identity(self) -> bool:
        return not (self.swap or self.flip_columns or self.flip_rows)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """`image` (H, W, ...) as displayed: (W, H, ...) when `swap`."""
        out = np.swapaxes(image, 0, 1) if self.swap else image
        if self.flip_columns:
            out = out[:, ::-1]
        if self.flip_rows:
            out = out[::-1]
        return np.ascontiguousarray(out)

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a decoded `width` x `height` frame once upright."""
        return (height, width) if self.swap else (width, height)

    def words(self) -> str:
        """How the frames were turned, in plain words ('' for none)."""
        if self.identity:
            return ""
        turns = {  # (swap, flip_columns, flip_rows) -> what the display matrix does to the picture
            (True, False, True): "turned 90 degrees counter-clockwise",
            (True, True, False): "turned 90 degrees clockwise",
            (False, True, True): "turned 180 degrees",
            (False, True, False): "mirrored left to right",
            (False, False, True): "mirrored top to bottom",
            (True, False, False): "turned 90 degrees clockwise and mirrored left to right",
            (True, True, True): "turned 90 degrees counter-clockwise and mirrored left to right",
        }
        return turns[(self.swap, self.flip_columns, self.flip_rows)] + " (the file's display matrix)"


def orientation_of(matrix: bytes | None) -> tuple[Orientation, str]:
    """The Orientation a display matrix (36 bytes: nine native-endian int32, as FFmpeg stores it) asks for, and
    a warning ('' when none) when it is not a quarter turn or mirror (then nothing is turned)."""
    if not matrix:
        return Orientation(), ""
    if len(matrix) != 36:
        return Orientation(), f"the display matrix has {len(matrix)} bytes, not 36: frames kept as decoded"
    m = struct.unpack("=9i", matrix)
    a, b, c, d = (v / _FIXED_ONE for v in (m[0], m[1], m[3], m[4]))
    if not all(math.isfinite(v) for v in (a, b, c, d)):
        return Orientation(), "the display matrix is not finite: frames kept as decoded"
    entries = np.array([a, b, c, d])
    rounded = np.round(entries)
    quarter = np.all(np.abs(entries - rounded) < 1e-3) and np.all(np.isin(rounded, (-1, 0, 1)))
    ra, rb, rc, rd = (int(v) for v in rounded)
    if quarter and ra != 0 and rd != 0 and rb == 0 and rc == 0:
        # x' = a x, y' = d y
        return Orientation(False, ra < 0, rd < 0), ""
    if quarter and rb != 0 and rc != 0 and ra == 0 and rd == 0:
        # x' = c y, y' = b x: the transposed picture, then mirrored where the sign is negative
        return Orientation(True, rc < 0, rb < 0), ""
    angle = math.degrees(math.atan2(b, a))
    return Orientation(), (
        f"the file asks for its picture to be turned {angle:.1f} degrees (not a quarter turn): frames kept as decoded"
    )


#: Sample aspect ratios outside this range are not believed (a broken header): the pixels are taken as square.
SAR_RANGE = (0.25, 4.0)


def square_size(width: int, height: int, sample_aspect: object) -> tuple[tuple[int, int], str]:
    """(width, height) of a decoded `width` x `height` frame with square pixels, given its sample aspect ratio
    (a Fraction, or None / 0 for square), and a warning ('' when none) for a ratio not believed. The width is
    stretched or squeezed; the height, the lines the camera recorded, is kept."""
    try:
        sar = float(sample_aspect) if sample_aspect else 1.0  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        sar = 1.0
    if sar == 1.0:
        return (width, height), ""
    if not (math.isfinite(sar) and SAR_RANGE[0] <= sar <= SAR_RANGE[1]):
        return (
            width,
            height,
        ), f"the file's sample aspect ratio {sample_aspect} is not believable: pixels taken as square"
    return (max(1, round(width * sar)), height), ""


def lens_of(metadata: Mapping[str, str]) -> tuple[float | None, str]:
    """The 35 mm-equivalent focal length a file's metadata names (millimetres, None when absent or unusable),
    and a warning ('' when none) for a value that is there but cannot be a lens."""
    for key in LENS_KEYS:
        text = metadata.get(key)
        if text is None:
            continue
        try:
            mm = float(str(text).strip())
        except ValueError:
            return None, f"the metadata's {key.rsplit('.', 2)[-2]} is not a number ({text!r}): ignored"
        if not (math.isfinite(mm) and MIN_EQUIVALENT_FOCAL_MM <= mm <= MAX_EQUIVALENT_FOCAL_MM):
            return None, (
                f"the metadata names a {mm:g} mm-equivalent lens, outside [{MIN_EQUIVALENT_FOCAL_MM:g}, "
                f"{MAX_EQUIVALENT_FOCAL_MM:g}] mm: ignored"
            )
        return mm, ""
    return None, ""


#: A clip is steady when every frame interval lies within this range of the median interval.
STEADY_RANGE = (0.5, 1.5)


def steady_frames(times: list[float | None], nominal_fps: float) -> tuple[list[int] | None, float, str]:
    """For frames shown at `times` (seconds; None where the file gives none): None (steady, or no times to go
    by) or the frame to show at each tick of a steady rate; that rate (the clip's usual one: `nominal_fps`
    where it agrees with the median interval within 10%, else the median interval's); and what was done, in
    plain words ('' when steady)."""
    if len(times) < 3 or any(t is None or not math.isfinite(t) for t in times):
        return None, nominal_fps, ""
    t = np.asarray(times, np.float64)
    order = np.argsort(t, kind="stable")
    if np.any(order != np.arange(len(t))):  # out of order: presentation times from a broken mux
        return None, nominal_fps, ""
    gaps = np.diff(t)
    usual = float(np.median(gaps))
    if usual <= 0 or np.all((gaps >= STEADY_RANGE[0] * usual) & (gaps <= STEADY_RANGE[1] * usual)):
        return None, nominal_fps, ""
    fps = nominal_fps if nominal_fps > 0 and abs(nominal_fps * usual - 1.0) <= 0.1 else 1.0 / usual
    ticks = t[0] + np.arange(int(math.floor((t[-1] - t[0]) * fps + 0.5)) + 1) / fps
    after = np.clip(np.searchsorted(t, ticks), 1, len(t) - 1)
    nearest = np.where(ticks - t[after - 1] <= t[after] - ticks, after - 1, after)
    picked = nearest.tolist()
    repeated = len(picked) - len(set(picked))
    dropped = len(t) - len(set(picked))
    words = (
        f"variable frame rate ({len(t)} frames over {t[-1] - t[0]:.2f} s, intervals {1000 * gaps.min():.0f}-"
        f"{1000 * gaps.max():.0f} ms): resampled to a steady {fps:.3g} fps, {len(picked)} frames ({repeated} "
        f"repeated to fill its gaps, {dropped} dropped)"
    )
    return picked, fps, words
