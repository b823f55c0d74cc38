// Frames drawn per second and pose-to-frame latency, over a sliding one-second window.

const WINDOW_MS = 1000;

export class Stats {
  constructor() {
    this.draws = []; // [time drawn, latency ms]
  }

  // A frame drawn at `now` (performance.now()) that answers a pose sent at `sentMs`.
  drawn(now, sentMs) {
    this.draws.push([now, now - sentMs]);
    while (this.draws.length && this.draws[0][0] < now - WINDOW_MS) this.draws.shift();
  }

  fps(now) {
    while (this.draws.length && this.draws[0][0] < now - WINDOW_MS) this.draws.shift();
    return this.draws.length * (1000 / WINDOW_MS);
  }

  latencyMs() {
    if (!this.draws.length) return null;
    const sorted = this.draws.map((d) => d[1]).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]; // the median: one late frame does not swing it
  }
}
