// The page's connection to the backend: one WebSocket at /ws, reopened whenever it drops.
//
// JSON text messages both ways (welcome, typed errors); frames arrive as binary messages:
// [u32 little-endian header length][header JSON][image bytes][coverage mask bits] (viewer/frames.py).

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 2000;

export function unpackFrame(buffer) {
  const view = new DataView(buffer);
  const size = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, size)));
  const start = 4 + size;
  const image = new Uint8Array(buffer, start, header.image_bytes);
  const mask = header.mask_bytes ? new Uint8Array(buffer, start + header.image_bytes, header.mask_bytes) : null;
  return { header, image, mask };
}

export class Link {
  // handlers: onOpen(), onClose(reason), onMessage(json), onFrame({header, image, mask})
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.socket = null;
    this.retryMs = RETRY_MIN_MS;
    this.timer = null;
    this.connect();
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  connect() {
    this.timer = null;
    const socket = new WebSocket(this.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => {
      this.retryMs = RETRY_MIN_MS;
      this.handlers.onOpen();
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") this.handlers.onMessage(JSON.parse(event.data));
      else this.handlers.onFrame(unpackFrame(event.data));
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.handlers.onClose(event.reason || `connection closed (code ${event.code})`);
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    };
  }

  send(message) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  // Bytes queued in the socket: poses are skipped while the network is behind (the newest pose is what counts).
  get backlog() {
    return this.socket ? this.socket.bufferedAmount : 0;
  }
}
