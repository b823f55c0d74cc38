"""Procedural 4D worlds with exact ground truth: the one home of the ray-caster, the worlds, their looks, the
camera paths over them and the samples made from them (docs/architecture.md §6).

- `raycast`: a small deterministic numpy ray-caster (ground, boxes, spheres, sky, sun, shadows).
- `world`: `DemoWorld`, a seeded layout with moving objects that renders any pose at any time.
- `styles`: looks and styles of a world (`StyledWorld`), and the disjoint train / held-out split.
- `paths`: camera paths over a world: the demo's arc, random reference and novel paths, a benchmark loop.
- `samples`: ground-truth samples (reference clip, novel path, our render of it) and sample -> scene bundle.
- `street`: the fixed benchmark street (colour and exact depth from one camera).

The demo scene bundle built from these parts is `scenes/demo.py`. Modules are imported on demand, like the
rest of `starbridge.scenes`.
"""
