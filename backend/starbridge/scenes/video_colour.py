"""HDR video into the SDR picture a backdrop shows (a phone's default video mode is HDR).

iPhones since the 12 and many Android phones film HDR by default: 10-bit HEVC whose code values are not
sRGB-like but HLG (ARIB STD-B67) or PQ (SMPTE ST 2084) signals in the wide BT.2020 primaries. Read as if they
were SDR, the picture comes out washed out (BT.2020's colours shown in BT.709's are desaturated) with the wrong
tone curve. FFmpeg's libraries convert the colour matrix (YUV to RGB) by the frame's tags but leave the transfer
and the primaries to the application. Here, per pixel, following ITU-R BT.2100 (the curves), BT.2087 (the
primaries) and BT.2408 (HDR reference white, 203 cd/m2, is SDR's white):

1. the signal to display light in cd/m2: PQ's EOTF; HLG's inverse OETF, then its OOTF for a 1000 cd/m2
   display (system gamma 1.2, on the scene's BT.2020 luminance);
2. divided by the reference white (203 cd/m2 = 1.0, SDR's white);
3. BT.2020 primaries to BT.709's (a 3x3 matrix on linear light; what falls outside BT.709 is clipped);
4. highlights above `knee` rolled off into what is left of SDR's range (an extended Reinhard curve on the
   pixel's largest channel, so hues stay: the display's peak, 1000 cd/m2, lands on SDR's white); below the
   knee nothing changes, so what was filmed within SDR's range keeps its colour;
5. encoded for a BT.1886 display (gamma 2.4), as SDR video is.

Decoded at 16 bits per channel first (FFmpeg's swscale, the frame's own YUV matrix), so the 10-bit signal is
not cut to 8 bits before the curves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: FFmpeg's (ISO/IEC 23091-2) codes: transfer characteristics and colour primaries.
TRC_PQ = 16
TRC_HLG = 18
PRIMARIES_BT2020 = 9

#: HDR reference white (BT.2408), cd/m2: SDR's 100%.
REFERENCE_WHITE_NITS = 203.0
#: The display HLG is rendered for (its nominal peak), cd/m2; PQ's highlights are rolled off toward it too.
DISPLAY_PEAK_NITS = 1000.0
#: HLG's system gamma at that peak (BT.2100).
HLG_GAMMA = 1.2
#: Relative light (1.0 = reference white) below which nothing is tone-mapped.
KNEE = 0.75
#: SDR encoding: the inverse of BT.1886's display gamma.
SDR_GAMMA = 2.4

# BT.2100 HLG constants
_A = 0.17883277
_B = 1.0 - 4.0 * _A
_C = 0.5 - _A * np.log(4.0 * _A)
# BT.2100 PQ constants
_M1 = 2610.0 / 16384.0
_M2 = 2523.0 / 4096.0 * 128.0
_C1 = 3424.0 / 4096.0
_C2 = 2413.0 / 4096.0 * 32.0
_C3 = 2392.0 / 4096.0 * 32.0
#: BT.2020 luminance weights.
_LUMA_2020 = np.array([0.2627, 0.6780, 0.0593])
#: Linear BT.2020 RGB to linear BT.709 RGB (BT.2087).
BT2020_TO_BT709 = np.array(
    [[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]],
)


@dataclass(frozen=True)
class HdrSignal:
    """What a frame's tags say it carries: its transfer ("hlg" or "pq") and whether its primaries are
    BT.2020's (else BT.709's are assumed)."""

    transfer: str
    bt2020: bool

    def words(self) -> str:
        name = {"hlg": "HLG", "pq": "PQ"}[self.transfer]
        primaries = "BT.2020" if self.bt2020 else "BT.709"
        return f"HDR ({name}, {primaries} primaries) converted to SDR (reference white 203 cd/m2 as SDR's white)"


def hdr_of(color_trc: int, color_primaries: int) -> HdrSignal | None:
    """The HDR signal a frame's transfer and primaries tags name, or None for SDR (anything else)."""
    transfer = {TRC_HLG: "hlg", TRC_PQ: "pq"}.get(int(color_trc))
    if transfer is None:
        return None
    return HdrSignal(transfer, int(color_primaries) == PRIMARIES_BT2020)


def display_light(signal: np.ndarray, hdr: HdrSignal) -> np.ndarray:
    """(..., 3) non-linear RGB signal in [0, 1] -> display light, cd/m2, in the signal's primaries."""
    e = np.clip(signal.astype(np.float64), 0.0, 1.0)
    if hdr.transfer == "pq":
        p = e ** (1.0 / _M2)
        return 10000.0 * (np.maximum(p - _C1, 0.0) / (_C2 - _C3 * p)) ** (1.0 / _M1)
    with np.errstate(over="ignore"):
        scene = np.where(e <= 0.5, e * e / 3.0, (np.exp((e - _C) / _A) + _B) / 12.0)
    luma = scene @ (_LUMA_2020 if hdr.bt2020 else np.array([0.2126, 0.7152, 0.0722]))
    return DISPLAY_PEAK_NITS * (luma[..., None] ** (HLG_GAMMA - 1.0)) * scene


def tone_map(relative: np.ndarray) -> np.ndarray:
    """(..., 3) linear light, 1.0 = SDR white -> within [0, 1]: unchanged below KNEE, the highlights up to the
    display's peak rolled into [KNEE, 1] by the largest channel (hue kept)."""
    peak = np.max(relative, axis=-1, keepdims=True)
    s = (DISPLAY_PEAK_NITS / REFERENCE_WHITE_NITS - KNEE) / (1.0 - KNEE)
    t = np.maximum(peak - KNEE, 0.0) / (1.0 - KNEE)
    mapped = KNEE + (1.0 - KNEE) * np.minimum(t * (1.0 + t / (s * s)) / (1.0 + t), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(peak > KNEE, mapped / peak, 1.0)
    return np.clip(relative * gain, 0.0, 1.0)


def to_sdr(rgb16: np.ndarray, hdr: HdrSignal) -> np.ndarray:
    """(H, W, 3) uint16 HDR RGB (the signal, full 16-bit scale) -> (H, W, 3) uint8 SDR RGB (module steps)."""
    light = display_light(rgb16 / 65535.0, hdr) / REFERENCE_WHITE_NITS
    if hdr.bt2020:
        light = light @ BT2020_TO_BT709.T
    sdr = tone_map(np.maximum(light, 0.0)) ** (1.0 / SDR_GAMMA)
    return np.round(sdr * 255.0).astype(np.uint8)
