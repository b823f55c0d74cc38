"""A frame as one binary WebSocket message for the page.

Layout: a 4-byte little-endian header length, the header (UTF-8 JSON), the image bytes, then the coverage mask.

- header: {"frame", "pose_seq", "t_us", "scene_time_s", "gen_ms", "position", "rotation", "fov", "aspect",
  "width", "height", "encoding", "image_bytes", "mask_bytes"}
- image: "raw" is RGBA8 sRGB rows top to bottom, exactly the engine protocol's inline pixels; "jpeg" and "webp"
  are those pixels compressed with Pillow (for a page on another machine, or one that asks).
- mask: (width * height) bits, row-major, most significant bit first (numpy.packbits), 1 = a reference frame
  saw the pixel; absent (0 bytes) when the page did not ask or the generator cannot tell.
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np
from PIL import Image

from ..protocol import engine_pb2 as pb

#: Compression quality of JPEG and WebP frames (0-100).
QUALITY = 85


def encode_pixels(pixels: np.ndarray, encoding: str) -> bytes:
    """(H, W, 4) uint8 RGBA as `encoding` ("raw", "jpeg" or "webp")."""
    if encoding == "raw":
        return np.ascontiguousarray(pixels, np.uint8).tobytes()
    image = Image.fromarray(np.ascontiguousarray(pixels[..., :3]), "RGB")
    out = io.BytesIO()
    if encoding == "jpeg":
        image.save(out, "JPEG", quality=QUALITY)
    elif encoding == "webp":
        image.save(out, "WEBP", quality=QUALITY, method=0)  # method 0: the fastest encoder
    else:
        raise ValueError(f"unknown frame encoding {encoding!r}")
    return out.getvalue()


def pack_frame(frame: pb.FrameReady, pixels: np.ndarray, encoding: str, observed: np.ndarray | None = None) -> bytes:
    """One binary message: header, image, mask (see the module doc)."""
    image = encode_pixels(pixels, encoding)
    mask = np.packbits(np.asarray(observed, bool), axis=None).tobytes() if observed is not None else b""
    p, q = frame.pose.position, frame.pose.rotation
    header = json.dumps(
        {
            "frame": frame.frame_sequence,
            "pose_seq": frame.pose_sequence,
            "t_us": frame.engine_time_us,
            "scene_time_s": frame.scene_time_s,
            "gen_ms": round(frame.generation_latency_ms, 3),
            "position": [p.x, p.y, p.z],
            "rotation": [q.x, q.y, q.z, q.w],
            "fov": frame.vertical_fov_deg,
            "aspect": frame.aspect,
            "width": frame.width,
            "height": frame.height,
            "encoding": encoding,
            "image_bytes": len(image),
            "mask_bytes": len(mask),
        },
        separators=(",", ":"),
    ).encode()
    return b"".join((struct.pack("<I", len(header)), header, image, mask))


def unpack_frame(data: bytes) -> tuple[dict, bytes, bytes]:
    """(header, image bytes, mask bytes) of a packed frame (the page does the same in JavaScript)."""
    (size,) = struct.unpack_from("<I", data)
    header = json.loads(data[4 : 4 + size])
    start = 4 + size
    image = data[start : start + header["image_bytes"]]
    mask = data[start + header["image_bytes"] : start + header["image_bytes"] + header["mask_bytes"]]
    return header, image, mask
