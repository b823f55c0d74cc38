"""scripts/gpu_pack.py: pruning a CUDA fat binary to one GPU generation keeps that generation's images byte for byte
and every header (layout unchanged), and zeroes the rest."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gpu_pack", REPO_ROOT / "scripts" / "gpu_pack.py")
assert _spec and _spec.loader
gpu_pack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_pack)


def _entry(arch: int, payload: bytes) -> bytes:
    header = bytearray(64)  # kind ELF, version, header size, payload size, ..., arch at +28
    struct.pack_into("<HHIQ", header, 0, 2, 0x101, 64, len(payload))
    struct.pack_into("<I", header, 28, arch)
    return bytes(header) + payload


def _container(entries: list[bytes]) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", gpu_pack.FATBIN_MAGIC, 1, 16, len(body)) + body


def test_prune_keeps_one_architecture_and_every_header():
    rng = __import__("random").Random(1)
    payload = {a: bytes(rng.randrange(1, 256) for _ in range(40 * (k + 1))) for k, a in enumerate((75, 80, 90, 120))}
    first = _container([_entry(a, payload[a]) for a in (75, 90, 120)])
    second = _container([_entry(80, payload[80]), _entry(90, payload[90])])
    pad = bytes(-len(first) % 8)  # containers are 8-byte aligned
    prefix = b"ELF-ish code before the section"
    data = bytearray(prefix + first + pad + second + b"after")
    before = bytes(data)
    zeroed, kept = gpu_pack.prune_fatbin_section(data, len(prefix), len(first) + len(pad) + len(second), 90)
    assert kept == 2 * len(payload[90])
    assert zeroed == len(payload[75]) + len(payload[120]) + len(payload[80])
    assert len(data) == len(before) and data.startswith(prefix) and data.endswith(b"after")
    assert data.count(payload[90]) == 2  # both sm_90 images intact
    for arch in (75, 80, 120):
        assert payload[arch] not in data  # the others zeroed...
    changed = [i for i, (x, y) in enumerate(zip(data, before, strict=True)) if x != y]
    assert all(data[i] == 0 for i in changed)  # ...and nothing else touched (headers, code around)
    assert data.count(_entry(90, payload[90])[:64]) == 2
