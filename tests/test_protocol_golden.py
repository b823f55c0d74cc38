"""Golden byte vectors of the engine channel (tests/golden/): up to date, parseable, simple wire types.

The Unity and Godot codecs are tested against the same files, so these tests pin them to the
real protobuf runtime: (a) the checked-in files are what the builder makes from the current
protocol, (b) the real runtime parses each file back to the fields the manifest lists, (c) an
independent wire-format walker finds only the wire types the hand-written codecs support.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor as pbd
from google.protobuf import json_format

from starbridge.protocol import engine_pb2 as pb
from starbridge.transport.ring import RingLayout

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def _load_builder():
    spec = importlib.util.spec_from_file_location("starbridge_make_golden", GOLDEN_DIR / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


make_golden = _load_builder()
GOLDENS = make_golden.build()
MANIFEST = json.loads((GOLDEN_DIR / make_golden.MANIFEST).read_text(encoding="utf-8"))
ENTRIES = {entry["name"]: entry for entry in MANIFEST["messages"]}
ENVELOPES = {"EngineMessage": pb.EngineMessage, "BackendMessage": pb.BackendMessage}


# ---------------------------------------------------------------- (a) files are up to date


def test_files_match_the_builder():
    """A protocol change without `python tests/golden/make_golden.py` fails here."""
    for g in GOLDENS:
        path = GOLDEN_DIR / f"{g.name}.bin"
        assert path.is_file(), f"{path} is missing: run python tests/golden/make_golden.py"
        assert path.read_bytes() == g.serialize(), f"{path} is stale: run python tests/golden/make_golden.py"
    assert (GOLDEN_DIR / make_golden.MANIFEST).read_text(encoding="utf-8") == make_golden.manifest_text(GOLDENS)
    on_disk = {p.stem for p in GOLDEN_DIR.glob("*.bin")}
    assert on_disk == {g.name for g in GOLDENS} == set(ENTRIES)


def test_every_message_kind_is_covered():
    kinds = {(g.envelope, g.message.WhichOneof("body")) for g in GOLDENS}
    for envelope, cls in ENVELOPES.items():
        for field in cls.DESCRIPTOR.oneofs_by_name["body"].fields:
            assert (envelope, field.name) in kinds, f"no golden vector for {envelope}.{field.name}"
    actions = {g.message.time.action for g in GOLDENS if g.message.WhichOneof("body") == "time"}
    assert actions == set(pb.TimeControl.Action.values()) - {pb.TimeControl.ACTION_UNSPECIFIED}


def test_every_backend_field_is_in_a_golden_vector():
    """The engines' readers are tested against every field the backend may send (newer ones included:
    a reader must skip or accept them), so each field of a backend message is set in some vector."""
    present: set[str] = set()
    for g in GOLDENS:
        if g.envelope == "BackendMessage":
            present.update(path for path, _wire, _value in walk(g.serialize(), pb.BackendMessage.DESCRIPTOR))
    for path in _field_types(pb.BackendMessage.DESCRIPTOR):
        assert path in present, f"no golden vector sets BackendMessage.{path}"


def test_shutdown_notice_has_a_vector():
    """Protocol 1.1: the backend says SHUTTING_DOWN (not fatal) before it stops; plugins reconnect."""
    errors = [g.message.error for g in GOLDENS if g.message.WhichOneof("body") == "error"]
    notice = [e for e in errors if e.code == pb.ERROR_CODE_SHUTTING_DOWN]
    assert len(notice) == 1 and not notice[0].fatal and notice[0].message
    assert pb.ERROR_CODE_SHUTTING_DOWN == 10


def test_welcome_ring_layout_matches_the_ring():
    shm = next(g for g in GOLDENS if g.name == "welcome_shared_memory").message.welcome.shared_memory
    lay = RingLayout.for_frame(Path(shm.path), 512, 288, shm.slot_count)
    assert (shm.slot_bytes, shm.file_bytes, shm.stride) == (lay.slot_bytes, lay.file_bytes, lay.stride)
    assert (shm.layout_version, shm.header_bytes, shm.slot_header_bytes, shm.pixel_format) == (
        lay.layout_version,
        lay.header_bytes,
        lay.slot_header_bytes,
        lay.pixel_format,
    )


# ---------------------------------------------------------------- (b) the real runtime parses them


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_parse_matches_manifest(name: str):
    entry = ENTRIES[name]
    raw = (GOLDEN_DIR / f"{name}.bin").read_bytes()
    assert raw.hex() == entry["hex"] and len(raw) == entry["size"]
    message = ENVELOPES[entry["envelope"]]()
    message.ParseFromString(raw)
    assert json_format.MessageToDict(message, preserving_proto_field_name=True) == entry["fields"]
    # And the manifest's JSON parses back to the same bytes (the JSON alone describes the vector).
    again = json_format.ParseDict(entry["fields"], ENVELOPES[entry["envelope"]]())
    assert again.SerializeToString(deterministic=True) == raw
    direction = "engine_to_backend" if entry["envelope"] == "EngineMessage" else "backend_to_engine"
    assert entry["direction"] == direction


# ---------------------------------------------------------------- (c) wire types, independently

#: Wire types the engines' hand-written codecs support: varint, fixed64, length-delimited, fixed32.
ALLOWED_WIRE_TYPES = {0, 1, 2, 5}


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at `pos`; at most 10 bytes."""
    value = shift = 0
    for i in range(10):
        if pos + i >= len(data):
            raise ValueError(f"truncated varint at {pos}")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos + i + 1
    raise ValueError(f"varint longer than 10 bytes at {pos}")


def walk(data: bytes, message: pbd.Descriptor, path: str = "") -> list[tuple[str, int, object]]:
    """Every (field path, wire type, value) in `data`, recursing into sub-messages.

    Written from the protobuf encoding specification, without the protobuf runtime: the
    descriptor is only used to know which length-delimited fields are sub-messages.
    """
    out: list[tuple[str, int, object]] = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        field = message.fields_by_number.get(number)
        name = f"{path}{field.name if field else number}"
        if wire_type == 0:
            value, pos = read_varint(data, pos)
        elif wire_type == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire_type == 5:
            value, pos = data[pos : pos + 4], pos + 4
        elif wire_type == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
            if field is not None and field.type == pbd.FieldDescriptor.TYPE_MESSAGE:
                out.extend(walk(value, field.message_type, f"{name}."))
        else:
            raise AssertionError(f"{name}: wire type {wire_type} is not supported by the engine codecs")
        if pos > len(data):
            raise ValueError(f"{name}: truncated at {pos} of {len(data)}")
        out.append((name, wire_type, value))
    return out


#: Field type -> the wire type proto3 encodes it with (only the types the engine channel may use).
EXPECTED_WIRE_TYPE = {
    pbd.FieldDescriptor.TYPE_UINT32: 0,
    pbd.FieldDescriptor.TYPE_UINT64: 0,
    pbd.FieldDescriptor.TYPE_BOOL: 0,
    pbd.FieldDescriptor.TYPE_ENUM: 0,
    pbd.FieldDescriptor.TYPE_DOUBLE: 1,
    pbd.FieldDescriptor.TYPE_FIXED64: 1,
    pbd.FieldDescriptor.TYPE_STRING: 2,
    pbd.FieldDescriptor.TYPE_BYTES: 2,
    pbd.FieldDescriptor.TYPE_MESSAGE: 2,
    pbd.FieldDescriptor.TYPE_FLOAT: 5,
    pbd.FieldDescriptor.TYPE_FIXED32: 5,
}


def _reachable(message: pbd.Descriptor, seen: dict[str, pbd.Descriptor] | None = None) -> dict[str, pbd.Descriptor]:
    seen = {} if seen is None else seen
    if message.full_name not in seen:
        seen[message.full_name] = message
        for field in message.fields:
            if field.message_type is not None:
                _reachable(field.message_type, seen)
    return seen


@pytest.mark.parametrize("envelope", ["EngineMessage", "BackendMessage"])
def test_schema_uses_only_simple_types(envelope: str):
    """No zigzag (sint*), signed varints (int*), sfixed, groups, maps or repeated fields.

    The rule binds what engines send; the backend's messages keep it too, so the engines' readers
    stay as small as their writers.
    """
    for message in _reachable(ENVELOPES[envelope].DESCRIPTOR).values():
        for field in message.fields:
            where = f"{message.full_name}.{field.name}"
            assert field.type in EXPECTED_WIRE_TYPE, f"{where} has a type the engine codecs do not support"
            assert not field.is_repeated, f"{where} is repeated"


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_wire_types(name: str):
    entry = ENTRIES[name]
    raw = (GOLDEN_DIR / f"{name}.bin").read_bytes()
    fields = walk(raw, ENVELOPES[entry["envelope"]].DESCRIPTOR)
    assert fields, "empty message"
    for field_path, wire_type, _value in fields:
        assert wire_type in ALLOWED_WIRE_TYPES, f"{name}: {field_path} uses wire type {wire_type}"
    # Every field also uses the wire type its declared type implies.
    by_path = _field_types(ENVELOPES[entry["envelope"]].DESCRIPTOR)
    for field_path, wire_type, _value in fields:
        assert EXPECTED_WIRE_TYPE[by_path[field_path]] == wire_type, f"{name}: {field_path}"


def _field_types(message: pbd.Descriptor, path: str = "") -> dict[str, int]:
    types = {}
    for field in message.fields:
        types[path + field.name] = field.type
        if field.message_type is not None:
            types.update(_field_types(field.message_type, f"{path}{field.name}."))
    return types


def test_walker_decodes_values():
    """The walker reads the pose vector's numbers back exactly (so it really walks the encoding)."""
    values = {
        p: v for p, _w, v in walk((GOLDEN_DIR / "pose_varint_edges.bin").read_bytes(), pb.EngineMessage.DESCRIPTOR)
    }
    assert values["pose.sequence"] == 2**64 - 1
    assert values["pose.engine_time_us"] == 2**63
    assert struct.unpack("<f", values["pose.pose.position.x"])[0] == -1024.5
    assert struct.unpack("<f", values["pose.pose.rotation.y"])[0] == -1.0
    seek = {p: v for p, _w, v in walk((GOLDEN_DIR / "time_seek.bin").read_bytes(), pb.EngineMessage.DESCRIPTOR)}
    assert struct.unpack("<d", seek["time.time_s"])[0] == 12.625
    empty = walk((GOLDEN_DIR / "goodbye_empty.bin").read_bytes(), pb.EngineMessage.DESCRIPTOR)
    assert empty == [("goodbye", 2, b"")]
