// The viewer's fly camera, in the engine protocol's convention (docs/architecture.md §3): right-handed, +Y up,
// the camera looks down its local -Z with +Y up; a pose is camera-to-world, rotation a unit quaternion (x, y, z, w).
//
// Yaw turns about world +Y (positive: to the left, so the content moves right), pitch about the camera's +X
// (positive: up). The scene's first reference camera sits at the origin looking down -Z: the camera starts there.

const DEG = Math.PI / 180;
const MAX_PITCH = 89 * DEG;

export const KEYS = {
  forward: ["KeyW"], back: ["KeyS"], left: ["KeyA"], right: ["KeyD"], down: ["KeyQ"], up: ["KeyE"],
  yawLeft: ["ArrowLeft"], yawRight: ["ArrowRight"], pitchUp: ["ArrowUp"], pitchDown: ["ArrowDown"],
  fast: ["ShiftLeft", "ShiftRight"],
};

export class FlyCamera {
  constructor({ speed = 1.5, turnRate = 60 * DEG, mouseRate = 0.15 * DEG } = {}) {
    this.speed = speed; // metres per second
    this.turnRate = turnRate; // radians per second (arrow keys)
    this.mouseRate = mouseRate; // radians per pixel of mouse drag
    this.held = new Set();
    this.reset();
  }

  reset() {
    this.position = [0, 0, 0];
    this.yaw = 0;
    this.pitch = 0;
  }

  // Unit quaternion (x, y, z, w) of yaw about +Y times pitch about +X.
  rotation() {
    const sy = Math.sin(this.yaw / 2), cy = Math.cos(this.yaw / 2);
    const sp = Math.sin(this.pitch / 2), cp = Math.cos(this.pitch / 2);
    return [cy * sp, sy * cp, -sy * sp, cy * cp];
  }

  forward() {
    const cp = Math.cos(this.pitch);
    return [-Math.sin(this.yaw) * cp, Math.sin(this.pitch), -Math.cos(this.yaw) * cp];
  }

  right() {
    return [Math.cos(this.yaw), 0, -Math.sin(this.yaw)];
  }

  press(code) { this.held.add(code); }
  release(code) { this.held.delete(code); }
  releaseAll() { this.held.clear(); }

  isHeld(name) { return KEYS[name].some((code) => this.held.has(code)); }

  // Mouse drag by (dx, dy) pixels: dragging right turns right, dragging up looks up.
  look(dx, dy) {
    this.yaw -= dx * this.mouseRate;
    this.pitch = Math.max(-MAX_PITCH, Math.min(MAX_PITCH, this.pitch - dy * this.mouseRate));
  }

  // Advance by dt seconds with the keys held now; true when the pose changed.
  step(dt) {
    const axis = (plus, minus) => (this.isHeld(plus) ? 1 : 0) - (this.isHeld(minus) ? 1 : 0);
    const turn = axis("yawLeft", "yawRight"), tilt = axis("pitchUp", "pitchDown");
    const ahead = axis("forward", "back"), side = axis("right", "left"), lift = axis("up", "down");
    if (!turn && !tilt && !ahead && !side && !lift) return false;
    this.yaw += turn * this.turnRate * dt;
    this.pitch = Math.max(-MAX_PITCH, Math.min(MAX_PITCH, this.pitch + tilt * this.turnRate * dt));
    const metres = this.speed * (this.isHeld("fast") ? 4 : 1) * dt;
    const f = this.forward(), r = this.right();
    for (let i = 0; i < 3; i++) {
      this.position[i] += metres * (ahead * f[i] + side * r[i] + (i === 1 ? lift : 0));
    }
    return true;
  }
}
