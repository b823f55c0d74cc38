"""Scene bundles and where they come from (DESIGN.md section 6).

- `bundle`: the bundle format (scene.json + memory-mappable .npy arrays), `SceneMeta`, `SceneBundle`,
  atomic `write_bundle` with scene-space normalisation.
- `raycast`: a small deterministic numpy ray-caster (ground, boxes, spheres, sky, sun, shadows).
- `demo`: the procedural 4D `DemoWorld` and the built-in demo scene (`build_demo_scene`).
- `importer`: a video file (PyAV) plus depth files, an ONNX depth model, or nothing -> a bundle.
- `store`: `SceneStore`, the folder of bundles the backend serves from.

Modules are imported on demand (``from starbridge.scenes.store import SceneStore``); this package
imports nothing itself, so importing one part does not pull in PyAV or ONNX Runtime.
"""
