"""Shared-memory frame ring: layout against the spec, round trips, errors, cleanup, seqlock."""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from starbridge.errors import InvalidArgument, StarBridgeError
from starbridge.transport.frame import FrameMeta
from starbridge.transport.ring import (
    FrameRingReader,
    FrameRingWriter,
    RingError,
    cleanup_stale_rings,
    pid_alive,
    ring_dir,
    ring_path,
)

W, H = 7, 5
#: This folder: the hammer's writer process imports `frame_meta` from here.
HERE = str(Path(__file__).resolve().parent)


def frame_meta(seq: int, w: int = W, h: int = H) -> FrameMeta:
    """Header fields derived from a frame sequence, all exact in float32."""
    return FrameMeta(
        frame_sequence=seq,
        slot=0,
        pose_sequence=seq * 3 + 2**33,
        engine_time_us=seq * 1000 + 2**40,
        scene_time_s=seq / 8.0,
        position=(float(seq % 1000), -float(seq % 1000), 0.5),
        rotation=(0.0, -0.5, 0.25 * (seq % 4), 0.75),
        vertical_fov_deg=30.0 + seq % 90,
        aspect=1.0 + (seq % 7) * 0.125,
        generation_latency_ms=(seq % 13) * 0.5,
        width=w,
        height=h,
    )


def pixels_for(seq: int, w: int = W, h: int = H) -> np.ndarray:
    rng = np.random.default_rng(seq)
    return rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)


def check_info(frame, seq: int, slot: int | None = None, w: int = W, h: int = H) -> None:
    info, f = frame.meta, frame_meta(seq, w, h)
    assert info.frame_sequence == seq
    assert info.pose_sequence == f.pose_sequence
    assert info.engine_time_us == f.engine_time_us
    assert info.scene_time_s == f.scene_time_s
    assert info.position == f.position
    assert info.rotation == f.rotation
    assert info.vertical_fov_deg == f.vertical_fov_deg
    assert info.aspect == f.aspect
    assert info.generation_latency_ms == f.generation_latency_ms
    assert (info.width, info.height) == (w, h)
    if slot is not None:
        assert info.slot == slot


@pytest.fixture
def ring(tmp_path: Path):
    with FrameRingWriter(tmp_path / "starbridge-test", W, H) as writer:
        yield writer


def test_ring_paths():
    d = ring_dir()
    assert d.is_dir()
    assert ring_path("abc") == d / "starbridge-abc"
    for bad in ("", "a/b", "..", "c:\\x"):
        with pytest.raises(InvalidArgument):
            ring_path(bad)


def test_layout_sizes(ring: FrameRingWriter):
    lay = ring.layout()
    assert lay.path == ring.path
    assert (lay.width, lay.height, lay.stride) == (W, H, W * 4)
    assert (lay.layout_version, lay.header_bytes, lay.slot_header_bytes, lay.pixel_format) == (1, 4096, 128, 1)
    assert lay.slot_count == 3
    assert lay.slot_bytes == 4096  # round_up(128 + 7*4*5, 4096)
    assert lay.file_bytes == 4096 + 3 * 4096 == ring.path.stat().st_size
    big = FrameRingWriter(ring.path.with_name("starbridge-big"), 1280, 720, slot_count=4)
    try:
        assert big.layout().slot_bytes == -(-(128 + 1280 * 4 * 720) // 4096) * 4096
        assert big.layout().slot_bytes % 4096 == 0
        assert big.layout().file_bytes == 4096 + 4 * big.layout().slot_bytes
    finally:
        big.close()


def test_round_trip_every_field(ring: FrameRingWriter):
    with FrameRingReader(ring.path) as reader:
        assert reader.layout() == ring.layout()
        assert reader.owner_pid == os.getpid()
        assert reader.read_latest() is None  # nothing written yet
        assert reader.read_slot(0) is None
        px = pixels_for(1)
        slot = ring.write(px, frame_meta(1))
        assert slot == 0
        out = reader.new_buffer()
        info = reader.read_latest(out)
        assert info is not None and info.pixels is out
        check_info(info, 1, slot=0)
        np.testing.assert_array_equal(out, px)
        assert reader.read_latest(out, newer_than=1) is None
        assert reader.latest_frame_sequence == 1


def test_offsets_match_the_spec(ring: FrameRingWriter):
    """Read raw bytes at the documented offsets, so the spec and the code cannot drift."""
    px = pixels_for(5)
    ring.write(px, frame_meta(4))
    slot = ring.write(px, frame_meta(5))
    assert slot == 1
    data = ring.path.read_bytes()
    f = frame_meta(5)
    assert data[0:8] == b"SBRING\x00\x01"
    u32 = lambda off: struct.unpack_from("<I", data, off)[0]  # noqa: E731
    u64 = lambda off: struct.unpack_from("<Q", data, off)[0]  # noqa: E731
    assert u32(8) == 1 and u32(12) == 4096
    assert (u32(16), u32(20), u32(24), u32(28)) == (W, H, W * 4, 1)
    assert (u32(32), u32(36), u32(40), u32(44)) == (3, 4096, 128, os.getpid())
    assert (u64(48), u32(56), u32(60), u64(64)) == (5, 1, 0, 4 * 4096)
    assert data[72:4096] == bytes(4096 - 72)
    base = 4096 + 1 * 4096
    assert u64(base + 0) == 2  # written once: odd, then even
    assert u64(base + 8) == 5
    assert u64(base + 16) == f.pose_sequence
    assert u64(base + 24) == f.engine_time_us
    assert struct.unpack_from("<d", data, base + 32)[0] == f.scene_time_s
    assert struct.unpack_from("<3f", data, base + 40) == f.position
    assert struct.unpack_from("<4f", data, base + 52) == f.rotation
    assert struct.unpack_from("<3f", data, base + 68) == (
        f.vertical_fov_deg,
        f.aspect,
        f.generation_latency_ms,
    )
    assert (u32(base + 80), u32(base + 84)) == (W, H)
    assert data[base + 88 : base + 128] == bytes(40)
    pix = np.frombuffer(data, np.uint8, count=H * W * 4, offset=base + 128).reshape(H, W, 4)
    np.testing.assert_array_equal(pix, px)
    # Slot 2 was never written: all zero.
    assert data[4096 + 2 * 4096 : 4096 + 3 * 4096] == bytes(4096)


def test_wrap_around(ring: FrameRingWriter):
    with FrameRingReader(ring.path) as reader:
        out = reader.new_buffer()
        for seq in range(1, 8):
            slot = ring.write(pixels_for(seq), frame_meta(seq))
            assert slot == (seq - 1) % 3
            info = reader.read_latest(out, newer_than=seq - 1)
            check_info(info, seq, slot=slot)
            np.testing.assert_array_equal(out, pixels_for(seq))
        for slot, seq in ((0, 7), (1, 5), (2, 6)):
            info = reader.read_slot(slot, out)
            check_info(info, seq, slot=slot)
            np.testing.assert_array_equal(out, pixels_for(seq))
        counters = [struct.unpack_from("<Q", ring.path.read_bytes(), 4096 + s * 4096)[0] for s in range(3)]
        assert counters == [6, 4, 4]


def test_write_refuses_bad_input(ring: FrameRingWriter):
    with pytest.raises(InvalidArgument, match=r"\(5, 7, 4\) uint8"):
        ring.write(np.zeros((H, W, 3), np.uint8), frame_meta(1))
    with pytest.raises(InvalidArgument, match="uint8"):
        ring.write(np.zeros((H, W, 4), np.float32), frame_meta(1))
    ring.write(pixels_for(2), frame_meta(2))
    with pytest.raises(InvalidArgument, match="frame_sequence must grow"):
        ring.write(pixels_for(2), frame_meta(2))
    with pytest.raises(InvalidArgument, match="the ring's 7x5, got 8x5"):
        ring.write(pixels_for(3), frame_meta(3, w=W + 1))
    with pytest.raises(InvalidArgument, match="at least 3 slots"):
        FrameRingWriter(ring.path.with_name("starbridge-two"), W, H, slot_count=2)
    with FrameRingReader(ring.path) as reader:
        with pytest.raises(InvalidArgument, match="out must be"):
            reader.read_latest(np.zeros((H, W, 4), np.float32))
        with pytest.raises(InvalidArgument, match="slot must be"):
            reader.read_slot(3)


def test_reader_of_closed_and_removed_ring(tmp_path: Path):
    path = tmp_path / "starbridge-closing"
    writer = FrameRingWriter(path, W, H)
    writer.write(pixels_for(1), frame_meta(1))
    reader = FrameRingReader(path)
    assert not reader.writer_closed
    writer.close()
    writer.close()  # idempotent
    assert writer.closed and not path.exists()
    assert reader.writer_closed
    if sys.platform != "win32":  # the mapping outlives the file name on POSIX
        check_info(reader.read_latest(), 1)
    reader.close()
    reader.close()
    with pytest.raises(RingError, match="closed"):
        reader.read_latest()
    with pytest.raises(RingError, match="does not exist") as err:
        FrameRingReader(path)
    assert isinstance(err.value, StarBridgeError) and err.value.field == "shared_memory.path"
    with pytest.raises(InvalidArgument, match="closed"):
        writer.write(pixels_for(2), frame_meta(2))


def test_bad_files(tmp_path: Path, ring: FrameRingWriter):
    good = ring.path.read_bytes()
    cases = {
        "magic": (b"NOTARING" + good[8:], "not a StarBridge frame ring"),
        "empty": (b"", "truncated"),
        "short-header": (good[:100], "truncated"),
        "short-slots": (good[: 4096 + 5000], "truncated: 9096 bytes, its header says 16384"),
        "version": (good[:8] + struct.pack("<I", 2) + good[12:], "layout version 2"),
        "stride": (good[:24] + struct.pack("<I", W * 3) + good[28:], "stride = 21, expected 28"),
        "slots": (good[:32] + struct.pack("<I", 2) + good[36:], "at least 3"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / f"starbridge-bad-{name}"
        path.write_bytes(data)
        with pytest.raises(RingError, match=message):
            FrameRingReader(path)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _ring_file(path: Path, template: bytes, owner_pid: int, closed: int = 0) -> Path:
    data = bytearray(template)
    struct.pack_into("<I", data, 44, owner_pid)
    struct.pack_into("<I", data, 60, closed)
    path.write_bytes(bytes(data))
    return path


def test_cleanup_stale_rings(tmp_path: Path):
    with FrameRingWriter(tmp_path / "template", W, H) as writer:
        template = writer.path.read_bytes()
    dead = _dead_pid()
    assert not pid_alive(dead) and pid_alive(os.getpid()) and not pid_alive(0)
    long_ago = time.time() - 3600
    dead_ring = _ring_file(tmp_path / "starbridge-dead", template, dead)
    closed_ring = _ring_file(tmp_path / "starbridge-closed", template, os.getpid(), closed=1)
    own_ring = _ring_file(tmp_path / "starbridge-own", template, os.getpid())
    parent_ring = _ring_file(tmp_path / "starbridge-parent", template, os.getppid())
    old_garbage = tmp_path / "starbridge-old-garbage"
    old_garbage.write_bytes(b"x" * 10)
    new_garbage = tmp_path / "starbridge-new-garbage"
    new_garbage.write_bytes(b"x" * 10)
    old_tmp = tmp_path / "starbridge-s1.123.tmp"
    old_tmp.write_bytes(template[:100])
    new_tmp = tmp_path / "starbridge-s2.123.tmp"
    new_tmp.write_bytes(template[:100])
    other = tmp_path / "unrelated"
    other.write_bytes(b"x")
    for p in (old_garbage, old_tmp, other):
        os.utime(p, (long_ago, long_ago))
    removed = cleanup_stale_rings(tmp_path)
    assert sorted(removed) == sorted([dead_ring, closed_ring, old_garbage, old_tmp])
    for p in removed:
        assert not p.exists()
    for p in (own_ring, parent_ring, new_garbage, new_tmp, other):
        assert p.exists()
    assert cleanup_stale_rings(tmp_path) == []
    assert cleanup_stale_rings(tmp_path / "missing") == []


def test_cleanup_keeps_other_users_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Stale-looking files of another user (dead owner pid, closed, old garbage) are not ours to remove."""
    if sys.platform == "win32":
        pytest.skip("Windows files have no owner uid; cleanup keeps today's behaviour there")
    with FrameRingWriter(tmp_path / "template", W, H) as writer:
        template = writer.path.read_bytes()
    dead = _dead_pid()
    long_ago = time.time() - 3600
    ours_dead = _ring_file(tmp_path / "starbridge-ours-dead", template, dead)
    theirs_dead = _ring_file(tmp_path / "starbridge-theirs-dead", template, dead)
    theirs_closed = _ring_file(tmp_path / "starbridge-theirs-closed", template, os.getpid(), closed=1)
    theirs_garbage = tmp_path / "starbridge-theirs-garbage"
    theirs_garbage.write_bytes(b"x" * 10)
    theirs_tmp = tmp_path / "starbridge-s3.123.tmp"
    theirs_tmp.write_bytes(template[:100])
    theirs = (theirs_dead, theirs_closed, theirs_garbage, theirs_tmp)
    for p in (*theirs, ours_dead):
        os.utime(p, (long_ago, long_ago))
    if os.geteuid() == 0:
        other_uid = 65534  # nobody
        for p in theirs:
            os.chown(p, other_uid, -1)
        assert {p.stat().st_uid for p in theirs} == {other_uid} and ours_dead.stat().st_uid == 0
        expected = [ours_dead]
    else:  # cannot give files away without root: make every file here another user's instead
        real_euid = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: real_euid + 1)
        expected = []
    # A link named like a ring, pointing at a dead ring of ours elsewhere: neither followed nor removed.
    target_dir = tmp_path / "elsewhere"
    target_dir.mkdir()
    target = _ring_file(target_dir / "starbridge-target", template, dead)
    link = tmp_path / "starbridge-link"
    link.symlink_to(target)
    assert cleanup_stale_rings(tmp_path) == expected
    assert ours_dead.exists() == (not expected)
    for p in (*theirs, link, target):
        assert p.exists(), p
    assert theirs_dead.read_bytes()[:8] == template[:8]  # untouched


def test_ring_file_is_private(tmp_path: Path):
    """Ring files are 0600 whatever the umask: another local user cannot read an engine's frames."""
    if sys.platform == "win32":
        pytest.skip("POSIX permission bits")
    old = os.umask(0o000)  # the most permissive umask: the mode must not depend on it
    try:
        with FrameRingWriter(tmp_path / "starbridge-private", W, H) as ring:
            assert ring.path.stat().st_mode & 0o777 == 0o600
        os.umask(0o022)
        with FrameRingWriter(tmp_path / "starbridge-private2", W, H) as ring:
            assert ring.path.stat().st_mode & 0o777 == 0o600
            with FrameRingReader(ring.path) as reader:  # the owner still reads it
                assert reader.layout() == ring.layout()
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file left behind


def test_ring_creation_does_not_follow_a_planted_temp_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The temporary file is opened O_EXCL under a fresh name: a file planted under the old, predictable
    name (<ring>.<pid>.tmp) is neither written through nor used."""
    planted = tmp_path / f"starbridge-planted.{os.getpid()}.tmp"
    planted.write_bytes(b"planted")
    with FrameRingWriter(tmp_path / "starbridge-planted", W, H) as ring:
        assert ring.path.stat().st_size == ring.layout().file_bytes
    assert planted.read_bytes() == b"planted"


# ---------------------------------------------------------------- seqlock hammer

HAMMER_W, HAMMER_H = 320, 240
HAMMER_SECONDS = 2.0

_WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from starbridge.transport.ring import FrameRingWriter

    path, w, h, seconds, here = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    sys.path.insert(0, here)
    from test_transport_ring import frame_meta  # the same header fields the checks expect

    buf = np.empty((h, w, 4), np.uint8)
    with FrameRingWriter(path, w, h) as ring:
        print("ready", flush=True)
        seq, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            seq += 1
            buf.fill(seq & 0xFF)
            ring.write(buf, frame_meta(seq, w, h))
    print(seq, flush=True)
    """
)


def _hammer_read(writer: subprocess.Popen, path: Path) -> tuple[int, int, set[int], int]:
    """Read the ring continuously until the writer closes it; check every accepted frame."""
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    accepted = rejected = 0
    sequences: set[int] = set()
    with FrameRingReader(path, attempts=1) as reader:
        out = reader.new_buffer()
        k = 0
        deadline = time.monotonic() + HAMMER_SECONDS + 5.0
        while not reader.writer_closed and time.monotonic() < deadline:
            k += 1
            # Alternate: the newest frame, and each slot in turn (which is sometimes mid-write).
            info = reader.read_latest(out) if k % 2 else reader.read_slot(k // 2 % 3, out)
            if info is None:
                rejected += 1
                continue
            accepted += 1
            seq = info.meta.frame_sequence
            sequences.add(seq)
            check_info(info, seq, w=HAMMER_W, h=HAMMER_H)
            value = seq & 0xFF
            assert out.min() == value and out.max() == value, f"torn frame {seq}"
    written = int(writer.stdout.readline())
    assert writer.wait(timeout=10) == 0
    return accepted, rejected, sequences, written


def test_seqlock_hammer(tmp_path: Path):
    """A writer process writes flat out; every frame a reader accepts must be whole."""
    path = tmp_path / "starbridge-hammer"
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER_SCRIPT, str(path), str(HAMMER_W), str(HAMMER_H), str(HAMMER_SECONDS), HERE],
        stdout=subprocess.PIPE,
        text=True,
    ) as writer:
        try:
            accepted, rejected, sequences, written = _hammer_read(writer, path)
        finally:
            if writer.poll() is None:
                writer.kill()
    assert accepted > 200, (accepted, rejected)
    assert len(sequences) > 50 and max(sequences) <= written
    print(f"seqlock hammer: {written} written, {accepted} accepted ({len(sequences)} distinct), {rejected} rejected")


def test_full_ring_folder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if not hasattr(os, "posix_fallocate"):
        pytest.skip("no posix_fallocate here")

    def no_space(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(InvalidArgument, match="no room for a .* MiB frame ring.*--shm-size"):
        FrameRingWriter(tmp_path / "starbridge-full", 1280, 720)
    assert list(tmp_path.iterdir()) == []  # no half-made file left behind

    def unsupported(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    with FrameRingWriter(tmp_path / "starbridge-sparse", W, H) as ring:
        assert ring.write(pixels_for(1), frame_meta(1)) == 0
