"""Wire ErrorCode <-> exception: every code of engine.proto has its class and comes back as itself."""

from __future__ import annotations

import pytest

from starbridge import errors
from starbridge.protocol import engine_pb2 as pb
from starbridge.transport.error_codes import ERROR_CLASSES, RAISED, error_from_proto, error_message

#: Every code but UNSPECIFIED (proto3's zero: "not set"), as engine.proto declares them.
CODES = [v for v in pb.ErrorCode.values() if v != pb.ERROR_CODE_UNSPECIFIED]


def test_the_table_covers_every_code_of_engine_proto():
    names = {pb.ErrorCode.Name(v).removeprefix("ERROR_CODE_") for v in CODES}
    assert set(ERROR_CLASSES) == names
    assert len(RAISED) == len(ERROR_CLASSES)  # one class per code


@pytest.mark.parametrize("code", CODES, ids=pb.ErrorCode.Name)
def test_every_code_maps_to_a_class_and_back(code: int):
    error = pb.Error(code=code, message="what went wrong", field="hello.width", fatal=True)
    exc = error_from_proto(error)
    assert type(exc) is ERROR_CLASSES[pb.ErrorCode.Name(code).removeprefix("ERROR_CODE_")]
    assert isinstance(exc, errors.StarBridgeError)
    assert exc.field == "hello.width" and "what went wrong" in exc.message
    back = error_message(exc, fatal=True).error
    assert back.code == code and back.field == "hello.width" and back.fatal


def test_classes_are_sent_with_their_code():
    for cls in (errors.SceneError, errors.SceneInUse):  # not raised from the wire, sent as INVALID_ARGUMENT
        assert error_message(cls("no"), fatal=False).error.code == pb.ERROR_CODE_INVALID_ARGUMENT
    assert error_message(errors.Overloaded("busy"), fatal=False).error.code == pb.ERROR_CODE_OVERLOADED
    msg = error_message(errors.InvalidArgument("bad fov", field="pose.vertical_fov_deg"), fatal=False)
    assert (msg.error.message, msg.error.field, msg.error.fatal) == ("bad fov", "pose.vertical_fov_deg", False)


def test_exceptions_that_are_not_ours_are_internal():
    msg = error_message(ValueError("boom"), fatal=True)
    assert msg.error.code == pb.ERROR_CODE_INTERNAL and msg.error.fatal
    assert msg.error.message == "internal error: ValueError: boom"


@pytest.mark.parametrize("code", [pb.ERROR_CODE_UNSPECIFIED, 999])
def test_unspecified_and_unknown_codes_raise_the_base_class(code: int):
    exc = error_from_proto(pb.Error(code=code, message="from the future"))
    assert type(exc) is errors.StarBridgeError
    assert "from the future" in exc.message
    if code == 999:
        assert "code 999" in exc.message
