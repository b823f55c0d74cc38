// The StarBridge browser viewer: a third engine client, served by the backend itself.
// One canvas, one requestAnimationFrame loop: each display frame moves the camera, sends its pose, and draws the
// newest frame that arrived (older ones are dropped, never queued).

import { FlyCamera, KEYS } from "./camera.js";
import { Link } from "./link.js";
import { Stats } from "./stats.js";
import { decode, View } from "./view.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token") || "";
const RESOLUTIONS = [[320, 180], [512, 288], [640, 360], [960, 540], [1280, 720]];
const MAX_BACKLOG_BYTES = 64 * 1024; // poses wait while this much is unsent
const HANDLED = new Set(Object.values(KEYS).flat());

const camera = new FlyCamera();
const view = new View($("view"));
const stats = new Stats();
const state = {
  status: "starting",
  info: null,
  scenes: [],
  session: null, // the welcome of the live session
  closing: "", // why the backend said goodbye (shown while reconnecting)
  haltedBy: null, // a fatal error on hello: wait for the user to change something
  paused: false,
  speed: 1,
  fov: null, // null: the scene's own
  poseSeq: 0,
  lastPose: null,
  pending: null, // the newest decoded frame not drawn yet
  lastHeader: null, // the header of the frame on screen
  framesDrawn: 0,
  framesReceived: 0,
  connections: 0,
  seeking: false,
};
window.viewer = { camera, state, view, stats }; // for people (and tests) who look inside

function setStatus(kind, text) {
  state.status = kind;
  $("status").dataset.state = kind;
  $("status").textContent = text;
}

function query() {
  return token ? `?token=${encodeURIComponent(token)}` : "";
}

async function fetchJson(path) {
  const response = await fetch(path + query(), { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
}

// ------------------------------------------------------------------ scenes, generators, settings

function currentScene() {
  return state.scenes.find((s) => s.id === $("scene").value) || null;
}

function fillSelect(select, items, chosen) {
  const keep = select.value || chosen;
  select.replaceChildren(...items.map(([value, label]) => new Option(label, value)));
  if (items.some(([value]) => value === keep)) select.value = keep;
  else if (items.some(([value]) => value === chosen)) select.value = chosen;
}

async function loadCatalogue() {
  const [info, scenes] = await Promise.all([fetchJson("/api/info"), fetchJson("/api/scenes")]);
  state.info = info;
  state.scenes = scenes.scenes;
  const fromUrl = new URLSearchParams(location.search).get("scene");
  fillSelect($("scene"), state.scenes.map((s) => [s.id, `${s.id} — ${s.title}`]), fromUrl || info.default_scene);
  fillSelect($("generator"), info.generators.map((g) => [g, g]), info.generators[0]);
  $("generator").disabled = info.generators.length < 2;
  const sizes = RESOLUTIONS.map(([w, h]) => [`${w}x${h}`, `${w} × ${h}`]);
  const dflt = `${info.default_width}x${info.default_height}`;
  if (!sizes.some(([v]) => v === dflt)) sizes.unshift([dflt, `${info.default_width} × ${info.default_height}`]);
  fillSelect($("resolution"), sizes, dflt);
  showScene();
}

function showScene() {
  const scene = currentScene();
  $("scene-summary").textContent = scene ? scene.summary : "";
  if (scene && state.fov === null) showFov(scene.fov);
}

function fov() {
  const scene = currentScene();
  return state.fov ?? (scene ? scene.fov : 60);
}

function showFov(deg) {
  $("fov").value = String(Math.round(deg));
  $("fov-value").textContent = `${Math.round(deg)}°`;
}

// ------------------------------------------------------------------ the session

function hello() {
  if (!link.open || !state.info) return;
  const [width, height] = $("resolution").value.split("x").map(Number);
  state.session = null;
  state.haltedBy = null;
  setStatus("connecting", "opening a session…");
  link.send({
    type: "hello", scene: $("scene").value, width, height, fps: 0, token,
    generator: $("generator").value, encoding: $("encoding").value, coverage: $("coverage").checked,
    browser: navigator.userAgent.slice(0, 64),
  });
}

function timeControl(action, extra = {}) {
  link.send({ type: "time", action, ...extra });
}

function onWelcome(welcome) {
  state.session = welcome;
  state.closing = "";
  $("seek").max = String(welcome.duration_s);
  // A new session (first, after a reconnect, another scene) starts playing at 0: carry the clock's state over.
  if (state.speed !== 1) timeControl("speed", { speed: state.speed });
  if (state.paused) {
    timeControl("pause");
    if (state.lastHeader) timeControl("seek", { time_s: Math.min(state.lastHeader.scene_time_s, welcome.duration_s) });
  }
  setStatus("live", `live: ${welcome.scene} ${welcome.width}×${welcome.height} @ ${welcome.fps} fps, ` +
    `${welcome.generator}`);
}

function onError(error) {
  const text = `${error.code}: ${error.message}`;
  if (error.code === "SHUTTING_DOWN") {
    state.session = null;
    state.closing = "the backend is shutting down";
    setStatus("reconnecting", "backend shutting down — keeping the last frame, reconnecting…");
  } else if (!error.fatal) {
    console.warn(text);
    if (error.code !== "OVERLOADED") setStatus(state.status, `${$("status").textContent} (${error.code})`);
  } else if (!state.session) {
    state.haltedBy = error; // the hello was refused: change a setting (or fix the token) to try again
    setStatus("error", text);
  } else {
    state.session = null; // e.g. TIMEOUT after the tab slept, NO_SESSION after a takeover: start over
    setStatus("connecting", `${text} — opening a new session`);
    hello();
  }
}

const link = new Link(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`, {
  onOpen: async () => {
    state.connections++;
    setStatus("connecting", "connected, loading scenes…");
    try {
      await loadCatalogue();
    } catch (err) {
      setStatus("error", String(err.message || err));
      return;
    }
    hello();
  },
  onClose: (reason) => {
    state.session = null;
    const why = state.closing || `backend unreachable (${reason})`;
    setStatus("reconnecting", `${why} — keeping the last frame, reconnecting…`);
  },
  onMessage: (message) => {
    if (message.type === "welcome") onWelcome(message);
    else if (message.type === "error") onError(message);
  },
  onFrame: async (packed) => {
    state.framesReceived++;
    const frame = await decode(packed);
    const older = state.pending;
    if (older && older.header.frame > frame.header.frame) {
      if (frame.bitmap) frame.bitmap.close(); // decoded out of order: an older frame
      return;
    }
    if (older && older.bitmap) older.bitmap.close(); // never drawn: a newer frame replaces it
    state.pending = frame;
  },
});

// ------------------------------------------------------------------ the loop

let lastTick = performance.now();
let lastReadout = 0;

function sendPose(now) {
  if (!state.session || link.backlog > MAX_BACKLOG_BYTES) return;
  state.poseSeq++;
  const pose = {
    type: "pose", seq: state.poseSeq, t_us: Math.round(now * 1000),
    position: camera.position.slice(), rotation: camera.rotation(), fov: fov(), aspect: 0,
  };
  if (link.send(pose)) state.lastPose = pose;
}

function fitCanvas() {
  const canvas = $("view"), stage = $("stage");
  const pad = 2 * parseFloat(getComputedStyle(stage).paddingLeft);
  const room = Math.min((stage.clientWidth - pad) / canvas.width, (stage.clientHeight - pad) / canvas.height);
  const scale = Math.max(1, Math.floor(room)); // whole multiples only: every frame pixel stays a square
  canvas.style.width = `${canvas.width * scale}px`;
  canvas.style.height = `${canvas.height * scale}px`;
}

function readout(now) {
  const h = state.lastHeader;
  const latency = stats.latencyMs();
  const share = view.observedShare;
  $("readout").textContent = [
    `${stats.fps(now).toFixed(0)} fps`,
    latency === null ? "latency –" : `pose→frame ${latency.toFixed(0)} ms`,
    h ? `gen ${h.gen_ms.toFixed(0)} ms` : "",
    share === null ? "" : `seen ${(100 * share).toFixed(0)}%`,
  ].filter(Boolean).join("   ");
  if (h && !state.seeking) {
    $("seek").value = String(h.scene_time_s);
    $("time").textContent = `${h.scene_time_s.toFixed(2)} s${state.paused ? " (paused)" : ""}`;
  }
}

function tick(now) {
  const dt = Math.min(0.1, (now - lastTick) / 1000);
  lastTick = now;
  camera.step(dt);
  sendPose(now);
  const frame = state.pending;
  if (frame) {
    state.pending = null;
    view.draw(frame);
    fitCanvas();
    state.lastHeader = frame.header;
    state.framesDrawn++;
    stats.drawn(now, frame.header.t_us / 1000);
  }
  if (now - lastReadout > 250) {
    lastReadout = now;
    readout(now);
  }
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);

// ------------------------------------------------------------------ input

function typing(event) {
  return event.target instanceof Element && event.target.closest("input, select, textarea") !== null;
}

window.addEventListener("keydown", (event) => {
  if (!HANDLED.has(event.code) || typing(event)) return;
  event.preventDefault();
  camera.press(event.code);
});
window.addEventListener("keyup", (event) => camera.release(event.code));
window.addEventListener("blur", () => camera.releaseAll());
window.addEventListener("resize", fitCanvas);

let drag = null;
$("view").addEventListener("pointerdown", (event) => {
  drag = { x: event.clientX, y: event.clientY };
  $("view").setPointerCapture(event.pointerId);
  document.activeElement?.blur?.(); // keys fly the camera from now on
});
$("view").addEventListener("pointermove", (event) => {
  if (!drag) return;
  camera.look(event.clientX - drag.x, event.clientY - drag.y);
  drag = { x: event.clientX, y: event.clientY };
});
$("view").addEventListener("pointerup", () => { drag = null; });

$("scene").addEventListener("change", () => { state.fov = null; camera.reset(); showScene(); hello(); });
$("generator").addEventListener("change", hello);
$("resolution").addEventListener("change", hello);
$("encoding").addEventListener("change", () => link.send({ type: "options", encoding: $("encoding").value }));
$("coverage").addEventListener("change", () => {
  view.coverage = $("coverage").checked;
  link.send({ type: "options", coverage: view.coverage });
});
view.coverage = $("coverage").checked; // a reload may keep the box ticked
$("fov").addEventListener("input", () => { state.fov = Number($("fov").value); showFov(state.fov); });
$("home").addEventListener("click", () => camera.reset());
$("screenshot").addEventListener("click", () => {
  const t = state.lastHeader ? state.lastHeader.scene_time_s.toFixed(2) : "0";
  view.screenshot(`starbridge-${$("scene").value}-${t}s.png`);
});
$("play").addEventListener("click", () => {
  state.paused = !state.paused;
  timeControl(state.paused ? "pause" : "play");
  $("play").textContent = state.paused ? "Play" : "Pause";
});
$("speed").addEventListener("change", () => {
  state.speed = Number($("speed").value);
  timeControl("speed", { speed: state.speed });
});
$("seek").addEventListener("input", () => { state.seeking = true; });
$("seek").addEventListener("change", () => {
  state.seeking = false;
  timeControl("seek", { time_s: Number($("seek").value) });
});
