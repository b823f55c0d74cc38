"""The browser viewer's gateway: one port serving the page (HTTP) and its session (WebSocket).

Built on `websockets`' threaded server: the backend is threads all the way (session threads, the engine
channel's loop, gRPC's pool), and `websockets` gives a maintained, dependency-free RFC 6455 implementation with
a thread per connection, plain HTTP answers for the page's files in the same listener, and a clean
`shutdown()`. (aiohttp or an ASGI server would bring an event loop and several packages for the same job.)

Each WebSocket connection is a third kind of engine client: its JSON messages become `EngineMessage`s handled by
the session manager's `Connection`, exactly as the engine channel handles an engine's (messages.py). Frames go
out as binary messages (frames.py) from one writer thread per connection that always sends the newest frame and
drops older unsent ones, so a slow page never queues frames and never blocks a session's pacer thread.

Access: like the other endpoints it binds 127.0.0.1 by default. A page on another machine must present the
backend's `--token` (in the page URL: `?token=...`); with no token set, only this machine is served. A
WebSocket opened from a page of another origin (another web site in the same browser) is refused.
"""

from __future__ import annotations

import collections
import hmac
import ipaddress
import json
import logging
import mimetypes
import socket
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from ..errors import InvalidArgument, StarBridgeError, Unauthenticated
from ..protocol import engine_pb2 as pb
from ..server.config import bind_error
from ..server.manager import Connection, SessionManager
from ..transport.error_codes import error_message
from . import api
from .frames import pack_frame
from .messages import FrameOptions, frame_options, from_backend, parse, to_engine

log = logging.getLogger(__name__)

#: Where the page opens its WebSocket.
WS_PATH = "/ws"
#: Largest message read from a page, bytes (its messages are JSON of a few hundred bytes).
MAX_INCOMING_BYTES = 64 * 1024
#: How long stopping waits for each page to receive its last messages (the shutdown notice), seconds.
FLUSH_S = 1.0


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def content_type(name: str) -> str:
    """The MIME type a file is served with (module scripts must be JavaScript, whatever the system's table says)."""
    if name.endswith((".js", ".mjs")):
        return "text/javascript"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def static_files() -> dict[str, tuple[bytes, str]]:
    """URL path -> (bytes, content type) of every file the page is made of (package data, read once)."""
    root = resources.files("starbridge.viewer") / "static"
    files: dict[str, tuple[bytes, str]] = {}

    def walk(folder, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif not entry.name.startswith("."):
                files[f"{prefix}{entry.name}"] = (entry.read_bytes(), content_type(entry.name))

    walk(root, "/")
    files["/"] = files["/index.html"]
    return files


def _response(status: int, reason: str, body: bytes, content_type: str) -> Response:
    headers = Headers()
    headers["Content-Type"] = content_type if not content_type.startswith("text/") else content_type + "; charset=utf-8"
    headers["Content-Length"] = str(len(body))
    headers["Cache-Control"] = "no-store"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Connection"] = "close"
    return Response(status, reason, headers, body)


def _json_response(status: int, reason: str, value: Any) -> Response:
    return _response(status, reason, json.dumps(value).encode(), "application/json")


class _Peer:
    """One page's connection: its frame options and the writer thread that sends to it."""

    def __init__(self, ws: ServerConnection, loopback: bool) -> None:
        self.ws = ws
        self.loopback = loopback
        self.options = FrameOptions()
        self._cond = threading.Condition()
        #: Outgoing in order: ("json", dict) or ("frame", (FrameReady, pixels, observed)); at most one frame.
        self._queue: collections.deque[tuple[str, Any]] = collections.deque()
        self._closed = False
        self._busy = False  # the writer is sending an item it took off the queue
        self._writer = threading.Thread(target=self._write_loop, name="viewer-writer", daemon=True)
        self._writer.start()

    @property
    def encoding(self) -> str:
        chosen = self.options.encoding
        return chosen if chosen != "auto" else ("raw" if self.loopback else "jpeg")

    def post(self, kind: str, item: Any) -> None:
        with self._cond:
            if self._closed:
                return
            if kind == "frame":  # the newest frame replaces one not sent yet (never a queue of frames)
                for i, (k, _) in enumerate(self._queue):
                    if k == "frame":
                        del self._queue[i]
                        break
            self._queue.append((kind, item))
            self._cond.notify()

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything posted so far was sent (or the peer is gone); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed or (not self._queue and not self._busy), timeout_s)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or bool(self._queue))
                if self._closed:
                    return
                kind, item = self._queue.popleft()
                self._busy = True
            try:
                if kind == "json":
                    self.ws.send(json.dumps(item))
                else:
                    frame, pixels, observed = item
                    self.ws.send(pack_frame(frame, pixels, self.encoding, observed if self.options.coverage else None))
            except ConnectionClosed:
                self.close()
            except Exception:
                log.exception("viewer: sending to the page failed")
                self.close()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


class ViewerSink:
    """FrameSink for one page: frames with their pixels (and the coverage mask when asked), errors as JSON."""

    wants_pixels = True

    def __init__(self, peer: _Peer) -> None:
        self._peer = peer

    @property
    def wants_observed(self) -> bool:
        return self._peer.options.coverage

    def send(self, message: pb.BackendMessage, pixels: np.ndarray | None = None, observed: np.ndarray | None = None):
        if message.WhichOneof("body") == "frame":
            if pixels is not None:
                self._peer.post("frame", (message.frame, pixels, observed))
        else:
            self._peer.post("json", from_backend(message))

    def close(self) -> None:
        pass  # the connection outlives its sessions (a page opens a new one on a scene switch)


@dataclass(frozen=True)
class ViewerAddress:
    host: str
    port: int

    @property
    def url(self) -> str:
        """The page's URL from this machine (any-interface binds shown as 127.0.0.1)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "*") else self.host
        host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}/"


class ViewerGateway:
    """Serves the page and its WebSocket on `host:port`. `start()` binds and serves in a thread; `stop()` ends it."""

    def __init__(self, manager: SessionManager, store, host: str, port: int, generators: list[str]) -> None:
        self.manager = manager
        self.store = store
        self.generators = generators
        self._files = static_files()
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.create_server((host, port), family=family)
        except OSError as exc:
            raise bind_error("browser viewer", f"{host}:{port}", host, port, "viewer_port", exc.errno) from None
        self.address = ViewerAddress(host, sock.getsockname()[1])
        self._server: Server = serve(
            self._handle,
            sock=sock,
            process_request=self._http,
            compression=None,  # frames are images: deflate would only burn CPU
            max_size=MAX_INCOMING_BYTES,
            server_header=None,
            close_timeout=1.0,
        )
        self._peers: set[_Peer] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, name="viewer-gateway", daemon=True)

    @property
    def url(self) -> str:
        return self.address.url

    def start(self) -> ViewerGateway:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Deliver what each page was sent (the shutdown notice), close every connection and the listener."""
        if self._thread.ident is None:  # never started (the backend failed to start): shutdown() needs the loop
            self._thread.start()
        with self._lock:
            peers = list(self._peers)
        for peer in peers:
            peer.flush(min(FLUSH_S, timeout_s))
        self._server.shutdown()
        if self._thread.ident is not None:
            self._thread.join(timeout_s)

    # ------------------------------------------------------------------ HTTP

    def _authorize(self, peer_host: str, token: str) -> StarBridgeError | None:
        """Why this peer may not use the backend, or None."""
        config = self.manager.config
        if config.token:
            if not hmac.compare_digest(token.encode(), config.token.encode()):
                return Unauthenticated(
                    "the token is missing or wrong: this backend was started with --token; open the viewer "
                    "as http://HOST:PORT/?token=TOKEN",
                    field="token",
                )
            return None
        if not is_loopback(peer_host):
            return Unauthenticated(
                "the viewer serves other machines only with a token: start the backend with --token and open "
                "http://HOST:PORT/?token=TOKEN",
                field="token",
            )
        return None

    def _rebound(self, connection: ServerConnection, request: Request) -> bool:
        """A request from this machine, with no token set, naming a host that is not this machine's: a web page
        whose domain was re-pointed at 127.0.0.1 (DNS rebinding) would pass the origin check; refuse it."""
        if self.manager.config.token or not is_loopback(str(connection.remote_address[0])):
            return False  # the token (or the peer check in _authorize) decides
        name = urlsplit("//" + request.headers.get("Host", "")).hostname or ""
        return not (is_loopback(name) or name == self.manager.config.host)

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        origin = request.headers.get("Origin")
        if (url.path == WS_PATH or url.path.startswith("/api/")) and self._rebound(connection, request):
            return _response(403, "Forbidden", b"without --token the viewer answers only to this machine's own "
                             b"addresses (127.0.0.1, localhost)", "text/plain")  # fmt: skip
        if url.path == WS_PATH:
            host = request.headers.get("Host", "")
            if origin is not None and urlsplit(origin).netloc != host:
                return _response(403, "Forbidden", b"the viewer's WebSocket takes pages of its own origin only",
                                 "text/plain")  # fmt: skip
            return None  # the WebSocket handshake goes on
        if request.headers.get("Upgrade"):
            return _response(404, "Not Found", f"the viewer's WebSocket is at {WS_PATH}".encode(), "text/plain")
        if url.path.startswith("/api/"):
            token = parse_qs(url.query).get("token", [""])[0]
            refused = self._authorize(str(connection.remote_address[0]), token)
            if refused is not None:
                return _json_response(401, "Unauthorized", {"error": refused.message})
            try:
                if url.path == "/api/scenes":
                    return _json_response(200, "OK", api.scenes(self.store))
                if url.path == "/api/info":
                    return _json_response(200, "OK", api.info(self.manager.config, self.generators))
            except StarBridgeError as exc:
                return _json_response(500, "Internal Server Error", {"error": exc.message})
            return _json_response(404, "Not Found", {"error": f"no API {url.path}: /api/scenes, /api/info"})
        found = self._files.get(url.path)
        if found is None:
            return _response(404, "Not Found", f"no file {url.path} in the viewer".encode(), "text/plain")
        return _response(200, "OK", *found)

    # ------------------------------------------------------------------ WebSocket

    def _handle(self, ws: ServerConnection) -> None:
        peer_host = str(ws.remote_address[0])
        peer = _Peer(ws, is_loopback(peer_host))
        conn = Connection(self.manager, "viewer", ViewerSink(peer))
        with self._lock:
            self._peers.add(peer)
        try:
            for raw in ws:
                reply = self._act(peer, conn, peer_host, raw)
                if reply is not None:
                    peer.post("json", reply)
        except ConnectionClosed:
            pass
        finally:
            conn.drop("viewer page closed")
            with self._lock:
                self._peers.discard(peer)
            peer.close()

    def _act(self, peer: _Peer, conn: Connection, peer_host: str, raw: str | bytes) -> dict[str, Any] | None:
        """Act on one page message; the JSON reply (welcome or a typed error) or None. Never raises."""
        kind = ""
        try:
            message = parse(raw)
            kind = message["type"]
            if self.manager.shutting_down and kind != "hello":
                return None  # the shutdown notice went out: nothing after it may look like a client fault
            if kind == "options":
                peer.options = frame_options(message, peer.options)
                return None
            if kind == "hello":
                refused = self._authorize(peer_host, str(message.get("token", "") or ""))
                if refused is not None:
                    raise refused
                generator = message.get("generator") or self.generators[0]
                if generator not in self.generators:
                    raise InvalidArgument(
                        f"generator must be one of {', '.join(self.generators)} (this backend's), got {generator!r}",
                        field="generator",
                    )
                peer.options = frame_options(message)
            envelope = to_engine(message)
        except StarBridgeError as exc:
            return from_backend(error_message(exc, fatal=kind == "hello"))
        reply = conn.handle(envelope)
        return from_backend(reply) if reply is not None else None
