"""The one protocol version check, from both sides: same major works whatever the minor, another is refused."""

from __future__ import annotations

import pytest

from starbridge.errors import ProtocolMismatch
from starbridge.transport.version import (
    BACKEND,
    CLIENT,
    PROTOCOL_MAJOR,
    PROTOCOL_MINOR,
    PROTOCOL_TEXT,
    check_peer_version,
)


def test_this_build_speaks_1_1():
    assert (PROTOCOL_MAJOR, PROTOCOL_MINOR) == (1, 1)
    assert PROTOCOL_TEXT == "1.1"


@pytest.mark.parametrize("side", [BACKEND, CLIENT], ids=["backend", "client"])
@pytest.mark.parametrize("minor", [0, PROTOCOL_MINOR, PROTOCOL_MINOR + 1, 99])
def test_same_major_any_minor_works(side, minor: int):
    check_peer_version(PROTOCOL_MAJOR, minor, side, "x.protocol")  # no exception


@pytest.mark.parametrize(
    ("side", "field", "words"),
    [
        (BACKEND, "hello.protocol", "the backend speaks 1.1, the peer sent {v}"),
        (CLIENT, "welcome.protocol", "this client speaks 1.1, the backend {v}"),
    ],
    ids=["backend", "client"],
)
@pytest.mark.parametrize(("major", "minor"), [(PROTOCOL_MAJOR + 1, 0), (PROTOCOL_MAJOR + 1, 3), (7, 1)])
def test_another_major_is_refused_naming_both(side, field: str, words: str, major: int, minor: int):
    with pytest.raises(ProtocolMismatch) as err:
        check_peer_version(major, minor, side, field)
    message = err.value.message
    assert message.startswith("protocol mismatch: ")
    assert words.format(v=f"{major}.{minor}") in message
    assert "so the major versions match" in message
    assert err.value.field == field and err.value.code == "PROTOCOL_MISMATCH"


@pytest.mark.parametrize(
    ("side", "field", "words"),
    [
        (BACKEND, "hello.protocol", "the backend speaks 1.1, the peer sent 0.0"),
        (CLIENT, "welcome.protocol", "this client speaks 1.1, the backend 0.0"),
    ],
    ids=["backend", "client"],
)
def test_major_0_is_a_missing_version(side, field: str, words: str):
    with pytest.raises(ProtocolMismatch) as err:
        check_peer_version(0, 0, side, field)
    assert err.value.message.startswith(f"{field} is missing (major 0)")
    assert words in err.value.message and err.value.field == field
