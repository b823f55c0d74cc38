"""The protocol version, and the one check of a peer's (docs/architecture.md §4).

A different major is refused, naming both versions; a newer (or older) minor works with what both
sides know. Major 0 means the peer did not send a version at all (proto3's default). The backend
checks Hello.protocol, the client Welcome.protocol: the same rule and the same words, each from its
own side (`BACKEND`, `CLIENT`). The Unity and Godot plugins word theirs like `CLIENT`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ProtocolMismatch

PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 1


def version_text(major: int, minor: int) -> str:
    """The "major.minor" form messages use."""
    return f"{major}.{minor}"


#: This build's protocol, as messages write it.
PROTOCOL_TEXT = version_text(PROTOCOL_MAJOR, PROTOCOL_MINOR)


@dataclass(frozen=True)
class Side:
    """How a version message names the two ends, from the point of view of the end that checks."""

    #: Says which version this end speaks: "the backend speaks".
    ours: str
    #: Introduces the peer's version: "the peer sent".
    theirs: str
    #: The two programs one of which must be updated.
    update: str
    #: Who sends the version that was missing.
    sender: str


#: The backend checking a Hello.
BACKEND = Side(ours="the backend speaks", theirs="the peer sent", update="the plugin or the backend", sender="plugin")
#: A client checking a Welcome.
CLIENT = Side(ours="this client speaks", theirs="the backend", update="the client or the backend", sender="backend")


def check_peer_version(major: int, minor: int, side: Side, field: str) -> None:
    """Refuse a peer's protocol `major`.`minor` unless its major is ours (ProtocolMismatch naming `field`).

    Both versions are named in the message, in the same form whoever checks: "<ours> 1.1, <theirs> 2.0".
    """
    both = f"{side.ours} {PROTOCOL_TEXT}, {side.theirs} {version_text(major, minor)}"
    if major == 0:
        raise ProtocolMismatch(
            f"{field} is missing (major 0): {both}; the {side.sender} must send the version it was built for",
            field=field,
        )
    if major != PROTOCOL_MAJOR:
        raise ProtocolMismatch(
            f"protocol mismatch: {both}; update {side.update} so the major versions match", field=field
        )
