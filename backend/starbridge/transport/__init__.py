"""The wire contract both ends of a connection share (docs/architecture.md §2, §4).

The Python twin of the Unity plugin's `StarBridge.Core` assembly and the Godot plugin's `core/` folder:
the server (`starbridge.server`) and the client (`starbridge.client`) both stand on it, and neither
imports the other.

- `version`: the protocol version and the one check of a peer's version.
- `defaults`: default host, ports and engine endpoint; the bounds of a frame side.
- `error_codes`: wire `ErrorCode` <-> `StarBridgeError` subclass, both ways, from one table.
- `convert`: protobuf <-> the backend's own values (poses, with their validation; the protocol version).
- `frame`: `FrameMeta`, what FrameReady and a ring slot say about a frame, and `Frame` (meta + pixels).
- `ring`: the shared-memory frame ring (layout, writer, reader, stale-file cleanup).

Modules are imported on demand (``from starbridge.transport.ring import FrameRingReader``); this
package imports nothing itself, so `version` and `defaults` stay free of NumPy and protobuf.
"""
