"""Shared-memory frame ring: one memory-mapped file per session (docs/architecture.md §4).

The backend writes generated frames into a ring of slots in a plain file that it maps with
`mmap`; an engine on the same machine maps (or reads) the same file and copies the newest
complete frame out. A file mapping works the same way on Linux, macOS and Windows and needs no
named kernel object. The file lives in `/dev/shm` when that exists (RAM-backed), otherwise in
the system temporary folder, and is named `starbridge-<session_id>`.

Layout (version 1). All integers little-endian, all offsets in bytes.

File header, HEADER_BYTES = 4096 (unused bytes are zero)::

     0  8 bytes  magic b"SBRING\\x00\\x01"
     8  u32      layout_version = 1
    12  u32      header_bytes = 4096         (slot 0 starts here)
    16  u32      width, pixels
    20  u32      height, pixels
    24  u32      stride = width * 4, bytes per pixel row
    28  u32      pixel_format = 1            (PIXEL_FORMAT_RGBA8_SRGB in engine.proto)
    32  u32      slot_count >= 3
    36  u32      slot_bytes, a multiple of 4096 = round_up(slot_header_bytes + stride * height, 4096)
    40  u32      slot_header_bytes = 128
    44  u32      owner_pid                   (process id of the writer)
    48  u64      latest_frame_sequence       (0 = no frame yet)
    56  u32      latest_slot                 (0xFFFFFFFF = no frame yet)
    60  u32      closed                      (1 once the writer closed the ring)
    64  u64      file_bytes = header_bytes + slot_count * slot_bytes

Slot i starts at header_bytes + i * slot_bytes. Slot header, SLOT_HEADER_BYTES = 128::

     0  u64      seqlock counter             (odd while the slot is being written, even when stable)
     8  u64      frame_sequence              (0 = never written)
    16  u64      pose_sequence
    24  u64      engine_time_us              (echoed from the pose, the engine's clock)
    32  f64      scene_time_s
    40  f32 x3   position x, y, z            (40, 44, 48; wire convention, scene metres)
    52  f32 x4   rotation x, y, z, w         (52, 56, 60, 64; unit quaternion)
    68  f32      vertical_fov_deg
    72  f32      aspect                      (width / height; 0 = the frame's)
    76  f32      generation_latency_ms
    80  u32      width, pixels
    84  u32      height, pixels
    88  ...      reserved, zero

Pixels start at slot start + 128: `height` rows of `stride` bytes, RGBA8 sRGB, rows top to
bottom (the same pixels an inline frame carries).

Writer protocol (one writer per ring): take the slot after the last written (round robin; with
three or more slots the writer never touches the slot readers were last pointed to until the next
one is complete); counter += 1 (odd); write the slot header fields and the pixels; counter += 1
(even); then store latest_slot, then latest_frame_sequence, in the file header.

Reader protocol (any number of readers, never blocking the writer):
  1. read latest_frame_sequence; if it is not newer than the last frame you have, stop;
  2. read latest_slot (0xFFFFFFFF: no frame yet);
  3. read the slot's counter c1; if it is odd, the slot is being written: retry from 1;
  4. copy the slot header fields and the pixels into your own buffer;
  5. read the counter again, c2; accept the copy only if c1 == c2, else retry from 1;
  6. after a bounded number of retries, give up until the next frame.
A counter of 0 means the slot was never written (the file starts zeroed). A reader told the slot
by FrameReady may start at step 3; if the copied frame_sequence is not the announced one, the slot
was reused meanwhile and the newest frame (step 1) is the one to show. Trust the frame_sequence
read from the slot header (protected by the seqlock), not the file header's
latest_frame_sequence, which is only a hint. Counters are single aligned 8-byte stores;
read them with single 8-byte loads (C#: `Volatile.Read` / `Interlocked.Read` on a mapped view, with
`Interlocked.MemoryBarrier()` before reading c2). A reader without a memory mapping (Godot's
FileAccess) reads the counter, then header and pixels, then the counter again, as three separate
reads of the file, opening the file anew for each counter read: through one handle, buffered I/O may
answer the second read from the block it already holds and the check passes on a torn copy.

Ordering. This Python writer relies on the CPU committing its stores in program order, which x86-64
guarantees; on ARM64 the counter stores are separated from the pixel stores by far more interpreter
work than a store buffer holds, a practical rather than an architectural guarantee.

Access. The file is created with mode 0600 (RING_FILE_MODE, whatever the umask): only the backend's
user can read it, so the engine must run as the same user as the backend (or use the inline
transport). The ring folder is shared by every user and the file name holds the session id; a
world-readable ring would show this engine's frames to any local process. The file is written
under a fresh temporary name (opened with O_EXCL) and renamed into place.

The backend removes the file when the session ends; `cleanup_stale_rings` removes files left by
writers that died, only files of its own user. On Windows a file still mapped by a reader cannot be
removed; it is then left behind, marked closed, and the next cleanup removes it.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import secrets
import stat
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidArgument
from .frame import Frame, FrameMeta

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- layout constants

MAGIC = b"SBRING\x00\x01"
LAYOUT_VERSION = 1
HEADER_BYTES = 4096
SLOT_HEADER_BYTES = 128
#: Slots start on multiples of this many bytes (pages; also what GPU upload paths like).
SLOT_ALIGN = 4096
MIN_SLOTS = 3
BYTES_PER_PIXEL = 4
#: PIXEL_FORMAT_RGBA8_SRGB in engine.proto.
PIXEL_FORMAT_RGBA8_SRGB = 1
#: latest_slot before the first frame.
NO_SLOT = 0xFFFFFFFF
#: Name prefix of ring files, and suffix of the temporary files they are made under.
RING_PREFIX = "starbridge-"
TEMP_SUFFIX = ".tmp"
#: Permissions of a ring file: its owner (the backend's user) reads and writes, nobody else.
RING_FILE_MODE = 0o600

# File header field offsets.
OFF_MAGIC = 0
OFF_LAYOUT_VERSION = 8
OFF_HEADER_BYTES = 12
OFF_WIDTH = 16
OFF_HEIGHT = 20
OFF_STRIDE = 24
OFF_PIXEL_FORMAT = 28
OFF_SLOT_COUNT = 32
OFF_SLOT_BYTES = 36
OFF_SLOT_HEADER_BYTES = 40
OFF_OWNER_PID = 44
OFF_LATEST_FRAME_SEQUENCE = 48
OFF_LATEST_SLOT = 56
OFF_CLOSED = 60
OFF_FILE_BYTES = 64

# Slot header field offsets, relative to the slot's start.
SLOT_OFF_COUNTER = 0
SLOT_OFF_FRAME_SEQUENCE = 8
SLOT_OFF_POSE_SEQUENCE = 16
SLOT_OFF_ENGINE_TIME_US = 24
SLOT_OFF_SCENE_TIME_S = 32
SLOT_OFF_POSITION = 40
SLOT_OFF_ROTATION = 52
SLOT_OFF_VERTICAL_FOV_DEG = 68
SLOT_OFF_ASPECT = 72
SLOT_OFF_GENERATION_LATENCY_MS = 76
SLOT_OFF_WIDTH = 80
SLOT_OFF_HEIGHT = 84

#: File header from offset 0 to 72 (everything but the zero padding).
FILE_HEADER_STRUCT = struct.Struct("<8s10IQIIQ")
#: Slot header fields after the counter, from SLOT_OFF_FRAME_SEQUENCE to 88.
SLOT_FIELDS_STRUCT = struct.Struct("<QQQd3f4ffffII")

assert FILE_HEADER_STRUCT.size == OFF_FILE_BYTES + 8
assert SLOT_FIELDS_STRUCT.size == SLOT_OFF_HEIGHT + 4 - SLOT_OFF_FRAME_SEQUENCE

#: How often a reader retries a torn or in-progress slot before giving up until the next frame.
READ_ATTEMPTS = 8
#: Unreadable ring files and temporary files older than this are removed by cleanup, seconds.
STALE_GARBAGE_AGE_S = 60.0


class RingError(InvalidArgument):
    """A ring file is missing, truncated, or not a frame ring this code can read."""

    def __init__(self, message: str, *, field: str = "shared_memory.path") -> None:
        super().__init__(message, field=field)


def ring_dir() -> Path:
    """Folder for ring files: /dev/shm when it exists and is writable, else the system temp folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def ring_path(session_id: str) -> Path:
    """Path of a session's ring file: `<ring_dir>/starbridge-<session_id>`."""
    if not session_id or any(c in session_id for c in "/\\:") or session_id in (".", ".."):
        raise InvalidArgument(f"session id {session_id!r} cannot name a ring file", field="session_id")
    return ring_dir() / f"{RING_PREFIX}{session_id}"


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


@dataclass(frozen=True)
class RingLayout:
    """Everything `SharedMemoryLayout` (engine.proto) carries, plus the frame size. Sizes in bytes."""

    path: Path
    width: int
    height: int
    slot_count: int
    #: Bytes per pixel row (width * 4).
    stride: int
    #: Bytes from one slot's start to the next (a multiple of SLOT_ALIGN).
    slot_bytes: int
    #: Total file size.
    file_bytes: int
    layout_version: int = LAYOUT_VERSION
    header_bytes: int = HEADER_BYTES
    slot_header_bytes: int = SLOT_HEADER_BYTES
    pixel_format: int = PIXEL_FORMAT_RGBA8_SRGB

    @classmethod
    def for_frame(cls, path: Path, width: int, height: int, slot_count: int) -> RingLayout:
        """The version-1 layout of a ring of `slot_count` frames of width x height RGBA8."""
        stride = width * BYTES_PER_PIXEL
        slot_bytes = _round_up(SLOT_HEADER_BYTES + stride * height, SLOT_ALIGN)
        return cls(
            path=path,
            width=width,
            height=height,
            slot_count=slot_count,
            stride=stride,
            slot_bytes=slot_bytes,
            file_bytes=HEADER_BYTES + slot_count * slot_bytes,
        )

    def slot_offset(self, slot: int) -> int:
        """Byte offset of a slot's header in the file."""
        return self.header_bytes + slot * self.slot_bytes


class _RingMap:
    """A mapped ring file and the numpy views both ends use. Owns the mapping."""

    def __init__(self, mm: mmap.mmap, layout: RingLayout) -> None:
        self.mm = mm
        self.layout = layout
        n, h, w = layout.slot_count, layout.height, layout.width
        # File header as u64 and u32 words (offsets 48 and 56/60 are word-aligned).
        self.header_u64 = np.ndarray((HEADER_BYTES // 8,), dtype="<u8", buffer=mm, offset=0)
        self.header_u32 = np.ndarray((HEADER_BYTES // 4,), dtype="<u4", buffer=mm, offset=0)
        # One seqlock counter per slot: 8-byte aligned, read and written as single words.
        self.counters = np.ndarray(
            (n,), dtype="<u8", buffer=mm, offset=layout.header_bytes, strides=(layout.slot_bytes,)
        )
        # Pixels of every slot: (slot, row, column, channel).
        self.pixels = np.ndarray(
            (n, h, w, BYTES_PER_PIXEL),
            dtype=np.uint8,
            buffer=mm,
            offset=layout.header_bytes + layout.slot_header_bytes,
            strides=(layout.slot_bytes, layout.stride, BYTES_PER_PIXEL, 1),
        )

    @property
    def latest_frame_sequence(self) -> int:
        return int(self.header_u64[OFF_LATEST_FRAME_SEQUENCE // 8])

    @property
    def latest_slot(self) -> int:
        return int(self.header_u32[OFF_LATEST_SLOT // 4])

    @property
    def closed(self) -> bool:
        return bool(self.header_u32[OFF_CLOSED // 4])

    def close(self) -> None:
        # The views export the mapping's buffer: drop them before closing it.
        del self.header_u64, self.header_u32, self.counters, self.pixels
        self.mm.close()


def _pack_file_header(layout: RingLayout, owner_pid: int) -> bytes:
    sizes = (layout.header_bytes, layout.width, layout.height, layout.stride, layout.pixel_format)
    slots = (layout.slot_count, layout.slot_bytes, layout.slot_header_bytes)
    latest = (0, NO_SLOT, 0)  # latest_frame_sequence, latest_slot, closed
    head = FILE_HEADER_STRUCT.pack(MAGIC, layout.layout_version, *sizes, *slots, owner_pid, *latest, layout.file_bytes)
    return head + bytes(HEADER_BYTES - len(head))


class FrameRingWriter:
    """Creates a ring file and writes frames into it round robin. One writer per file.

    Usage::

        with FrameRingWriter(ring_path(session_id), 512, 288) as ring:
            slot = ring.write(pixels, meta)   # pixels: (288, 512, 4) uint8, meta: a FrameMeta
    """

    def __init__(self, path: str | os.PathLike[str], width: int, height: int, slot_count: int = MIN_SLOTS) -> None:
        if width <= 0 or height <= 0:
            raise InvalidArgument(f"ring frame size must be positive, got {width}x{height}", field="width")
        if slot_count < MIN_SLOTS:
            raise InvalidArgument(f"a ring needs at least {MIN_SLOTS} slots, got {slot_count}", field="slot_count")
        self.path = Path(path)
        self._layout = RingLayout.for_frame(self.path, int(width), int(height), int(slot_count))
        if self._layout.slot_bytes >= 2**32:
            raise InvalidArgument(f"frame {width}x{height} is too large for a ring slot (4 GiB)", field="width")
        self._last_slot = self._layout.slot_count - 1  # so the first frame goes to slot 0
        self._last_sequence = 0
        self._map: _RingMap | None = None
        self._create()

    def _create(self) -> None:
        """Write the file under a temporary name, rename it into place, then map it.

        A reader therefore never sees a half-initialised header; slots start zeroed (counter 0,
        frame_sequence 0 = never written).
        """
        lay = self._layout
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        # Owner read/write only (RING_FILE_MODE), whatever the umask: the file name holds the
        # session id, so a world-readable ring would show this engine's frames to every local user.
        # O_EXCL: never write through a file (or link) someone else put under this name.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), RING_FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as f:
                if sys.platform != "win32":
                    os.fchmod(f.fileno(), RING_FILE_MODE)  # the umask may have cleared bits of the mode above
                f.write(_pack_file_header(lay, os.getpid()))
                f.truncate(lay.file_bytes)
                f.flush()
                _reserve(f.fileno(), lay.file_bytes, self.path)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        with open(self.path, "r+b") as f:
            mm = mmap.mmap(f.fileno(), lay.file_bytes, access=mmap.ACCESS_WRITE)
        self._map = _RingMap(mm, lay)

    def layout(self) -> RingLayout:
        """The ring's layout, for Welcome.shared_memory."""
        return self._layout

    @property
    def closed(self) -> bool:
        return self._map is None

    def write(self, pixels: np.ndarray, meta: FrameMeta) -> int:
        """Write one frame into the next slot and publish it; returns the slot index.

        `pixels` is (height, width, 4) uint8 RGBA, rows top to bottom; `meta` describes it, its size
        the ring's. `meta.frame_sequence` must grow from frame to frame (>= 1). `meta.slot` is not
        read: the ring picks the slot (returned; put it in the FrameReady that announces the frame).
        """
        m = self._map
        if m is None:
            raise InvalidArgument(f"frame ring {self.path} is closed", field="ring")
        lay = self._layout
        if pixels.shape != (lay.height, lay.width, BYTES_PER_PIXEL) or pixels.dtype != np.uint8:
            raise InvalidArgument(
                f"ring frame must be ({lay.height}, {lay.width}, 4) uint8, got {pixels.shape} {pixels.dtype}",
                field="pixels",
            )
        if (meta.width, meta.height) != (lay.width, lay.height):
            raise InvalidArgument(
                f"meta.width x meta.height must be the ring's {lay.width}x{lay.height}, got {meta.width}x{meta.height}",
                field="meta.width",
            )
        if meta.frame_sequence <= self._last_sequence:
            raise InvalidArgument(
                f"frame_sequence must grow: got {meta.frame_sequence} after {self._last_sequence}",
                field="frame_sequence",
            )
        if len(meta.position) != 3 or len(meta.rotation) != 4:
            raise InvalidArgument(
                f"position needs 3 and rotation 4 components, got {len(meta.position)} and {len(meta.rotation)}",
                field="position",
            )
        sequences = (meta.frame_sequence, meta.pose_sequence, meta.engine_time_us, meta.scene_time_s)
        camera = (*meta.position, *meta.rotation, meta.vertical_fov_deg, meta.aspect)
        rest = (meta.generation_latency_ms, lay.width, lay.height)
        slot = (self._last_slot + 1) % lay.slot_count
        offset = lay.slot_offset(slot) + SLOT_OFF_FRAME_SEQUENCE
        counter = int(m.counters[slot])
        m.counters[slot] = counter + 1  # odd: being written
        SLOT_FIELDS_STRUCT.pack_into(m.mm, offset, *sequences, *camera, *rest)
        np.copyto(m.pixels[slot], pixels)
        m.counters[slot] = counter + 2  # even: stable
        m.header_u32[OFF_LATEST_SLOT // 4] = slot
        m.header_u64[OFF_LATEST_FRAME_SEQUENCE // 8] = meta.frame_sequence
        self._last_slot = slot
        self._last_sequence = meta.frame_sequence
        return slot

    def close(self) -> None:
        """Mark the ring closed, unmap it and remove the file. Idempotent."""
        m, self._map = self._map, None
        if m is None:
            return
        try:
            m.header_u32[OFF_CLOSED // 4] = 1
        finally:
            m.close()
            try:
                self.path.unlink(missing_ok=True)
            except OSError as exc:  # Windows: a reader still maps it; cleanup removes it later
                log.debug("frame ring %s not removed: %s", self.path, exc)

    def __enter__(self) -> FrameRingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_map", None) is not None:
            try:
                self.close()
            except Exception:  # interpreter shutdown: cleanup_stale_rings removes the file later
                pass


def _reserve(fd: int, size: int, path: Path) -> None:
    """Allocate the file's blocks now where the OS can (Linux), so a full /dev/shm fails here with
    a clear error instead of killing the writer with SIGBUS on its first frame."""
    if not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG):
            raise InvalidArgument(
                f"no room for a {size / 2**20:.1f} MiB frame ring in {path.parent}: free space there, choose a "
                "smaller frame size, or (in Docker) raise --shm-size",
                field="width",
            ) from exc
        # EOPNOTSUPP / EINVAL: the file system cannot preallocate; the sparse file still works.


def read_header(data: bytes | mmap.mmap, path: Path) -> tuple[RingLayout, int]:
    """(layout, owner_pid) from a ring file's header bytes; RingError when it is not a valid ring."""
    if len(data) < HEADER_BYTES:
        raise RingError(f"frame ring {path} is truncated: {len(data)} bytes, the header alone needs {HEADER_BYTES}")
    fields = FILE_HEADER_STRUCT.unpack_from(data, 0)
    magic, version, header_bytes, width, height, stride, pixel_format = fields[:7]
    slot_count, slot_bytes, slot_header_bytes, owner_pid = fields[7:11]
    file_bytes = fields[14]
    where = f"frame ring {path}"
    if magic != MAGIC:
        raise RingError(f"{where} is not a StarBridge frame ring (magic {magic!r}, expected {MAGIC!r})")
    if version != LAYOUT_VERSION:
        raise RingError(
            f"{where} has layout version {version}, this code reads version {LAYOUT_VERSION}: "
            "update the plugin or the backend so they match"
        )
    layout = RingLayout.for_frame(path, width, height, slot_count)
    expected = {
        "header_bytes": (header_bytes, HEADER_BYTES),
        "slot_header_bytes": (slot_header_bytes, SLOT_HEADER_BYTES),
        "pixel_format": (pixel_format, PIXEL_FORMAT_RGBA8_SRGB),
        "stride": (stride, layout.stride),
        "slot_bytes": (slot_bytes, layout.slot_bytes),
        "file_bytes": (file_bytes, layout.file_bytes),
    }
    if width == 0 or height == 0:
        raise RingError(f"{where} has an empty frame size {width}x{height}")
    if slot_count < MIN_SLOTS:
        raise RingError(f"{where} has {slot_count} slots, at least {MIN_SLOTS} are needed")
    for name, (got, want) in expected.items():
        if got != want:
            raise RingError(f"{where} has {name} = {got}, expected {want} for a {width}x{height} ring")
    return layout, owner_pid


class FrameRingReader:
    """Maps an existing ring file read-only and copies frames out of it (seqlock-checked).

    Usage::

        reader = FrameRingReader(welcome.shared_memory.path)
        out = np.empty((reader.layout().height, reader.layout().width, 4), np.uint8)
        frame = reader.read_latest(out, newer_than=last_sequence)   # None: nothing new (yet); frame.pixels is out
    """

    def __init__(self, path: str | os.PathLike[str], *, attempts: int = READ_ATTEMPTS) -> None:
        self.path = Path(path)
        self.attempts = attempts
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                layout, self.owner_pid = read_header(f.read(HEADER_BYTES), self.path)
                if size < layout.file_bytes:
                    raise RingError(
                        f"frame ring {self.path} is truncated: {size} bytes, its header says {layout.file_bytes}"
                    )
                mm = mmap.mmap(f.fileno(), layout.file_bytes, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise RingError(
                f"frame ring {self.path} does not exist: the session ended or the backend runs on another machine "
                "(use the inline transport there)"
            ) from None
        except OSError as exc:
            raise RingError(f"frame ring {self.path} cannot be opened: {exc}") from exc
        self._layout = layout
        self._map: _RingMap | None = _RingMap(mm, layout)

    def layout(self) -> RingLayout:
        return self._layout

    @property
    def writer_closed(self) -> bool:
        """True once the writer closed the ring (no more frames will come)."""
        return self._map is None or self._map.closed

    @property
    def latest_frame_sequence(self) -> int:
        """The newest published frame sequence (a hint; 0: none yet)."""
        return 0 if self._map is None else self._map.latest_frame_sequence

    def new_buffer(self) -> np.ndarray:
        """A (height, width, 4) uint8 array to pass as `out`."""
        return np.empty((self._layout.height, self._layout.width, BYTES_PER_PIXEL), dtype=np.uint8)

    def read_latest(self, out: np.ndarray | None = None, newer_than: int = 0) -> Frame | None:
        """Copy the newest complete frame into `out` (or a new array): a Frame whose pixels are that array.

        Returns None when no frame newer than frame sequence `newer_than` was published, or when
        the writer kept overwriting the slot for `attempts` tries (try again at the next frame).
        """
        m = self._live_map()
        out = self._check_out(out)
        for _ in range(self.attempts):
            if m.latest_frame_sequence <= newer_than:
                return None
            slot = m.latest_slot
            if slot >= self._layout.slot_count:
                return None
            frame = self._read_once(m, slot, out)
            if frame is not None and frame.meta.frame_sequence > newer_than:
                return frame
        return None

    def read_slot(self, slot: int, out: np.ndarray | None = None) -> Frame | None:
        """Copy the frame in `slot` into `out` (or a new array); None if never written or torn."""
        m = self._live_map()
        if not 0 <= slot < self._layout.slot_count:
            raise InvalidArgument(f"slot must be in [0, {self._layout.slot_count}), got {slot}", field="slot")
        out = self._check_out(out)
        for _ in range(self.attempts):
            frame = self._read_once(m, slot, out)
            if frame is not None:
                return frame
        return None

    def _read_once(self, m: _RingMap, slot: int, out: np.ndarray) -> Frame | None:
        """One seqlock-checked copy of a slot; None if it was being written or never was."""
        c1 = int(m.counters[slot])
        if c1 & 1 or c1 == 0:
            return None
        fields = SLOT_FIELDS_STRUCT.unpack_from(m.mm, self._layout.slot_offset(slot) + SLOT_OFF_FRAME_SEQUENCE)
        np.copyto(out, m.pixels[slot])
        c2 = int(m.counters[slot])
        if c1 != c2:
            return None
        (frame_seq, pose_seq, engine_us, scene_t, px, py, pz, qx, qy, qz, qw, fov, aspect, gen_ms, w, h) = fields
        meta = FrameMeta(
            frame_sequence=frame_seq,
            slot=slot,
            pose_sequence=pose_seq,
            engine_time_us=engine_us,
            position=(px, py, pz),
            rotation=(qx, qy, qz, qw),
            vertical_fov_deg=fov,
            aspect=aspect,
            scene_time_s=scene_t,
            generation_latency_ms=gen_ms,
            width=w,
            height=h,
        )
        return Frame(meta, out)

    def _live_map(self) -> _RingMap:
        if self._map is None:
            raise RingError(f"frame ring reader for {self.path} is closed", field="ring")
        return self._map

    def _check_out(self, out: np.ndarray | None) -> np.ndarray:
        if out is None:
            return self.new_buffer()
        lay = self._layout
        if out.shape != (lay.height, lay.width, BYTES_PER_PIXEL) or out.dtype != np.uint8:
            raise InvalidArgument(
                f"out must be ({lay.height}, {lay.width}, 4) uint8, got {out.shape} {out.dtype}", field="out"
            )
        return out

    def close(self) -> None:
        """Unmap the file. Idempotent."""
        m, self._map = self._map, None
        if m is not None:
            m.close()

    def __enter__(self) -> FrameRingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- stale files


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists (it may belong to another user)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _win_pid_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _win_pid_alive(pid: int) -> bool:
    """Windows: os.kill would terminate the process, so ask OpenProcess/GetExitCodeProcess."""
    import ctypes
    from ctypes import wintypes

    process_query_limited_information = 0x1000
    still_active = 259
    error_access_denied = 5
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        return ctypes.get_last_error() == error_access_denied  # type: ignore[attr-defined]
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True  # cannot tell: keep the file
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def cleanup_stale_rings(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove ring files whose writer is gone; returns the paths removed.

    Only regular files this user owns are considered (POSIX: st_uid is our effective uid; the
    ring folder, /dev/shm or the temp folder, is shared by every user, and another user's backend
    is not ours to clean up even where we could, e.g. as root). Of those, removed: `starbridge-*`
    rings whose owner_pid is not a live process, or that their writer marked closed but could not
    remove; unreadable or invalid ones and leftover temporary files older than
    STALE_GARBAGE_AGE_S. Kept: rings of live processes (including this one), other users' files,
    links and anything that is not a regular file.
    """
    folder = Path(directory) if directory is not None else ring_dir()
    removed: list[Path] = []
    now = time.time()
    try:
        candidates = sorted(folder.glob(f"{RING_PREFIX}*"))
    except OSError:
        return removed
    for path in candidates:
        try:
            st = path.lstat()  # the link itself, not what it points to
            if not stat.S_ISREG(st.st_mode) or not _owned_by_us(st):
                continue
            old = now - st.st_mtime > STALE_GARBAGE_AGE_S
            if path.name.endswith(TEMP_SUFFIX):
                stale = old
            else:
                stale = _ring_is_stale(path, old)
            if stale:
                path.unlink()
                removed.append(path)
        except OSError as exc:  # vanished meanwhile, or not ours to remove
            log.debug("frame ring cleanup skipped %s: %s", path, exc)
    if removed:
        log.info("removed %d stale frame ring file(s) from %s", len(removed), folder)
    return removed


def _owned_by_us(st: os.stat_result) -> bool:
    """True if this process's user owns the file (always on Windows, which has no st_uid)."""
    if sys.platform == "win32":
        return True
    return st.st_uid == os.geteuid()


def _ring_is_stale(path: Path, old: bool) -> bool:
    with open(path, "rb") as f:
        data = f.read(HEADER_BYTES)
    try:
        _layout, owner_pid = read_header(data, path)
    except RingError:
        return old
    if data[OFF_CLOSED : OFF_CLOSED + 4] != b"\0\0\0\0":
        return True
    return owner_pid != os.getpid() and not pid_alive(owner_pid)
